import { statSync } from "node:fs";
import { CONVENTIONS, counterInName, nameCounterRule } from "../../inspect/resume/conventions.js";
import { detectFileConvention } from "../../inspect/resume/fingerprints.js";
import { ReaderError, type ReaderErrorCode } from "../../reader/errors.js";
import { openCheckpoint } from "../../reader/open.js";
import type { PickleEdit } from "../../repair/pickleEdit.js";
import { assertNotInput, type RepairFileResult, repairCheckpointFile } from "../../repair/repairFile.js";
import { type RunRepairResult, repairRun } from "../../repair/runRepair.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { refuseRemote } from "../remote.js";
import { writeJson } from "../render/json.js";

export interface RepairCommandOptions {
  readonly output: string | undefined;
  readonly setCounter: string | undefined;
  readonly counterFromFilename: boolean;
  readonly stripPrefix: string[];
  readonly addPrefix: string[];
  readonly drop: string[];
  /** Cut each storage to the bytes its tensors reach. */
  readonly compact: boolean;
  readonly dryRun: boolean;
  readonly json: boolean;
}

function usage(code: ReaderErrorCode, message: string): ReaderError {
  return new ReaderError(code, message);
}

/** `--counter-from-filename`: the convention's counter, read from the name as the framework wrote it. */
function counterFromFileName(path: string): PickleEdit {
  const checkpoint = openCheckpoint(path);
  try {
    const root = "root" in checkpoint ? checkpoint.root : null;
    const convention = detectFileConvention(root, path).convention;
    const rule = CONVENTIONS[convention === "unknown" ? "fvcore" : convention];
    const value = counterInName(rule.counterInName, path);
    const counter = nameCounterRule(rule, path);
    if (!counter || value === undefined) {
      throw usage("no-counter-in-name", `the file name ${path} carries no ${rule.label} counter`);
    }
    return { kind: "set-counter", name: counter.name, value };
  } finally {
    checkpoint.source.close();
  }
}

function fileEdits(path: string, options: RepairCommandOptions): PickleEdit[] {
  const edits: PickleEdit[] = [];
  if (options.setCounter !== undefined) {
    const match = /^([A-Za-z_][\w.]*)=(-?\d+)$/.exec(options.setCounter);
    if (!match) throw usage("invalid-counter", `--set-counter takes NAME=INTEGER, not ${options.setCounter}`);
    edits.push({ kind: "set-counter", name: match[1] as string, value: Number(match[2]) });
  }
  if (options.counterFromFilename) edits.push(counterFromFileName(path));
  for (const prefix of options.stripPrefix) edits.push({ kind: "strip-prefix", prefix });
  for (const prefix of options.addPrefix) edits.push({ kind: "add-prefix", prefix });
  for (const key of options.drop) edits.push({ kind: "drop", key });
  return edits;
}

function renderFile(result: RepairFileResult): string {
  const lines = [
    `${result.output}: written (${result.inputFormat} in, torch zip out, ${result.records} records, ${result.sizeBytes} bytes)`,
  ];
  for (const o of result.outcomes) lines.push(`  ${o.edit.kind}: ${o.detail}`);
  const c = result.compacted;
  if (c)
    lines.push(
      c.storages > 0
        ? `  compact: ${c.storages} storage${c.storages === 1 ? "" : "s"} cut to the bytes their tensors reach, ${c.bytesBefore} -> ${c.bytesAfter} bytes of storage`
        : "  compact: every stored byte is reached by a tensor; storages copied as they were",
    );
  if (result.droppedRecords.length > 0)
    lines.push(`  left out ${result.droppedRecords.length} storage records nothing references any more`);
  lines.push(`  ${result.input} is unchanged`);
  return `${lines.join("\n")}\n`;
}

function renderRun(result: RunRepairResult): string {
  const lines = [`${result.plan.runDir}${result.dryRun ? " (dry run: nothing written)" : ""}`];
  for (const step of result.steps)
    lines.push(`  ${result.dryRun ? "would" : "did"} ${step.action}: ${step.detail}`);
  if (result.plan.choice?.resumeAt !== null && result.plan.choice?.resumeAt !== undefined) {
    lines.push(
      `  training resumes at ${result.plan.choice.counterName ?? "step"} ${result.plan.choice.resumeAt}`,
    );
  }
  for (const limit of result.limits) lines.push(`  note: ${limit}`);
  return `${lines.join("\n")}\n`;
}

/** Exit 0 when written (or planned, with --dry-run), 2 for unusable input or an edit that changes nothing. */
export async function runRepair(path: string, options: RepairCommandOptions, io: Output): Promise<number> {
  try {
    refuseRemote([path], "repair");
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      // A missing path is reported by the reader below, with its code.
    }
    if (isDir) {
      const result = await repairRun(path, { dryRun: options.dryRun });
      if (options.json) writeJson({ schema: "ckpt.repair-run/1", ...result }, io.out);
      else io.out(renderRun(result));
      return result.plan.choice ? 0 : 1;
    }
    const edits = fileEdits(path, options);
    if (edits.length === 0 && !options.compact)
      throw usage("no-edit-given", "no edit option given: say what to repair");
    if (options.output === undefined) throw usage("output-required", "-o OUT is required");
    assertNotInput(path, options.output);
    if (options.dryRun) {
      writeJson(
        {
          schema: "ckpt.repair/1",
          input: path,
          output: options.output,
          edits,
          compact: options.compact,
          dryRun: true,
        },
        io.out,
      );
      return 0;
    }
    const result = repairCheckpointFile(path, options.output, edits, { compact: options.compact });
    if (options.json) writeJson({ schema: "ckpt.repair/1", ...result }, io.out);
    else io.out(renderFile(result));
    return 0;
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(path, error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
}
