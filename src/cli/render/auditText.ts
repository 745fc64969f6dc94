import { relative } from "node:path";
import Table from "cli-table3";
import type { AuditReport, AuditSummary } from "../../inspect/runs/audit.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { formatBytes } from "../format.js";
import type { Style } from "../style.js";

const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** Where a run sits, relative to the audited root that contains it. */
export function runLabel(report: AuditReport, runDir: string): string {
  const root = report.roots.find((r) => runDir === r || runDir.startsWith(`${r}/`));
  return root ? relative(root, runDir) || "." : runDir;
}

/** "22 runs: 17 resumable, 1 weights-only, 2 pointer dangling, 1 truncated newest checkpoint". */
export function summaryLine(summary: AuditSummary): string {
  const parts: string[] = [];
  parts.push(`${summary.resumable} resumable`);
  for (const [verdict, count] of Object.entries(summary.byVerdict)) {
    if (verdict !== "resumable") parts.push(`${count} ${verdict}`);
  }
  const notResumableButResumableVerdict = (summary.byVerdict.resumable ?? 0) - summary.resumable;
  if (notResumableButResumableVerdict > 0) parts.push(`${notResumableButResumableVerdict} finished`);
  for (const [status, count] of Object.entries(summary.pointer))
    parts.push(`${count} pointer ${status.replaceAll("-", " ")}`);
  if (summary.brokenNewest > 0) parts.push(`${summary.brokenNewest} with a broken newest checkpoint`);
  if (summary.frameworkGoesWrong > 0)
    parts.push(`${summary.frameworkGoesWrong} where the framework's own resume goes wrong`);
  const files = `${summary.files} loose checkpoint file${summary.files === 1 ? "" : "s"}`;
  // Files alone (`ckpt audit FILE`): "0 runs: 0 resumable" would only be noise.
  if (summary.runs === 0 && summary.files > 0) return files;
  const runs = `${summary.runs} run${summary.runs === 1 ? "" : "s"}: ${parts.join(", ")}`;
  return summary.files > 0 ? `${runs}; ${files}` : runs;
}

/** The run's verdict in one word: its choice's verdict, or "finished" when resuming would train nothing. */
export function runVerdict(plan: ResumePlan): string {
  if (!plan.choice) return "none usable";
  if (plan.findings.some((f) => f.code === "counter-past-end" || f.code === "run-finished"))
    return "finished";
  return plan.choice.verdict ?? "?";
}

function problems(plan: ResumePlan): string {
  return plan.findings
    .filter((f) => f.severity !== "info")
    .map((f) => f.code)
    .filter((code, i, all) => all.indexOf(code) === i)
    .join(", ");
}

export function renderAuditText(report: AuditReport, style: Style): string {
  const table = new Table({
    head: ["run", "convention", "newest checkpoint", "counter", "size", "verdict", "pointer", "problems"],
    chars: COMPACT,
    style: { head: [], border: [] },
  });
  for (const plan of report.runs) {
    const newest = plan.candidates[0];
    const verdictText = runVerdict(plan);
    const verdict =
      verdictText === "resumable"
        ? style.green(verdictText)
        : verdictText === "none usable"
          ? style.red(verdictText)
          : style.yellow(verdictText);
    const pointer = plan.pointer
      ? plan.pointer.status === "ok"
        ? "ok"
        : style.red(plan.pointer.status)
      : "-";
    table.push([
      runLabel(report, plan.runDir),
      plan.convention,
      newest ? `${newest.file}${newest.status === "ok" ? "" : ` (${style.red(newest.status)})`}` : "-",
      newest?.counter === null || newest === undefined ? "-" : String(newest.counter),
      newest?.sizeBytes ? formatBytes(newest.sizeBytes) : "-",
      verdict,
      pointer,
      problems(plan),
    ]);
  }
  const lines = report.runs.length > 0 ? [table.toString()] : [];
  if (report.files.length > 0) {
    const files = new Table({
      head: ["loose file", "format", "status", "verdict"],
      chars: COMPACT,
      style: { head: [], border: [] },
    });
    for (const f of report.files)
      files.push([f.file, f.format ?? "-", f.status === "ok" ? "ok" : style.red(f.status), f.verdict ?? "-"]);
    lines.push(files.toString());
  }
  lines.push(style.bold(summaryLine(report.summary)));
  return `${lines.join("\n")}\n`;
}
