import { ReaderError } from "../../reader/errors.js";
import { type ConvertProgress, type ConvertResult, convertCheckpoint } from "../../repair/convert/convert.js";
import { parseShardSize } from "../../repair/convert/shards.js";
import { errorReport, formatErrorLine } from "../errors.js";
import { formatBytes, formatCount } from "../format.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { transferLine } from "../transfer.js";

export interface ConvertCommandOptions {
  readonly output: string | undefined;
  readonly maxShardSize: string | undefined;
  readonly select: string | undefined;
  readonly all: boolean;
  readonly stripPrefix: string[];
  readonly addPrefix: string[];
  readonly drop: string[];
  readonly metadata: string[];
  readonly json: boolean;
}

/** Progress for a terminal: one line rewritten in place at most ten times a second, erased at the end. */
function terminalProgress(write: (text: string) => void): {
  update: (p: ConvertProgress) => void;
  end: () => void;
} {
  const started = performance.now();
  let last = 0;
  let shown = false;
  return {
    update(p) {
      const now = performance.now();
      if (now - last < 100 && p.bytesDone < p.bytesTotal) return;
      last = now;
      const seconds = (now - started) / 1000;
      const rate = seconds > 0 ? p.bytesDone / seconds : 0;
      const left = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : 0;
      const percent = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
      write(
        `\r\x1b[2Kconverting ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)} (${percent}%), ` +
          `${formatCount(p.tensorsDone)}/${formatCount(p.tensorsTotal)} tensors, ${formatBytes(rate)}/s, ` +
          `${Math.ceil(left)} s left`,
      );
      shown = true;
    },
    end() {
      if (shown) write("\r\x1b[2K");
    },
  };
}

function render(result: ConvertResult): string {
  const lines: string[] = [];
  const total = result.outputs.reduce((n, o) => n + o.sizeBytes, 0);
  lines.push(
    `${result.source.path}: ${result.taken}, ${formatCount(result.tensorsWritten)} tensors, ${formatBytes(result.dataBytes)} of data, in ${result.seconds.toFixed(1)} s`,
  );
  for (const o of result.outputs) {
    const what = o.tensors > 0 ? `${formatCount(o.tensors)} tensors` : "index";
    lines.push(`  wrote ${o.path} (${what}, ${formatBytes(o.sizeBytes)})`);
  }
  if (result.outputs.length > 1) lines.push(`  ${formatBytes(total)} in ${result.outputs.length} files`);
  if (result.aliases.length > 0) {
    const shown = result.aliases.slice(0, 5).map((a) => `${a.name} = ${a.keptAs}`);
    const more = result.aliases.length > 5 ? `, and ${result.aliases.length - 5} more` : "";
    lines.push(`  ${result.aliases.length} shared tensors written once: ${shown.join(", ")}${more}`);
  }
  if (result.views.savedBytes > 0) {
    lines.push(
      `  ${result.views.tensors} views written as their own elements, ${formatBytes(result.views.savedBytes)} smaller than their storages`,
    );
  }
  for (const group of result.overlapping)
    lines.push(`  overlapping views copied separately: ${group.join(", ")}`);
  if (result.dropped.length > 0) lines.push(`  dropped ${result.dropped.length} tensors (--drop)`);
  for (const part of result.leftOut) {
    // DeepSpeed converts to the fp32 weights only: its optimizer states have no --select.
    const how =
      result.source.format === "deepspeed"
        ? `${part.key === "optimizer" ? "the optimizer's states in the model states" : "the ZeRO partitions of the optimizer's states"}; ckpt converts the weights`
        : `--select ${part.key ?? part.part} or --all to convert it`;
    lines.push(
      `  left out ${part.part}${part.key ? ` (${part.key})` : ""}: ${formatCount(part.tensors)} tensors, ${formatBytes(part.bytes)} (${how})`,
    );
  }
  const values = result.valuesLeftOut ?? [];
  if (values.length > 0) {
    const shown =
      values.slice(0, 3).join(", ") + (values.length > 3 ? `, and ${values.length - 3} more` : "");
    lines.push(
      `  left out ${formatCount(values.length)} non-tensor values (${shown}; --metadata KEY writes one into __metadata__)`,
    );
  }
  lines.push(`  ${result.source.path} is unchanged`);
  if (result.source.transfer) lines.push(transferLine(result.source.transfer).trimEnd());
  return `${lines.join("\n")}\n`;
}

/** Exit 0 when written, 2 when the input cannot be converted (nothing is written then). */
export function runConvert(path: string, options: ConvertCommandOptions, io: Output): number {
  const progress = !options.json && process.stderr.isTTY ? terminalProgress(io.err) : undefined;
  try {
    if (options.output === undefined) {
      throw new ReaderError(
        "output-required",
        "-o OUT is required: a .safetensors file, a .pth file, or DIR/ for shards",
      );
    }
    if (options.select !== undefined && options.all) {
      throw new ReaderError("convert-refused", "--select and --all ask for different things: give one");
    }
    const result = convertCheckpoint(path, options.output, {
      select: options.select,
      all: options.all,
      stripPrefix: options.stripPrefix,
      addPrefix: options.addPrefix,
      drop: options.drop,
      metadata: options.metadata,
      hash: options.json,
      ...(options.maxShardSize !== undefined ? { maxShardSize: parseShardSize(options.maxShardSize) } : {}),
      ...(progress ? { onProgress: progress.update } : {}),
    });
    progress?.end();
    if (options.json) writeJson({ schema: "ckpt.convert/1", ...result }, io.out);
    else io.out(render(result));
    return 0;
  } catch (error) {
    progress?.end();
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(path, error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
}
