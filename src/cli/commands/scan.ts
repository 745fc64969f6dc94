import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { localFiles } from "../../inspect/runs/node.js";
import { type ScanReport, scanReportOf } from "../../inspect/security/report.js";
import { type FileScan, scanSource, scanWithoutProbe } from "../../inspect/security/scan.js";
import { scanReport } from "../../inspect/security/scanFile.js";
import { itemScansInParallel } from "../../inspect/sharded/parallelScans.js";
import { startShardedScans } from "../../inspect/sharded/scan.js";
import { ReaderError } from "../../reader/errors.js";
import { isRemotePath, openLocation, readLocated, transferOf } from "../../reader/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { closeSharded, detectSharded, openSharded } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { joinPath, type TreeSource } from "../../reader/tree.js";
import { type ErrorReport, errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { hasFindings, renderScanFile, renderScanSummary, type ScanOutcome } from "../render/scanText.js";
import { addTransfers, transferLine } from "../transfer.js";

/** Files `ckpt scan` looks at inside a tree: checkpoints and anything named like a pickle. */
const SCANNED = /\.(pt|pth|ckpt|bin|pkl|pickle|pth\.tar|tar|safetensors|model|data|distcp|npy|npz|joblib)$/;
const SKIPPED_DIRS = new Set([".git", "node_modules", "__pycache__"]);

/** What scan reads: files, and DCP directories, whose data files are runs of torch.save archives. */
type ScanTarget =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "dcp"; readonly dir: string }
  /** A remote object, or a file of a remote prefix or Hub directory. */
  | { readonly kind: "remote"; readonly path: string; readonly open: () => ByteSource };

function scanned(name: string): boolean {
  return SCANNED.test(name) || name === ".metadata";
}

/** The files below `dir` of a remote tree, as `targetsUnder` walks a local one. */
function treeTargetsUnder(tree: TreeSource, base: string, dir = ""): ScanTarget[] {
  const out: ScanTarget[] = [];
  for (const entry of tree.list(dir) ?? []) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const child = joinPath(dir, entry.name);
    if (entry.kind === "directory") out.push(...treeTargetsUnder(tree, base, child));
    else if (entry.kind === "file" && scanned(entry.name))
      out.push({ kind: "remote", path: `${base}/${child}`, open: () => tree.open(child) });
  }
  return out;
}

/** A remote path's targets: the object itself, or the files under the prefix or directory it names. */
function remoteTargets(path: string, listings: unknown[]): ScanTarget[] | ErrorReport {
  try {
    const opened = openLocation(path);
    if (opened.kind === "file") return [{ kind: "remote", path, open: () => opened.source }];
    // The listings' requests are the tree's own; each file's are its source's.
    listings.push(opened.tree);
    return treeTargetsUnder(opened.tree, path.replace(/\/+$/, ""));
  } catch (error) {
    return errorReport(path, error);
  }
}

/**
 * A remote file's scan: what torch.load runs, from the reads that open it (what inspect reads), unless `deep`
 * asks for every record to be probed for hidden pickles as a local file's are (a request per record).
 */
function remoteScan(path: string, source: ByteSource, deep: boolean): FileScan {
  if (deep) return scanSource(source, { deep: true });
  try {
    return scanWithoutProbe(readLocated(source, path));
  } catch (error) {
    // A file that does not open as a checkpoint is scanned as it lies, for whatever its pickles name.
    if (!(error instanceof ReaderError)) throw error;
    return scanSource(source);
  }
}

/** A remote file's report, with what reading it moved. */
function remoteReport(
  path: string,
  open: () => ByteSource,
  deep: boolean,
): ScanOutcome & { transfer?: Readonly<Transfer> } {
  const source = open();
  try {
    const report = scanReportOf(path, remoteScan(path, source, deep));
    source.close();
    const transfer = transferOf(source);
    return transfer ? { ...report, transfer: { ...transfer } } : report;
  } finally {
    source.close();
  }
}

