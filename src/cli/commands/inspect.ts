import { readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { globFilter, inspectCheckpointLazily, type LazyInspectReport } from "../../inspect/report.js";
import { localFiles } from "../../inspect/runs/localFiles.js";
import { rankDirs } from "../../inspect/runs/megatron.js";
import { itemScansInParallel } from "../../inspect/sharded/parallelScans.js";
import { inspectSharded, type ShardedInspectReport } from "../../inspect/sharded/report.js";
import { tensorSha256s } from "../../inspect/tensorHashes.js";
import { type TreeFiles, treeFiles } from "../../inspect/treeFiles.js";
import type { Checkpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import {
  isRemotePath,
  openLocation,
  openSource,
  type RemoteTreeSource,
  readLocated,
  remoteNeighbours,
  transferOf,
} from "../../reader/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import {
  closeSharded,
  detectSharded,
  openSharded,
  type ShardedCheckpoint,
} from "../../reader/sharded/index.js";
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

/**
 * A remote input's report says what reading it moved (`transfer`); a local one's is unchanged. Its tensors'
 * reports are made as they are written (`inspectCheckpointLazily`), from the tree alone.
 */
type Report = LazyInspectReport & { readonly transfer?: Readonly<Transfer> };
type Outcome =
  | { readonly report: Report }
  | { readonly sharded: ShardedInspectReport & { readonly transfer?: Readonly<Transfer> } }
  | { readonly error: ErrorReport };

/**
 * The directory (or index file) of a sharded checkpoint `target` names, if it names one: a DCP, DeepSpeed or
 * Hugging Face directory, an `*.index.json`, or a DCP `.metadata` (which means its directory).
 */
function shardedTarget(target: string): string | undefined {
  const path = resolve(target);
  const tree = localFiles().tree;
  const candidate = basename(path) === ".metadata" ? dirname(path) : path;
  return detectSharded(tree, candidate) === undefined ? undefined : candidate;
}

/** The directory a sharded target stands for: an index file's own, "" (a remote tree's root) for a bare name. */
function runDirOf(path: string): string {
  if (!path.endsWith(".json")) return path;
  const dir = dirname(path);
  return dir === "." ? "" : dir;
}

/**
 * The sharded checkpoint at `path` of `fs` (a local directory, or the root "" of a remote prefix's tree) as
 * one report; a remote one says what reading it moved.
 */
async function inspectShardedPath(
  target: string,
  path: string,
  options: InspectCommandOptions,
  fs: TreeFiles = localFiles(),
  transfer?: () => Transfer,
): Promise<Outcome> {
  let checkpoint: ShardedCheckpoint | undefined;
  // A large local DCP checkpoint: the worker that shares its item scans starts while `.metadata` is decoded.
  // Local files only: a remote source has no identity a worker could check, and opening it costs a request.
  const itemScanner = transfer ? undefined : itemScansInParallel({ warmFor: path });
  try {
    checkpoint = openSharded(fs.tree, path);
    const filter = options.filter ? globFilter(options.filter) : undefined;
    const sharded = await inspectSharded(checkpoint, target, {
      fs,
      path: runDirOf(path),
      hash: options.hash,
      stats: options.stats,
      ...(filter ? { filter } : {}),
      ...(itemScanner ? { itemScanner } : {}),
    });
    return { sharded: transfer ? { ...sharded, transfer: transfer() } : sharded };
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    return { error: errorReport(target, error) };
  } finally {
    itemScanner?.dispose();
    if (checkpoint) closeSharded(checkpoint);
  }
}

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
    const report = inspectCheckpointLazily(checkpoint, path, {
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
    // An index or a DCP `.metadata` names the sharded checkpoint of its directory, as it does locally.
    const name = target.slice(target.lastIndexOf("/") + 1);
    if (name === ".metadata" || name.endsWith(".index.json")) {
      const { tree: parent, file } = remoteNeighbours(target);
      listings.push(parent);
      const path = name === ".metadata" ? "" : file;
      if (detectSharded(parent, path) !== undefined)
        return [await inspectShardedPath(target, path, options, treeFiles(parent), () => parent.totals())];
    }
    const opened = openLocation(target);
    if (opened.kind === "file") return [await inspectFile(target, options, () => opened.source)];
    tree = opened.tree;
    listings.push(tree);
    // A DCP, DeepSpeed or Hugging Face directory as one checkpoint, its index or .metadata read first.
    if (detectSharded(tree, "") !== undefined) {
      const totals = (tree as Partial<RemoteTreeSource>).totals?.bind(tree);
      return [await inspectShardedPath(target, "", options, treeFiles(tree), totals)];
    }
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
  const sharded = shardedTarget(target);
  if (sharded !== undefined) return [await inspectShardedPath(target, sharded, options)];
  if (!isDir) return [await inspectFile(target, options)];
  const found = await checkpointsIn(checkpointFilesIn(target), options);
  if (found.length > 0) return found;
  // A NeMo 2 checkpoint (`...-last/`): its weights are the sharded checkpoint in `weights/`, beside `context/`.
  const weights = shardedTarget(join(target, NEMO_WEIGHTS));
  if (weights !== undefined) return [await inspectShardedPath(join(target, NEMO_WEIGHTS), weights, options)];
  // A Megatron-LM iteration (`iter_0000200/`): one directory per model-parallel rank, each rank's files in it.
  // The tree's paths are absolute; the reports keep the path as given.
  const ranks = rankDirs(localFiles(), resolve(target)).map((rank) => join(target, rank.name));
  return checkpointsIn(ranks.sort().flatMap(checkpointFilesIn), options);
}

/** nemo.lightning.ckpt_utils.WEIGHTS_PATH: where a NeMo 2 checkpoint directory keeps its weights. */
const NEMO_WEIGHTS = "weights";

/** Each file's outcome, but those of files that are no checkpoint (logs, configs). */
async function checkpointsIn(paths: readonly string[], options: InspectCommandOptions): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (const path of paths) outcomes.push(await inspectFile(path, options));
  return outcomes.filter((o) => !("error" in o && o.error.code === "not-a-checkpoint"));
}

function exitCodeOf(outcome: Outcome, failOn: FailOn): number {
  if ("error" in outcome) return 2;
  return exitCodeFor("sharded" in outcome ? outcome.sharded.findings : outcome.report.findings, failOn);
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
    const payload = outcomes.map((o) => ("error" in o ? o.error : "sharded" in o ? o.sharded : o.report));
    const single = payload.length === 1 && target === (payload[0] as { file: string }).file;
    writeJson(single ? payload[0] : payload, io.out, ["tensors"]);
  } else {
    // The text renderer loads only for people: machines asking for --json skip it.
    const { renderInspectText } = await import("../render/inspectText.js");
    const { renderShardedText } = await import("../render/shardedText.js");
    const textOptions = { style: io.style, all: options.all, filtered: options.filter !== undefined };
    outcomes.forEach((o, i) => {
      if ("error" in o) io.err(`${formatErrorLine(o.error)}\n`);
      else if ("sharded" in o) io.out(`${i > 0 ? "\n" : ""}${renderShardedText(o.sharded, textOptions)}`);
      else
        io.out(
          `${i > 0 ? "\n" : ""}${renderInspectText({ ...o.report, tensors: o.report.tensors.toJSON() }, textOptions)}`,
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
