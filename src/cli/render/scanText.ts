import type { ScanReport } from "../../inspect/security/report.js";
import type { ErrorReport } from "../errors.js";
import type { Style } from "../style.js";
import { elide, fitLine, PLAIN_LAYOUT } from "./table.js";
import { weightsOnlyText } from "./weightsOnlyText.js";

/** `ckpt scan` for people: a block per file, each line fitted to the terminal, and a closing summary. */

export type ScanOutcome = ScanReport | ErrorReport;

/** Whether `--quiet` still prints the file: a finding, or callables that are not known to be harmless. */
export function hasFindings(report: ScanReport): boolean {
  return report.findings.length > 0 || (report.verdict !== "clean" && report.verdict !== "framework");
}

function paintVerdict(verdict: ScanReport["verdict"], style: Style): (text: string) => string {
  if (verdict === "dangerous" || verdict === "inconclusive") return style.red;
  if (verdict === "unknown") return style.yellow;
  return style.green;
}

function globalNames(report: ScanReport, cls: "dangerous" | "unknown" | "framework"): string[] {
  return [...new Set(report.globals.filter((g) => g.class === cls).map((g) => `${g.module}.${g.name}`))];
}

export function renderScanFile(report: ScanReport, style: Style): string {
  const width = (style.table ?? PLAIN_LAYOUT).width;
  const tail = `: ${report.verdict} (${report.format})`;
  // The file name is shortened in the middle (its own name survives); detail lines lose their end.
  const file =
    width === undefined ? report.file : elide(report.file, Math.max(12, width - tail.length), "middle");
  const lines = [
    `${style.bold(file)}: ${paintVerdict(report.verdict, style)(report.verdict)} (${report.format})`,
  ];
  for (const cls of ["dangerous", "unknown", "framework"] as const) {
    const names = globalNames(report, cls);
    if (names.length > 0) lines.push(fitLine(`  ${cls.padEnd(9)} ${names.join(", ")}`, width));
  }
  if (report.loadedBy !== undefined) {
    // A sharded checkpoint's file: its framework's loader decides what its pickles can do.
    const items = report.items !== undefined && report.items > 1 ? `${report.items} items; ` : "";
    lines.push(fitLine(`  ${items}loaded by ${report.loadedBy}`, width));
  }
  lines.push(fitLine(`  ${weightsOnlyText(report.weightsOnly, { detail: true })}`, width));
  for (const f of report.findings)
    lines.push(fitLine(`  ${f.severity.padEnd(7)} ${f.code}: ${f.message}`, width));
  return `${lines.join("\n")}\n`;
}

/**
 * The closing summary, as picklescan ends its output: how many files were scanned, how many hold dangerous
 * or unknown callables, how many could not be judged, and which dangerous globals were found.
 */
export function renderScanSummary(outcomes: readonly ScanOutcome[], style: Style): string {
  const reports = outcomes.filter((o): o is ScanReport => o.schema !== "ckpt.error/1");
  const count = (verdict: ScanReport["verdict"]) => reports.filter((r) => r.verdict === verdict).length;
  const unreadable = outcomes.length - reports.length;
  const dangerous = [...new Set(reports.flatMap((r) => globalNames(r, "dangerous")))].sort();
  const width = (style.table ?? PLAIN_LAYOUT).width;
  const globals = `Dangerous globals: ${dangerous.length}${dangerous.length > 0 ? ` (${dangerous.join(", ")})` : ""}`;
  const alarm = (n: number) => (n > 0 ? style.red(String(n)) : String(n));
  return `${[
    "----------- SCAN SUMMARY -----------",
    `Scanned files: ${outcomes.length}`,
    `Dangerous files: ${alarm(count("dangerous"))}`,
    `Unknown files: ${count("unknown") > 0 ? style.yellow(String(count("unknown"))) : "0"}`,
    `Unreadable or inconclusive files: ${alarm(unreadable + count("inconclusive"))}`,
    fitLine(globals, width),
  ].join("\n")}\n`;
}
