import type { Severity } from "../../inspect/findings.js";
import type { InspectReport, TensorReport } from "../../inspect/report.js";
import type { SizeReport } from "../../inspect/size.js";
import type { TensorStats } from "../../inspect/stats.js";
import type { TensorSummary, TreeNode } from "../../inspect/tree.js";
import { formatBytes, formatCount, formatPath, formatShape } from "../format.js";
import type { Style } from "../style.js";
import { type Column, PLAIN_LAYOUT, renderTable } from "./table.js";
import { weightsOnlyText } from "./weightsOnlyText.js";

export interface InspectTextOptions {
  readonly style: Style;
  /** List every tensor instead of the first `DEFAULT_ROWS`. */
  readonly all: boolean;
  /** The user asked for `--filter`: say so when nothing matched. */
  readonly filtered: boolean;
}

const DEFAULT_ROWS = 25;
const MAX_INLINE_ITEMS = 8;

export function severityLabel(severity: Severity, style: Style): string {
  switch (severity) {
    case "error":
      return style.red("error  ");
    case "warning":
      return style.yellow("warning");
    case "info":
      return style.cyan("info   ");
  }
}

function tensorSummaryText(summary: TensorSummary): string {
  const tensors = `${summary.tensorCount} tensor${summary.tensorCount === 1 ? "" : "s"}`;
  return `${tensors}, ${formatCount(summary.elementCount)} elements, ${summary.dtypes.join("/")}`;
}

/** Floats close to how Python prints them: `5.0`, `-0.0` (exponents keep JS's `1e-8` spelling). */
function floatText(value: number | string): string {
  if (typeof value !== "number") return value;
  if (Object.is(value, -0)) return "-0.0";
  return Number.isInteger(value) ? value.toFixed(1) : String(value);
}

/** The literal text of a bare scalar, for inline lists: `0.9`, `"adam"`, `None`. */
function literal(node: TreeNode): string | undefined {
  switch (node.type) {
    case "none":
      return "None";
    case "bool":
      return node.value ? "True" : "False";
    case "int":
      return String(node.value);
    case "float":
      return floatText(node.value);
    case "str":
      return node.length === node.value.length && node.length <= 40 ? JSON.stringify(node.value) : undefined;
    default:
      return undefined;
  }
}

/** `(0.9, 0.999)` and `[0, 1, 2]` on one line when a short list holds only scalars. */
function inlineList(node: TreeNode): string | undefined {
  if ((node.type !== "list" && node.type !== "tuple") || node.length > MAX_INLINE_ITEMS) return undefined;
  const items = node.items.map(literal);
  if (items.some((item) => item === undefined)) return undefined;
  const body = items.join(", ");
  return node.type === "tuple" ? `(${body}${items.length === 1 ? "," : ""})` : `[${body}]`;
}

export function scalarText(node: TreeNode, style: Style): string | undefined {
  const inline = inlineList(node);
  if (inline !== undefined) return inline;
  switch (node.type) {
    case "none":
      return style.dim("None");
    case "bool":
      return node.value ? "True" : "False";
    case "int":
      return `int ${node.value}`;
    case "float":
      return `float ${floatText(node.value)}`;
    case "ndarray":
      return `ndarray ${node.dtype} ${formatShape(node.shape)}`;
    case "numpy-scalar":
      return `numpy ${node.dtype}${node.value === undefined ? "" : ` ${typeof node.value === "number" ? floatText(node.value) : node.value}`}`;
    case "str":
      return `str ${JSON.stringify(node.value)}${node.length > node.value.length ? "..." : ""}`;
    case "bytes":
      return `${node.mutable ? "bytearray" : "bytes"} (${formatBytes(node.length)})`;
    case "tensor":
      return `${node.parameter ? "Parameter" : "tensor"} ${node.dtype} ${formatShape(node.shape)}`;
    case "tensors": {
      const kind = node.className === "collections.OrderedDict" ? "OrderedDict" : node.container;
      return `${kind} of ${style.bold(tensorSummaryText(node))}`;
    }
    case "set":
      return `${node.frozen ? "frozenset" : "set"} (${node.length})`;
    case "global":
      return `class/function ${node.name}`;
    case "storage":
      return `storage ${node.key} (${node.dtype})`;
    case "persistent-id":
      return "persistent id";
    case "elided":
      return style.dim(node.reason === "cycle" ? "(refers back to a parent)" : "...");
    default:
      return undefined;
  }
}

