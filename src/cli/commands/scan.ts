import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ScanReport, scanReportOf } from "../../inspect/security/report.js";
import { scanSource } from "../../inspect/security/scan.js";
import { ReaderError } from "../../reader/errors.js";
import { isRemotePath, openLocation, openSource, transferOf } from "../../reader/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
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

function scanned(name: string): boolean {
  return SCANNED.test(name) || name === ".metadata";
}

/** A file to scan, and how to open it. */
interface Input {
  readonly path: string;
  readonly open: (path: string) => ByteSource;
}

/** The files below `dir` of a remote tree, as `filesUnder` walks a local one. */
function treeFilesUnder(tree: TreeSource, base: string, dir = ""): Input[] {
  const out: Input[] = [];
  for (const entry of tree.list(dir) ?? []) {
    if (SKIPPED_DIRS.has(entry.name)) continue;
    const child = joinPath(dir, entry.name);
    if (entry.kind === "directory") out.push(...treeFilesUnder(tree, base, child));
    else if (entry.kind === "file" && scanned(entry.name))
      out.push({ path: `${base}/${child}`, open: () => tree.open(child) });
  }
  return out;
}

/** A remote path's inputs: the object itself, or the files under the prefix or directory it names. */
function remoteInputs(path: string, listings: unknown[]): Input[] | ErrorReport {
  try {
    const opened = openLocation(path);
    if (opened.kind === "file") return [{ path, open: () => opened.source }];
    // The listings' requests are the tree's own; each file's are its source's.
    listings.push(opened.tree);
    return treeFilesUnder(opened.tree, path.replace(/\/+$/, ""));
  } catch (error) {
    return errorReport(path, error);
  }
}

function filesUnder(path: string): string[] {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats?.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (SKIPPED_DIRS.has(name)) continue;
    const child = join(path, name);
    const s = statSync(child, { throwIfNoEntry: false });
    if (s?.isDirectory()) for (const file of filesUnder(child)) out.push(file);
    else if (s?.isFile() && scanned(name)) out.push(child);
  }
  return out;
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
}

/** `ckpt scan PATH...`: exit 0 clean, 1 dangerous or unknown code found, 2 unreadable or inconclusive. */
export function runScan(paths: string[], options: ScanCommandOptions, io: Output): number {
  const outcomes: Array<ScanOutcome & { transfer?: Readonly<Transfer> }> = [];
  const inputs: Input[] = [];
  const listings: unknown[] = [];
  for (const path of paths) {
    if (!isRemotePath(path))
      inputs.push(...filesUnder(path).map((file) => ({ path: file, open: openSource })));
    else {
      const remote = remoteInputs(path, listings);
      if (Array.isArray(remote)) inputs.push(...remote);
      else outcomes.push(remote);
    }
  }
  for (const { path, open } of inputs) {
    let source: ByteSource | undefined;
    try {
      source = open(path);
      const report = scanReportOf(path, scanSource(source, { deep: true }));
      source.close();
      const transfer = transferOf(source);
      outcomes.push(transfer ? { ...report, transfer: { ...transfer } } : report);
    } catch (error) {
      if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
      outcomes.push(errorReport(path, error));
      source?.close();
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
