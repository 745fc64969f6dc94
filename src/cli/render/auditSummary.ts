import type { AuditReport, AuditSummary } from "../../inspect/runs/audit.js";
import { needsAttention } from "./runAdvice.js";

/** The audit's summary and attention lines, and run names: portable, shared by the CLI and the page. */

/**
 * What the audit calls each run and loose file: its path relative to the argument it was found under
 * (`fvcore_healthy` for `ckpt audit outputs`), or the argument as typed when the run is the argument itself
 * (`ckpt audit outputs/*`), never ".". `path` is what to type to reach it from here, for fix commands.
 */
export interface RunName {
  readonly label: string;
  readonly path: string;
}

/** The name of `dir` in `names`, or its own path for one the names were not made for. */
export function nameOf(names: ReadonlyMap<string, RunName>, dir: string): RunName {
  return names.get(dir) ?? { label: dir, path: dir };
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

/** "needs attention: fvcore_dangling, trackron_model_only" (empty when every run is fine). */
export function attentionText(report: AuditReport, names: ReadonlyMap<string, RunName>): string {
  const runs = report.runs.filter(needsAttention).map((plan) => nameOf(names, plan.runDir).label);
  return runs.length > 0 ? `needs attention: ${runs.join(", ")}` : "";
}
