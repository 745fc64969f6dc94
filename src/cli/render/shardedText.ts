import type { LogicalTensorReport, ShardedInspectReport } from "../../inspect/sharded/report.js";
import { formatBytes, formatCount, formatShape } from "../format.js";
import type { Style } from "../style.js";
import { COMPONENT_MARK, severityLabel, statsCells, VERDICT_COLOR } from "./inspectText.js";
import { type Column, PLAIN_LAYOUT, renderTable } from "./table.js";

/** `ckpt inspect DIR` for a sharded checkpoint: the logical tensors, where their pieces are, what is missing. */
export interface ShardedTextOptions {
  readonly style: Style;
  readonly all: boolean;
  readonly filtered: boolean;
}

const DEFAULT_ROWS = 25;

const FORMAT_LABEL = {
  dcp: "torch.distributed.checkpoint",
  deepspeed: "DeepSpeed ZeRO",
  "hf-index": "Hugging Face index",
} as const;

function layoutLine(report: ShardedInspectReport): string {
  const l = report.layout as Record<string, unknown>;
  switch (report.format) {
    case "dcp": {
      const files = (l.files as Array<{ rank: number | null }>) ?? [];
      const ranks = new Set(files.map((f) => f.rank)).size;
      if (l.writer === "huggingface")
        return `${FORMAT_LABEL.dcp} (HuggingFaceStorageWriter): ${files.length} safetensors shard${files.length === 1 ? "" : "s"} from ${ranks} rank${ranks === 1 ? "" : "s"}, the sharding read from their headers (it writes no .metadata)`;
      return `${FORMAT_LABEL.dcp}: ${files.length} data file${files.length === 1 ? "" : "s"} from ${ranks} rank${ranks === 1 ? "" : "s"}, ${l.metadataFile === null ? "no .metadata" : `.metadata version ${l.version ?? "?"}`}`;
    }
    case "deepspeed":
      return `${l.stage === 0 ? "DeepSpeed without ZeRO (stage 0: the optimizer is in the model states)" : `${FORMAT_LABEL.deepspeed} stage ${l.stage ?? "?"}`}, world size ${l.worldSize ?? "?"}, tag ${l.tag ?? "-"} (latest: ${l.latest ?? "none"}), DeepSpeed ${l.dsVersion ?? "?"}`;
    case "hf-index": {
      const shards = (l.shards as Array<{ present: boolean }>) ?? [];
      return `${FORMAT_LABEL["hf-index"]} ${l.indexFile}: ${shards.length} ${l.format} shard${shards.length === 1 ? "" : "s"}, total_size ${l.totalSize ?? "-"}`;
    }
  }
}

function whereText(t: LogicalTensorReport): string {
  if (t.chunks) {
    const files = [...new Set(t.chunks.map((c) => c.file ?? "?"))];
    return `${t.chunks.length} chunk${t.chunks.length === 1 ? "" : "s"} in ${files.join(", ")}`;
  }
  if (t.shard) return t.shard;
  const ds = t.deepspeed as { source?: string; group?: number; target?: string } | undefined;
  if (ds?.source === "param") return `fp32 partitions, group ${ds.group}`;
  if (ds?.source === "shared") return `tied to ${ds.target}`;
  return ds?.source ?? "-";
}

function tensorTable(tensors: readonly LogicalTensorReport[], style: Style): string {
  const hashes = tensors.some((t) => t.sha256 !== undefined);
  const stats = tensors.some((t) => t.stats !== undefined);
  const columns: Column[] = [
    { header: "name" },
    { header: "dtype" },
    { header: "shape" },
    { header: "bytes", align: "right" },
    { header: "where" },
    ...(hashes ? [{ header: "sha256" }] : []),
    ...(stats ? [{ header: "min / max / mean" }, { header: "nan/inf" }] : []),
  ];
  const rows = tensors.map((t) => {
    const row = [t.name, t.dtype, formatShape(t.shape), formatBytes(t.sizeBytes), whereText(t)];
    if (hashes) row.push(t.sha256 ? t.sha256.slice(0, 16) : "-");
    if (stats) row.push(...statsCells(t.stats));
    return row;
  });
  return renderTable(columns, rows, style.table ?? PLAIN_LAYOUT);
}