export function containerHeader(node: TreeNode): string {
  const suffix = (t: TensorSummary | undefined) => (t ? ` - ${tensorSummaryText(t)}` : "");
  switch (node.type) {
    case "dict": {
      const name = node.className ? node.className.replace(/^collections\./, "") : "dict";
      return `${name} (${node.length} key${node.length === 1 ? "" : "s"})${suffix(node.tensors)}`;
    }
    case "list":
    case "tuple":
      return `${node.type} (${node.length})${suffix(node.tensors)}`;
    case "object":
      return `${node.className} object${suffix(node.tensors)}`;
    default:
      return "";
  }
}

export function children(node: TreeNode): Array<{ label: string; node: TreeNode }> {
  switch (node.type) {
    case "dict":
      return node.entries.map((e) => ({ label: String(e.key), node: e.value }));
    case "object":
      return node.attributes.map((e) => ({ label: String(e.key), node: e.value }));
    case "list":
    case "tuple":
      return node.items.map((item, i) => ({ label: `[${i}]`, node: item }));
    default:
      return [];
  }
}

export function hiddenCount(node: TreeNode): number {
  switch (node.type) {
    case "dict":
      return node.length - node.entries.length;
    case "list":
    case "tuple":
      return node.length - node.items.length;
    default:
      return 0;
  }
}

export function renderTree(root: TreeNode, style: Style): string[] {
  const lines: string[] = [];
  const walk = (node: TreeNode, prefix: string) => {
    const kids = children(node);
    const hidden = hiddenCount(node);
    kids.forEach((kid, i) => {
      const last = i === kids.length - 1 && hidden === 0;
      const branch = last ? "└─ " : "├─ ";
      const scalar = scalarText(kid.node, style);
      lines.push(`${prefix}${branch}${kid.label}: ${scalar ?? containerHeader(kid.node)}`);
      if (scalar === undefined) walk(kid.node, prefix + (last ? "   " : "│  "));
    });
    if (hidden > 0) lines.push(`${prefix}└─ ${style.dim(`... ${hidden} more`)}`);
  };
  const top = scalarText(root, style);
  lines.push(top ?? containerHeader(root));
  if (top === undefined) walk(root, "");
  return lines;
}

/** The key path stays; on a narrow terminal stride, offset and storage go before bytes, shape and dtype. */
const TENSOR_COLUMNS: readonly Column[] = [
  { header: "key path", elide: "middle", minWidth: 20 },
  { header: "dtype" },
  { header: "shape", elide: "end", minWidth: 8, drop: 2 },
  { header: "stride", elide: "end", minWidth: 8, drop: 6 },
  { header: "offset", align: "right", drop: 5 },
  { header: "storage", elide: "middle", drop: 4 },
  { header: "bytes", align: "right", drop: 3 },
];
const HASH_COLUMN: Column = { header: "sha256", drop: 1 };
const STATS_COLUMNS: readonly Column[] = [
  { header: "min / max / mean", drop: 1 },
  { header: "nan/inf", drop: 1 },
];

/** The `min / max / mean` and `nan/inf` cells of a tensor's statistics (`-` when it has none). */
export function statsCells(s: TensorStats | undefined): [string, string] {
  if (!s) return ["-", "-"];
  return [
    `${s.min?.toPrecision(4) ?? "-"} / ${s.max?.toPrecision(4) ?? "-"} / ${s.mean?.toPrecision(4) ?? "-"}`,
    `${s.nan}/${s.inf}`,
  ];
}

