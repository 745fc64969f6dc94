import type { Severity } from "../../inspect/findings.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import type { Style } from "../style.js";
import { type Column, PLAIN_LAYOUT, painted, renderTable } from "./table.js";

/** The file, its counter and its status say which to resume from; verdict and missing parts explain. */
const CANDIDATE_COLUMNS: readonly Column[] = [
  { header: "checkpoint", elide: "middle", minWidth: 16 },
  { header: "counter" },
  { header: "status" },
  { header: "verdict", drop: 1 },
  { header: "missing", elide: "end", drop: 2 },
];

function severityLabel(severity: Severity, style: Style): string {
  return severity === "error"
    ? style.red("error  ")
    : severity === "warning"
      ? style.yellow("warning")
      : style.cyan("info   ");
}

const OUTCOME_TEXT = {
  resumes: "resumes",
  "starts-over": "starts over",
  crashes: "crashes",
  "trains-nothing": "trains nothing",
} as const;

/** The plan for people: the decision first, then the evidence. */
export function renderResumePlanText(plan: ResumePlan, written: readonly string[], style: Style): string {
  const lines: string[] = [];
  lines.push(`${style.bold(plan.runDir)}`);
  lines.push(`Convention ${plan.conventionLabel} (${plan.evidence})`);
  if (plan.pointer) {
    const status = plan.pointer.status === "ok" ? style.green("ok") : style.red(plan.pointer.status);
    const movedTo = plan.pointer.movedTo ? ` (here: ${plan.pointer.movedTo})` : "";
    lines.push(
      `Pointer    ${plan.pointer.file} -> ${plan.pointer.content?.trim() ?? "(absent)"}: ${status}${movedTo}`,
    );
  }
  lines.push("");

  const choice = plan.choice;
  const finished = plan.findings.find((f) => f.code === "run-finished");
  if (!choice && finished) {
    lines.push(style.yellow(`This run finished training: ${finished.message}`));
  } else if (!choice) {
    lines.push(
      style.red("No checkpoint in this run can be resumed from: training would start from scratch."),
    );
  } else {
    const headline = plan.resumable
      ? style.green(`Resume from ${choice.file}`)
      : style.yellow(`Best available: ${choice.file} (${choice.verdict})`);
    lines.push(style.bold(headline));
    if (choice.resumeAt !== null) {
      const source =
        choice.resumeAtSource === "file-name"
          ? ` (from the file name: the file itself has no counter, so the framework would start at 0)`
          : "";
      // The convention's own rule for the restart point, from the conventions table (e.g. iteration + 1).
      const rule = choice.counterMeaning;
      lines.push(
        `  starts at  ${choice.counterName ?? "step"} ${choice.resumeAt}${source}${rule && !source ? ` (${rule})` : ""}`,
      );
    }
    lines.push(`  restores   ${choice.restores.join(", ") || "nothing"}`);
    lines.push(
      `  resets     ${choice.resets.length > 0 ? style.yellow(choice.resets.join(", ")) : "nothing"}`,
    );
    if (plan.command) lines.push(`  run        ${plan.command}`);
  }

  const framework = plan.framework;
  if (framework) {
    const agrees =
      choice !== null &&
      framework.outcome === "resumes" &&
      framework.file !== null &&
      (framework.file === choice.file || framework.file.startsWith(`${choice.file}/`)) &&
      framework.startsAt === choice.resumeAt;
    const verdict = agrees ? style.green("same as the plan") : style.red(OUTCOME_TEXT[framework.outcome]);
    lines.push("", `Framework's own auto-resume: ${verdict}`);
    lines.push(`  ${framework.why}`);
  }
  if (plan.unreadable.length > 0) {
    lines.push(
      "",
      style.red(
        `Cannot be read: ${plan.unreadable.join(", ")}. Fix the permissions or the disk and run again; nothing will be written until then.`,
      ),
    );
  } else if (plan.fix) {
    lines.push("", style.bold(`Fix: ${plan.fix}`));
  }

  if (plan.candidates.length > 0) {
    const rows = plan.candidates.map((c) => [
      c.file,
      c.counter === null ? "-" : `${c.counter}${c.counterSource === "file-name" ? " (name)" : ""}`,
      painted(c.status, c.status === "ok" ? undefined : style.red),
      c.verdict ?? "-",
      c.missing.join(", "),
    ]);
    const table = renderTable(CANDIDATE_COLUMNS, rows, style.table ?? PLAIN_LAYOUT);
    lines.push("", style.bold("Candidates (newest first)"), table);
  }

  if (plan.findings.length > 0) {
    lines.push("", style.bold("Findings"));
    for (const f of plan.findings)
      lines.push(`  ${severityLabel(f.severity, style)} ${f.code}: ${f.message}`);
  }
  if (written.length > 0) {
    lines.push("", style.bold("Written"));
    for (const w of written) lines.push(`  ${w}`);
  }
  return `${lines.join("\n")}\n`;
}