function resumeLines(report: ShardedInspectReport, style: Style): string[] {
  const { resume, convention } = report;
  if (!resume || !convention) return [];
  const lines = [`Convention ${convention.label} (${convention.evidence.join("; ")})`];
  if (resume.verdict === null) {
    lines.push(`Resume     ${style.red(resume.status)}: a load fails (see Findings)`);
    return lines;
  }
  const verdict = style[VERDICT_COLOR[resume.verdict]](resume.verdict);
  const parts = resume.components.flatMap((c) =>
    c.status === "not-saved" ? [] : [`${c.component} ${COMPONENT_MARK[c.status]}`],
  );
  lines.push(`Resume     ${verdict}: ${parts.join("  ")}`);
  if (resume.counter) {
    lines.push(
      `           counter ${resume.counter.name ?? "counter"} = ${resume.counter.value}; a resume starts at ${resume.resumeAt ?? 0}`,
    );
  }
  return lines;
}

export function renderShardedText(report: ShardedInspectReport, options: ShardedTextOptions): string {
  const { style } = options;
  const s = report.summary;
  const lines = [
    `${style.bold(report.file)}  ${style.dim(formatBytes(report.sizeBytes))}`,
    `Format     ${layoutLine(report)}`,
    `Tensors    ${s.tensorCount} logical tensor${s.tensorCount === 1 ? "" : "s"}, ${formatCount(s.elementCount)} elements, ${formatBytes(s.tensorBytes)}`,
    ...resumeLines(report, style),
  ];
  const sec = report.security;
  const risky = sec.files.filter((f) => f.verdict !== "clean" && f.verdict !== "framework");
  lines.push(
    `Security   ${risky.length > 0 ? style.red(sec.verdict) : style.green(sec.verdict)}: ${sec.files.length} file${sec.files.length === 1 ? "" : "s"} scanned${risky.length > 0 ? `; ${risky.map((f) => `${f.file} ${f.verdict}`).join(", ")}` : ""}`,
  );
  if (report.bytesItems && report.bytesItems.length > 0) {
    lines.push("", style.bold(`Bytes items (${report.bytesItems.length})`));
    const shown = options.all ? report.bytesItems : report.bytesItems.slice(0, DEFAULT_ROWS);
    for (const item of shown) {
      lines.push(`  ${item.name} = ${JSON.stringify(item.value)}`);
      // Tensors inside an item are not logical tensors of the checkpoint: shown here, where they are.
      for (const t of item.tensors ?? [])
        lines.push(
          style.dim(
            `    ${[item.name, ...t.path].join(".")}  ${t.dtype} [${t.shape.join(", ")}]${t.sha256 ? `  sha256 ${t.sha256.slice(0, 16)}` : ""}`,
          ),
        );
    }
    if (shown.length < report.bytesItems.length)
      lines.push(style.dim(`  ... ${report.bytesItems.length - shown.length} more (--all)`));
  }
  if (report.tensors.length > 0) {
    const shown = options.all ? report.tensors : report.tensors.slice(0, DEFAULT_ROWS);
    const title =
      shown.length < report.tensors.length
        ? `Tensors (first ${shown.length} of ${report.tensors.length}; --all lists every tensor, --filter GLOB selects)`
        : `Tensors (${report.tensors.length})`;
    lines.push("", style.bold(title), tensorTable(shown, style));
  } else if (options.filtered) {
    lines.push("", style.dim("No tensor matches the filter."));
  }
  if (report.findings.length > 0) {
    lines.push("", style.bold("Findings"));
    for (const f of report.findings) {
      lines.push(
        `  ${severityLabel(f.severity, style)} ${f.code}${f.file ? ` in ${f.file}` : ""}: ${f.message}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}
