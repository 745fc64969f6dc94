import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { globFilter, type InspectReport, inspectCheckpoint } from "../../inspect/report.js";
import { localFiles } from "../../inspect/runs/node.js";
import { tensorSha256s } from "../../inspect/tensorHashes.js";
import { treeFiles } from "../../inspect/treeFiles.js";
import type { Checkpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import {
  isRemotePath,
  openLocation,
  openSource,
  readLocated,
  remoteNeighbours,
  transferOf,
} from "../../reader/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import type { ByteSource } from "../../reader/source.js";
import type { TreeSource } from "../../reader/tree.js";
import { type ErrorReport, errorReport, formatErrorLine } from "../errors.js";
import { exitCodeFor, type FailOn } from "../exitCode.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { addTransfers, transferLine } from "../transfer.js";

export interface InspectCommandOptions {
  readonly json: boolean;
  readonly all: boolean;
  readonly filter: string | undefined;
  readonly hash: boolean;
  readonly stats: boolean;
  readonly failOn: FailOn;
}

/** A remote input's report says what reading it moved (`transfer`); a local one's is unchanged. */
type Report = InspectReport & { readonly transfer?: Readonly<Transfer> };
type Outcome = { readonly report: Report } | { readonly error: ErrorReport };

async function inspectFile(
  path: string,
  options: InspectCommandOptions,
  open: (path: string) => ByteSource = openSource,
): Promise<Outcome> {
  let source: ByteSource | undefined;
  let checkpoint: Checkpoint | undefined;
  let neighbours: ReturnType<typeof remoteNeighbours> | undefined;
  try {
    source = open(path);
    checkpoint = readLocated(source, path);
    // A remote file's companions are looked for where it is: by a listing, or a probe per name over HTTP.
    neighbours = isRemotePath(path) ? remoteNeighbours(path) : undefined;
    const filter = options.filter ? globFilter(options.filter) : undefined;
    const report = inspectCheckpoint(checkpoint, path, {
      neighbours: neighbours
        ? { fs: treeFiles(neighbours.tree), path: neighbours.file }
        : { fs: localFiles(), path: resolve(path) },
      hash: options.hash,
      stats: options.stats,
      ...(filter ? { filter } : {}),
      ...(options.hash ? { sha256: await tensorSha256s(checkpoint, filter) } : {}),
    });
    // A trainer may still be writing the file: an answer about bytes that changed underneath would be wrong.
    checkpoint.source.assertUnchanged();
    source.close();
    neighbours?.tree.close();
    const transfer = addTransfers([transferOf(source), neighbours?.tree.totals()]);
    return { report: transfer ? { ...report, transfer } : report };
  } catch (error) {
    source?.close();
    neighbours?.tree.close();
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    return { error: errorReport(path, error) };
  }
}

/** A remote file, or each file of a remote directory (an S3 prefix, a Hub repo's directory), as for a local one. */
async function remoteOutcomes(
  target: string,
  options: InspectCommandOptions,
  listings: unknown[],
): Promise<Outcome[]> {
  let tree: TreeSource;
  try {
    const opened = openLocation(target);
    if (opened.kind === "file") return [await inspectFile(target, options, () => opened.source)];
    tree = opened.tree;
    listings.push(tree);
  } catch (error) {
    return [{ error: errorReport(target, error) }];
  }
  const outcomes: Outcome[] = [];
  const base = target.replace(/\/+$/, "");
  for (const entry of tree.list("") ?? []) {
    if (entry.kind !== "file") continue;
    outcomes.push(await inspectFile(`${base}/${entry.name}`, options, () => tree.open(entry.name)));
  }
  return outcomes.filter((o) => !("error" in o && o.error.code === "not-a-checkpoint"));
}

/** The files of a directory that ckpt can read, in name order; other files (logs, configs) are skipped. */
function checkpointFilesIn(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .map((name) => join(dir, name))
    .filter((path) => {
      try {
        return statSync(path).isFile();
      } catch {
        return false;
      }
    });
}

function holdsDirectories(dir: string): boolean {
  try {
    return readdirSync(dir, { withFileTypes: true }).some((entry) => entry.isDirectory());
  } catch {
    return false;
  }
}

async function outcomesFor(
  target: string,
  options: InspectCommandOptions,
  listings: unknown[],
): Promise<Outcome[]> {
  if (isRemotePath(target)) return remoteOutcomes(target, options, listings);
  let isDir = false;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    // Missing paths fall through to inspectFile, which reports them with their code.
  }
  if (!isDir) return [await inspectFile(target, options)];
  const outcomes: Outcome[] = [];
  for (const path of checkpointFilesIn(target)) outcomes.push(await inspectFile(path, options));
  return outcomes.filter((o) => !("error" in o && o.error.code === "not-a-checkpoint"));
}

function exitCodeOf(outcome: Outcome, failOn: FailOn): number {
  return "error" in outcome ? 2 : exitCodeFor(outcome.report.findings, failOn);
}

/** `ckpt inspect FILE|DIR`: returns the exit code; prints through `io`. */
export async function runInspect(
  target: string,
  options: InspectCommandOptions,
  io: Output,
): Promise<number> {
  const listings: unknown[] = [];
  const outcomes = await outcomesFor(target, options, listings);
  if (outcomes.length === 0) {
    const error: ErrorReport = {
      schema: "ckpt.error/1",
      file: target,
      code: "not-a-checkpoint",
      message: "the directory holds no checkpoint file",
      next:
        !isRemotePath(target) && holdsDirectories(target)
          ? `for run directories and outputs/ trees, use \`ckpt audit ${target}\` or \`ckpt resume-plan RUN_DIR\``
          : "pass a checkpoint file, or a directory that holds some",
    };
    if (options.json) writeJson(error, io.out);
    else io.err(`${formatErrorLine(error)}\n`);
    return 2;
  }
  if (options.json) {
    const payload = outcomes.map((o) => ("error" in o ? o.error : o.report));
    const single = payload.length === 1 && target === (payload[0] as { file: string }).file;
    writeJson(single ? payload[0] : payload, io.out, ["tensors"]);
  } else {
    // The text renderer loads only for people: machines asking for --json skip it.
    const { renderInspectText } = await import("../render/inspectText.js");
    outcomes.forEach((o, i) => {
      if ("error" in o) io.err(`${formatErrorLine(o.error)}\n`);
      else
        io.out(
          `${i > 0 ? "\n" : ""}${renderInspectText(o.report, { style: io.style, all: options.all, filtered: options.filter !== undefined })}`,
        );
    });
    const transfer = addTransfers([
      ...outcomes.map((o) => ("report" in o ? o.report.transfer : undefined)),
      ...listings.map(transferOf),
    ]);
    if (transfer) io.out(transferLine(transfer));
  }
  return outcomes.reduce((worst, o) => Math.max(worst, exitCodeOf(o, options.failOn)), 0);
}