function isDcpDir(path: string): boolean {
  return detectSharded(localFiles().tree, resolve(path)) === "dcp";
}

function targetsUnder(path: string): ScanTarget[] {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats?.isDirectory()) return [{ kind: "file", path }];
  if (isDcpDir(path)) return [{ kind: "dcp", dir: path }];
  const out: ScanTarget[] = [];
  for (const name of readdirSync(path).sort()) {
    if (SKIPPED_DIRS.has(name)) continue;
    const child = join(path, name);
    const s = statSync(child, { throwIfNoEntry: false });
    if (s?.isDirectory()) out.push(...targetsUnder(child));
    else if (s?.isFile() && scanned(name)) out.push({ kind: "file", path: child });
  }
  return out;
}

/** One report per file of a DCP directory, each item of a data file scanned on its own bytes. */
async function dcpReports(dir: string): Promise<ScanOutcome[]> {
  // The data files on two threads: a large run has hundreds of thousands of item archives.
  const helper = itemScansInParallel({ warmFor: dir });
  try {
    const checkpoint = openSharded(localFiles().tree, resolve(dir));
    const pending = startShardedScans(checkpoint, "scan", helper);
    try {
      const reports = await pending.finish();
      return reports.map((report) => ({ ...report, file: join(dir, report.file) }));
    } catch (error) {
      // The worker takes no further file: the error is reported now, not after the rest is scanned.
      pending.abandon();
      throw error;
    } finally {
      closeSharded(checkpoint);
    }
  } finally {
    helper.dispose();
  }
}

const EXIT: Record<ScanReport["verdict"], number> = {
  clean: 0,
  framework: 0,
  unknown: 1,
  dangerous: 1,
  inconclusive: 2,
};

export interface ScanCommandOptions {
  readonly json: boolean;
  /** Only files with findings, and the summary. */
  readonly quiet: boolean;
  /** Remote files too have every record probed for hidden pickles (local files always do). */
  readonly deep: boolean;
}

/** `ckpt scan PATH...`: exit 0 clean, 1 dangerous or unknown code found, 2 unreadable or inconclusive. */
export async function runScan(paths: string[], options: ScanCommandOptions, io: Output): Promise<number> {
  const outcomes: Array<ScanOutcome & { transfer?: Readonly<Transfer> }> = [];
  const listings: unknown[] = [];
  const targets: ScanTarget[] = [];
  for (const path of paths) {
    if (!isRemotePath(path)) targets.push(...targetsUnder(path));
    else {
      const remote = remoteTargets(path, listings);
      if (Array.isArray(remote)) targets.push(...remote);
      else outcomes.push(remote);
    }
  }
  for (const target of targets) {
    const name = target.kind === "dcp" ? target.dir : target.path;
    try {
      if (target.kind === "file") outcomes.push(scanReport(target.path));
      else if (target.kind === "remote") outcomes.push(remoteReport(target.path, target.open, options.deep));
      else outcomes.push(...(await dcpReports(target.dir)));
    } catch (error) {
      if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
      outcomes.push(errorReport(name, error));
    }
  }
  if (options.json) {
    writeJson(outcomes.length === 1 ? outcomes[0] : outcomes, io.out);
  } else {
    for (const o of outcomes) {
      if (o.schema === "ckpt.error/1") io.err(`${formatErrorLine(o)}\n`);
      else if (!options.quiet || hasFindings(o)) io.out(renderScanFile(o, io.style));
    }
    io.out(renderScanSummary(outcomes, io.style));
    const transfer = addTransfers([
      ...outcomes.map((o) => ("transfer" in o ? o.transfer : undefined)),
      ...listings.map(transferOf),
    ]);
    if (transfer) io.out(transferLine(transfer));
  }
  if (outcomes.length === 0) return 2;
  return outcomes.reduce((worst, o) => Math.max(worst, o.schema === "ckpt.error/1" ? 2 : EXIT[o.verdict]), 0);
}
