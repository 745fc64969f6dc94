import {
  type DiffReport,
  isPaired,
  type PairedTensor,
  type SideReport,
  type TensorDiff,
  type ValueDiff,
} from "../../inspect/diff/diff.js";
import type { TreeNode } from "../../inspect/tree.js";
import { formatCount, formatShape } from "../format.js";
import type { Style } from "../style.js";
import { containerHeader, scalarText } from "./inspectText.js";
import { type Column, PLAIN_LAYOUT, renderTable } from "./table.js";

export interface DiffTextOptions {
  readonly style: Style;
  /** Lists identical tensors too (by default only what differs). */
  readonly all: boolean;
}

/** How many names a one-sided list shows before "... N more" (--all shows every one). */
const LISTED = 25;

function sideLine(label: "A" | "B", side: SideReport): string {
  const select = side.select ? `, under ${side.select}` : "";
  // The file already names the run's directory: saying it again made the line twice as long.
  const run = side.run ? ` (the ${side.run.convention} run's resume-plan choice)` : "";
  return `${label}  ${side.file}${run}  ${side.format}${select}, ${side.tensors} tensors, ${side.values} values`;
}

const valueText = (node: TreeNode, style: Style) => scalarText(node, style) ?? containerHeader(node);

const shapeText = (t: { dtype: string; shape: readonly number[] }) => `${t.dtype} ${formatShape(t.shape)}`;

/** Figures as people quote them: 3 significant digits, exponents for the very small. */
function figure(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  if (value === 0) return "0";
  return Math.abs(value) < 1e-3 || Math.abs(value) >= 1e6 ? value.toExponential(2) : value.toPrecision(3);
}

const CHANGE_COLUMNS: readonly Column[] = [
  { header: "tensor", elide: "middle", minWidth: 20 },
  { header: "status" },
  { header: "A", elide: "end", minWidth: 10, drop: 3 },
  { header: "B", elide: "end", minWidth: 10, drop: 3 },
  { header: "max |a-b|", align: "right", drop: 2 },
  { header: "rel. L2", align: "right" },
  { header: "differing", align: "right", drop: 1 },
  { header: "nan/inf new", align: "right", drop: 1 },
];

function changeRow(t: PairedTensor): string[] {
  const v = t.values;
  const name = t.nameB ? `${t.name} -> ${t.nameB}` : t.name;
  const compared = v?.kind === "compared" ? v : undefined;
  const status = v?.kind === "unreadable" ? `unreadable (${v.side}: ${v.reason})` : t.status;
  return [
    name,
    status,
    shapeText(t.a),
    shapeText(t.b),
    figure(compared?.maxAbsDiff),
    figure(compared?.relL2),
    compared ? `${formatCount(compared.differing)}/${formatCount(compared.elements)}` : "-",
    compared ? `${compared.nanAppeared}/${compared.infAppeared}` : "-",
  ];
}

function oneSidedLines(title: string, names: readonly string[], all: boolean): string[] {
  if (names.length === 0) return [];
  const shown = all ? names : names.slice(0, LISTED);
  const lines = [`${title} (${names.length})`, ...shown.map((n) => `  ${n}`)];
  if (shown.length < names.length) lines.push(`  ... ${names.length - shown.length} more (--all lists them)`);
  return lines;
}

function valueLines(values: readonly ValueDiff[], style: Style): string[] {
  return values.map((v) => {
    if (v.status === "changed") {
      const name = v.nameB ? `${v.name} -> ${v.nameB}` : v.name;
      return `  ${name}: ${valueText(v.a, style)} -> ${valueText(v.b, style)}`;
    }
    return `  ${v.name}: ${valueText(v.value, style)} (only in ${v.status === "only-in-a" ? "A" : "B"})`;
  });
}

