import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { localFiles } from "../../inspect/runs/node.js";
import { type ScanReport, scanReportOf } from "../../inspect/security/report.js";
import { scanReport } from "../../inspect/security/scanFile.js";
import { scanSharded } from "../../inspect/sharded/scan.js";
import { ReaderError } from "../../reader/errors.js";
import { closeSharded, detectSharded, openSharded } from "../../reader/sharded/index.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { hasFindings, renderScanFile, renderScanSummary, type ScanOutcome } from "../render/scanText.js";

/** Files `ckpt scan` looks at inside a tree: checkpoints and anything named like a pickle. */
const SCANNED = /\.(pt|pth|ckpt|bin|pkl|pickle|pth\.tar|tar|safetensors|model|data|distcp|npy|npz|joblib)$/;
const SKIPPED_DIRS = new Set([".git", "node_modules", "__pycache__"]);

/** What scan reads: files, and DCP directories, whose data files are runs of torch.save archives. */
type ScanTarget =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "dcp"; readonly dir: string };

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
    else if (s?.isFile() && (SCANNED.test(name) || name === ".metadata"))
      out.push({ kind: "file", path: child });
  }
  return out;
}

/** One report per file of a DCP directory, each item of a data file scanned on its own bytes. */
function dcpReports(dir: string): ScanOutcome[] {
  const checkpoint = openSharded(localFiles().tree, resolve(dir));
  try {
    return scanSharded(checkpoint).map((s) => ({
      ...scanReportOf(join(dir, s.file), s.scan),
      items: s.items,
      loadedBy: s.loadedBy,
    }));
  } finally {
    closeSharded(checkpoint);
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
}

/** `ckpt scan PATH...`: exit 0 clean, 1 dangerous or unknown code found, 2 unreadable or inconclusive. */
export function runScan(paths: string[], options: ScanCommandOptions, io: Output): number {
  const outcomes: ScanOutcome[] = [];
  for (const target of paths.flatMap(targetsUnder)) {
    const name = target.kind === "file" ? target.path : target.dir;
    try {
      if (target.kind === "file") outcomes.push(scanReport(target.path));
      else outcomes.push(...dcpReports(target.dir));
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
  }
  if (outcomes.length === 0) return 2;
  return outcomes.reduce((worst, o) => Math.max(worst, o.schema === "ckpt.error/1" ? 2 : EXIT[o.verdict]), 0);
}
