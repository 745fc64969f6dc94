import { atLeast, type FindingReport } from "../../inspect/findings.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { willRewritePointer } from "../../repair/pointerRewrite.js";

/** What the audit says about one run beyond its plan: its verdict in a word, its problem, and the fix. */

/** The run's verdict in one word: its choice's verdict, or "finished" when resuming would train nothing. */
export function runVerdict(plan: ResumePlan): string {
  if (plan.findings.some((f) => f.code === "counter-past-end" || f.code === "run-finished"))
    return "finished";
  if (!plan.choice) return "none usable";
  return plan.choice.verdict ?? "?";
}

/** A run needs a person when a finding is a warning or worse, or nothing in it can be resumed from. */
export function needsAttention(plan: ResumePlan): boolean {
  return (
    plan.findings.some((f) => atLeast(f.severity, "warning")) || (plan.choice === null && !finished(plan))
  );
}

function finished(plan: ResumePlan): boolean {
  return runVerdict(plan) === "finished";
}

/**
 * The finding a person should read first: what is wrong in the run (a broken pointer or checkpoint, lost
 * state), errors before warnings, then what follows from it (the framework's own resume going wrong), and
 * for a finished run why it is finished.
 */
export function topProblem(plan: ResumePlan): FindingReport | undefined {
  const rank = (f: FindingReport) =>
    (f.code === "framework-resume-differs" ? 2 : 0) + (f.severity === "error" ? 0 : 1);
  const problems = plan.findings.filter((f) => atLeast(f.severity, "warning"));
  const [top] = [...problems].sort((a, b) => rank(a) - rank(b));
  return top ?? plan.findings.find((f) => f.code === "run-finished");
}

/**
 * The command that fixes the run, for `runPath` as the user reaches it: `ckpt repair` when the chosen
 * checkpoint's counter lives only in its name, `ckpt resume-plan --write` when the pointer is broken and
 * ckpt can rewrite it, else the plan's own resume command when the framework's resume would go wrong.
 * A finished run has nothing to fix.
 */
export function fixFor(plan: ResumePlan, runPath: string): string | undefined {
  if (!plan.choice || finished(plan) || !needsAttention(plan)) return undefined;
  if (plan.choice.resumeAtSource === "file-name") return `ckpt repair ${shellWord(runPath)}`;
  if (willRewritePointer(plan, false)) return `ckpt resume-plan --write ${shellWord(runPath)}`;
  if (plan.findings.some((f) => f.code === "framework-resume-differs")) return plan.command ?? undefined;
  return undefined;
}

/** A path as one shell word, so that the command can be pasted as printed. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}