/** "312 tensors identical, 4 changed, largest change head.weight rel. L2 0.031, 1 only in B". */
export function summaryLine(report: DiffReport): string {
  const t = report.summary.tensors;
  const v = report.summary.values;
  const parts: string[] = [];
  const tensorsWord = (n: number) => `${n} tensor${n === 1 ? "" : "s"}`;
  if (report.valuesCompared) {
    parts.push(`${tensorsWord(t.identical)} identical`);
    if (t.changed > 0) parts.push(`${t.changed} changed`);
  } else if (t.unchecked > 0) {
    parts.push(`${tensorsWord(t.unchecked)} alike in dtype and shape (values not compared: --values)`);
  }
  if (t.dtypeChanged > 0) parts.push(`${t.dtypeChanged} with another dtype`);
  if (t.shapeChanged > 0) parts.push(`${t.shapeChanged} with another shape`);
  if (t.unreadable > 0) parts.push(`${t.unreadable} unreadable`);
  const largest = report.summary.largestChange;
  // A change only in values that are not finite has no finite difference to rank (rel. L2 0): not named.
  if (largest && largest.relL2 !== 0)
    parts.push(`largest change ${largest.name} rel. L2 ${figure(largest.relL2)}`);
  if (report.summary.nanAppeared + report.summary.infAppeared > 0)
    parts.push(`${report.summary.nanAppeared} NaN and ${report.summary.infAppeared} inf appeared`);
  if (t.onlyInA > 0) parts.push(`${t.onlyInA} only in A`);
  if (t.onlyInB > 0) parts.push(`${t.onlyInB} only in B`);
  for (const r of report.renames) parts.push(`${r.count} renamed ${r.from || '""'} -> ${r.to || '""'}`);
  const valueParts = [
    v.changed > 0 ? `${v.changed} changed` : "",
    v.onlyInA > 0 ? `${v.onlyInA} only in A` : "",
    v.onlyInB > 0 ? `${v.onlyInB} only in B` : "",
  ].filter((p) => p !== "");
  const values = valueParts.length > 0 ? `; values: ${valueParts.join(", ")}` : `; ${v.a} values equal`;
  return `${report.summary.equal ? "equal" : "different"}: ${parts.join(", ")}${values}`;
}

export function renderDiffText(report: DiffReport, options: DiffTextOptions): string {
  const { style } = options;
  const lines = [sideLine("A", report.a), sideLine("B", report.b)];
  if (report.filter) lines.push(`   only names matching ${report.filter}`);
  if (report.renames.length > 0) {
    lines.push("", style.bold("Renamed"));
    for (const r of report.renames) lines.push(`  ${r.from}* -> ${r.to}* (${r.count} tensors)`);
  }
  const names = (status: TensorDiff["status"]) =>
    report.tensors
      .filter((t) => t.status === status)
      .map((t) => (isPaired(t) ? t.name : `${t.name}  ${shapeText(t)}`));
  for (const [title, status] of [
    ["Only in A", "only-in-a"],
    ["Only in B", "only-in-b"],
  ] as const) {
    const listed = oneSidedLines(title, names(status), options.all);
    if (listed.length > 0) lines.push("", style.bold(listed[0] as string), ...listed.slice(1));
  }
  const paired = report.tensors.filter(isPaired);
  const shown = paired.filter((t) => options.all || (t.status !== "identical" && t.status !== "unchecked"));
  if (shown.length > 0) {
    const title = options.all ? `Tensors (${shown.length})` : `Changed (${shown.length} of ${paired.length})`;
    lines.push(
      "",
      style.bold(title),
      renderTable(CHANGE_COLUMNS, shown.map(changeRow), style.table ?? PLAIN_LAYOUT),
    );
  }
  if (report.values.length > 0) {
    lines.push(
      "",
      style.bold(`Values (${report.values.length} differ)`),
      ...valueLines(report.values, style),
    );
  }
  for (const [label, side] of [
    ["A", report.a],
    ["B", report.b],
  ] as const) {
    if (side.truncated)
      lines.push(
        `  ${label}'s structure is larger than ckpt walks (${side.truncated} limit): what lies beyond is not compared`,
      );
  }
  const summary = summaryLine(report);
  lines.push("", report.summary.equal ? style.green(summary) : style.yellow(summary));
  return `${lines.join("\n")}\n`;
}
