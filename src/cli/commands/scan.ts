import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ScanReport } from "../../inspect/security/report.js";
import { scanReport } from "../../inspect/security/scanFile.js";
import { ReaderError } from "../../reader/errors.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { hasFindings, renderScanFile, renderScanSummary, type ScanOutcome } from "../render/scanText.js";

/** Files `ckpt scan` looks at inside a tree: checkpoints and anything named like a pickle. */
const SCANNED = /\.(pt|pth|ckpt|bin|pkl|pickle|pth\.tar|tar|safetensors|model|data|distcp|npy|npz|joblib)$/;
const SKIPPED_DIRS = new Set([".git", "node_modules", "__pycache__"]);

function filesUnder(path: string): string[] {
  const stats = statSync(path, { throwIfNoEntry: false });
  if (!stats?.isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (SKIPPED_DIRS.has(name)) continue;
    const child = join(path, name);
    const s = statSync(child, { throwIfNoEntry: false });
    if (s?.isDirectory()) for (const file of filesUnder(child)) out.push(file);
    else if (s?.isFile() && (SCANNED.test(name) || name === ".metadata")) out.push(child);
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
  const outcomes: ScanOutcome[] = [];
  for (const path of paths.flatMap(filesUnder)) {
    try {
      outcomes.push(scanReport(path));
    } catch (error) {
      if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
      outcomes.push(errorReport(path, error));
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