function tensorTable(
  tensors: readonly TensorReport[],
  hashes: boolean,
  stats: boolean,
  style: Style,
): string {
  const columns = [...TENSOR_COLUMNS, ...(hashes ? [HASH_COLUMN] : []), ...(stats ? STATS_COLUMNS : [])];
  const rows = tensors.map((t) => {
    const storage = t.storage
      ? `${t.storage.key}${t.storage.device === "cpu" ? "" : ` @${t.storage.device}`}`
      : "-";
    const row = [
      formatPath(t.path) + (t.parameter ? " (P)" : ""),
      t.layout === "strided" ? t.dtype : `${t.dtype} ${t.layout}`,
      formatShape(t.shape),
      t.layout === "strided" ? formatShape(t.stride) : "-",
      String(t.offset),
      storage,
      t.storage ? formatBytes(t.storage.sizeBytes) : "-",
    ];
    if (hashes) row.push(t.sha256 ? t.sha256.slice(0, 16) : "-");
    if (stats) row.push(...statsCells(t.stats));
    return row;
  });
  return renderTable(columns, rows, style.table ?? PLAIN_LAYOUT);
}

const DTYPE_COLUMNS: readonly Column[] = [
  { header: "dtype" },
  { header: "tensors", align: "right" },
  { header: "elements", align: "right" },
  { header: "bytes", align: "right" },
];

function dtypeTable(report: InspectReport, style: Style): string {
  const rows = Object.entries(report.summary.byDtype).map(([dtype, entry]) => [
    dtype,
    String(entry.tensors),
    formatCount(entry.elements),
    formatBytes(entry.bytes),
  ]);
  return renderTable(DTYPE_COLUMNS, rows, style.table ?? PLAIN_LAYOUT);
}

/** `torch-zip: torch.save, torch >= 2.7, pickle protocol 2, 22 records in archive/`. */
export function formatLine(report: InspectReport): string {
  const c = report.container;
  const bits = [
    c.producer,
    c.pickleProtocol !== undefined ? `pickle protocol ${c.pickleProtocol}` : undefined,
    c.records !== undefined
      ? `${c.records} records in ${c.archivePrefix ? `${c.archivePrefix}/` : "the archive root"}`
      : undefined,
  ].filter((x) => x !== undefined);
  return `${report.format}: ${bits.join(", ")}`;
}

