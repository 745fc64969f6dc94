import type { AuditReport } from "../../inspect/runs/audit.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { formatBytes } from "../format.js";
import type { Style } from "../style.js";
import { attentionText, summaryLine } from "./auditSummary.js";
import { fixFor, runVerdict, topProblem } from "./runAdvice.js";
import { nameOf, type RunName, runNames } from "./runNames.js";
import { type Cell, type Column, PLAIN_LAYOUT, painted, renderTable } from "./table.js";

export { attentionText, summaryLine };

/** Names of every run and loose file in the report, relative to the arguments they were found under. */
export function auditNames(report: AuditReport, args: readonly string[]): Map<string, RunName> {
  return runNames([...report.runs.map((r) => r.runDir), ...report.files.map((f) => f.file)], args);
}

/**
 * Where each run resumes from and what is wrong with it, in words. On a narrow terminal the convention,
 * pointer and size columns go first (the problem says what is wrong with the pointer); run, choice, verdict
 * and problem stay, shortened with "…", the problem to no fewer than 30 columns so that it still reads.
 */
const RUN_COLUMNS: readonly Column[] = [
  { header: "run", elide: "middle", minWidth: 24 },
  { header: "convention", drop: 6 },
  { header: "resumes from", elide: "middle", minWidth: 14 },
  { header: "at", align: "right" },
  { header: "size", align: "right", drop: 4 },
  { header: "verdict" },
  { header: "pointer", drop: 5 },
  { header: "problem", elide: "end", minWidth: 30 },
];

const FILE_COLUMNS: readonly Column[] = [
  { header: "loose file", elide: "middle", minWidth: 16 },
  { header: "format", drop: 2 },
  { header: "status" },
  { header: "verdict", drop: 1 },
];

function verdictCell(plan: ResumePlan, style: Style): Cell {
  const verdict = runVerdict(plan);
  const paint = verdict === "resumable" ? style.green : verdict === "none usable" ? style.red : style.yellow;
  return painted(verdict, paint);
}

function runRow(plan: ResumePlan, name: RunName, style: Style): Array<string | Cell> {
  const choice = plan.choice;
  const chosen = choice ? plan.candidates.find((c) => c.file === choice.file) : undefined;
  const problem = topProblem(plan);
  const pointer = plan.pointer?.status;
  return [
    name.label,
    plan.convention,
    choice?.file ?? "-",
    choice && choice.resumeAt !== null ? String(choice.resumeAt) : "-",
    chosen?.sizeBytes ? formatBytes(chosen.sizeBytes) : "-",
    verdictCell(plan, style),
    painted(pointer ?? "-", pointer === undefined || pointer === "ok" ? undefined : style.red),
    painted(
      problem?.message ?? "-",
      problem?.severity === "error" ? style.red : problem?.severity === "warning" ? style.yellow : undefined,
    ),
  ];
}

/** "  fvcore_dangling  ckpt resume-plan --write outputs/fvcore_dangling": whole, so it can be pasted. */
function fixLines(report: AuditReport, names: ReadonlyMap<string, RunName>): string[] {
  const fixes = report.runs.flatMap((plan) => {
    const name = nameOf(names, plan.runDir);
    const fix = fixFor(plan, name.path);
    return fix ? [[name.label, fix] as const] : [];
  });
  if (fixes.length === 0) return [];
  const width = Math.max(...fixes.map(([label]) => label.length));
  return ["To fix:", ...fixes.map(([label, fix]) => `  ${label.padEnd(width)}  ${fix}`)];
}

/** `args`: the arguments as typed, which run names are relative to (default: the audited roots). */
export function renderAuditText(
  report: AuditReport,
  style: Style,
  args: readonly string[] = report.roots,
): string {
  const names = auditNames(report, args);
  const layout = style.table ?? PLAIN_LAYOUT;
  const lines: string[] = [];
  if (report.runs.length > 0) {
    const rows = report.runs.map((plan) => runRow(plan, nameOf(names, plan.runDir), style));
    lines.push(renderTable(RUN_COLUMNS, rows, layout));
  }
  if (report.files.length > 0) {
    const rows = report.files.map((f) => [
      nameOf(names, f.file).label,
      f.format ?? "-",
      painted(f.status, f.status === "ok" ? undefined : style.red),
      f.verdict ?? "-",
    ]);
    lines.push(renderTable(FILE_COLUMNS, rows, layout));
  }
  lines.push(...fixLines(report, names));
  const attention = attentionText(report, names);
  lines.push(style.bold(`${summaryLine(report.summary)}${attention ? `; ${attention}` : ""}`));
  return `${lines.join("\n")}\n`;
}