export function renderInspectText(report: InspectReport, options: InspectTextOptions): string {
  const { style } = options;
  const lines: string[] = [];
  const c = report.container;
  lines.push(`${style.bold(report.file)}  ${style.dim(formatBytes(report.sizeBytes))}`);
  lines.push(`Format     ${formatLine(report)}`);
  if (c.metadata) lines.push(`Metadata   ${JSON.stringify(c.metadata)}`);

  if (report.pointer) {
    lines.push(
      `Points to  ${report.pointer.target} ${report.pointer.targetExists ? style.green("(exists)") : style.red("(missing)")}`,
    );
  } else {
    const s = report.summary;
    lines.push(
      `Tensors    ${s.tensorCount} tensor${s.tensorCount === 1 ? "" : "s"}, ${formatCount(s.elementCount)} elements, ${formatBytes(s.storageBytes)} of storage`,
    );
    lines.push(...partLines(s.parts));
  }

  if (report.resume && report.convention) lines.push(...resumeLines(report, style));
  if (report.security) {
    const { verdict, weightsOnly } = report.security;
    const shown =
      verdict === "dangerous" || verdict === "inconclusive"
        ? style.red(verdict)
        : verdict === "unknown"
          ? style.yellow(verdict)
          : style.green(verdict);
    lines.push(`Security   ${shown}; ${weightsOnlyText(weightsOnly, { detail: false })}`);
  }

  if (report.tree) {
    lines.push("", style.bold("Structure"));
    for (const line of renderTree(report.tree, style)) lines.push(`  ${line}`);
  }

  if (Object.keys(report.summary.byDtype).length > 0) {
    lines.push("", style.bold("By dtype"), dtypeTable(report, style));
  }

  if (report.size) lines.push("", style.bold("Size"), ...sizeLines(report.size));

  if (report.tensors.length > 0) {
    const shown = options.all ? report.tensors : report.tensors.slice(0, DEFAULT_ROWS);
    const hashes = report.tensors.some((t) => t.sha256 !== undefined);
    const stats = report.tensors.some((t) => t.stats !== undefined);
    const title =
      shown.length < report.tensors.length
        ? `Tensors (first ${shown.length} of ${report.tensors.length}; --all lists every tensor, --filter GLOB selects)`
        : `Tensors (${report.tensors.length})`;
    lines.push("", style.bold(title), tensorTable(shown, hashes, stats, style));
  } else if (options.filtered) {
    lines.push("", style.dim("No tensor matches the filter."));
  }

  if (report.findings.length > 0) {
    lines.push("", style.bold("Findings"));
    for (const f of report.findings) {
      const where = f.path ? ` at ${formatPath(f.path)}` : "";
      lines.push(`  ${severityLabel(f.severity, style)} ${f.code}${where}: ${f.message}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Listed per kind in the Size section before "... N more" (the JSON lists every one). */
const SIZE_ROWS = 5;

function listed<T>(items: readonly T[], line: (item: T) => string): string[] {
  const out = items.slice(0, SIZE_ROWS).map(line);
  if (items.length > SIZE_ROWS) out.push(`    ... ${items.length - SIZE_ROWS} more (--json lists them)`);
  return out;
}

/** Where the bytes go: storages by part, what views of larger storages waste, sharing, float64. */
export function sizeLines(size: SizeReport): string[] {
  const lines: string[] = [];
  const unused = size.storageBytes - size.usedBytes;
  const storages = `${formatBytes(size.storageBytes)} of storage in a ${formatBytes(size.fileBytes)} file`;
  lines.push(
    unused > 0
      ? `  ${storages}; tensors reach ${formatBytes(size.usedBytes)} of it (ckpt repair --compact writes only that; .clone() of every tensor: ${formatBytes(size.cloneBytes)})`
      : `  ${storages}; every stored byte is reached by a tensor`,
  );
  if (size.parts.length > 1) {
    const parts = size.parts.map((p) => {
      const relative =
        p.part === "optimizer" && size.optimizerRelativeToModel !== null
          ? ` (${size.optimizerRelativeToModel.toFixed(1)}x the model)`
          : "";
      return `${PART_LABEL[p.part].toLowerCase()} ${formatBytes(p.bytes)}${relative}`;
    });
    lines.push(`  ${parts.join(", ")}`);
  }
  if (size.views.length > 0) {
    lines.push(`  Views of larger storages (${size.views.length}):`);
    lines.push(
      ...listed(
        size.views,
        (v) =>
          `    ${v.paths.map(formatPath).join(", ")}: reach ${formatBytes(v.usedBytes)} of ${formatBytes(v.storageBytes)}`,
      ),
    );
  }
  if (size.shared.length > 0) {
    lines.push(`  Storages under several keys (${size.shared.length}):`);
    lines.push(
      ...listed(
        size.shared,
        (s) => `    ${s.paths.map(formatPath).join(" = ")} (${formatBytes(s.storageBytes)})`,
      ),
    );
  }
  if (size.float64.length > 0) {
    lines.push(`  float64 in a ${size.modelDtypes.join("/")} model (${size.float64.length}):`);
    lines.push(...listed(size.float64, (t) => `    ${formatPath(t.path)} (${formatBytes(t.bytes)})`));
  }
  return lines;
}

const PART_LABEL = { model: "Model", ema: "EMA", optimizer: "Optimizer", other: "Other" } as const;

/** `Model      25.6M parameters, 97.5 MiB (model_state_dict)` and the optimizer's size relative to it. */
export function partLines(parts: InspectReport["summary"]["parts"]): string[] {
  const model = parts.find((p) => p.part === "model");
  // A file that is only weights says nothing beyond the Tensors line.
  if (parts.length === 1 && model && model.parameters === model.elements) {
    return [`Model      ${formatCount(model.parameters)} parameters`];
  }
  return parts.map((p) => {
    const where = p.key && p.key !== "(root)" ? ` (${p.key})` : "";
    const relative = p.relativeToModel !== undefined ? `, ${p.relativeToModel.toFixed(1)}x the weights` : "";
    const label = PART_LABEL[p.part].padEnd(10);
    if (p.parameters !== undefined) {
      const buffers = p.elements - p.parameters;
      const extra = buffers > 0 ? ` + ${formatCount(buffers)} buffer elements` : "";
      return `${label} ${formatCount(p.parameters)} parameters${extra}, ${formatBytes(p.bytes)}${relative}${where}`;
    }
    const what = p.part === "optimizer" ? "state " : "";
    return `${label} ${what}${formatBytes(p.bytes)} in ${p.tensors} tensor${p.tensors === 1 ? "" : "s"}${relative}${where}`;
  });
}

export const VERDICT_COLOR = {
  resumable: "green",
  "weights-only": "red",
  incomplete: "yellow",
  "training-state-only": "yellow",
  "not-a-training-checkpoint": "dim",
} as const;

export const COMPONENT_MARK = {
  present: "✓",
  missing: "✗",
  "not-needed": "(derived)",
  unused: "(none)",
} as const;

/** `Resume     weights-only (Trackron): ...`, what each component holds and where a resume starts. */
export function resumeLines(report: InspectReport, style: Style): string[] {
  const resume = report.resume;
  const convention = report.convention;
  if (!resume || !convention) return [];
  const verdict = style[VERDICT_COLOR[resume.verdict]](resume.verdict);
  const lines = [`Convention ${convention.label} (${convention.evidence.join("; ")})`];
  if (resume.verdict === "not-a-training-checkpoint") {
    lines.push(`Resume     ${verdict}: weights only, no training state`);
    return lines;
  }
  const colour = { present: style.green, missing: style.red, "not-needed": style.dim, unused: style.dim };
  const parts = resume.components.flatMap((c) =>
    c.status === "not-saved" ? [] : [`${c.component} ${colour[c.status](COMPONENT_MARK[c.status])}`],
  );
  lines.push(`Resume     ${verdict}: ${parts.join("  ")}`);
  const held = resume.components.flatMap((c) =>
    c.status === "present" && c.component !== "counter"
      ? [`${c.component} (${c.key === "(root)" ? "the whole file" : c.key})`]
      : [],
  );
  if (held.length > 0) lines.push(`           holds ${held.join(", ")}`);
  for (const c of resume.components) {
    if (c.status === "unused" || c.status === "not-needed") lines.push(`           ${c.component}: ${c.why}`);
  }
  const counter = resume.counter;
  if (counter) {
    const where = counter.source === "file-name" ? `file name ${counter.from} only` : `key ${counter.from}`;
    const meaning = counter.source === "checkpoint" && counter.meaning ? `: ${counter.meaning}` : "";
    lines.push(
      `           counter ${counter.name} = ${counter.value} (${where})${meaning}; a resume starts at ${counter.name} ${resume.resumeAt ?? 0}`,
    );
  } else if (resume.components.some((c) => c.component === "counter" && c.status !== "not-saved")) {
    lines.push(`           no counter; a resume starts at 0`);
  }
  if (resume.resets.length > 0) lines.push(`           resets on resume: ${resume.resets.join(", ")}`);
  return lines;
}
