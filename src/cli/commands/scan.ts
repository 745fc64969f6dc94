import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ScanReport, scanReport } from "../../inspect/security/report.js";
import { ReaderError } from "../../reader/errors.js";
import { type ErrorReport, errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { weightsOnlyText } from "../render/weightsOnlyText.js";
import type { Style } from "../style.js";

/** Files `ckpt scan` looks at inside a tree: checkpoints and anything named like a pickle. */
const SCANNED = /\.(pt|pth|ckpt|bin|pkl|pickle|pth\.tar|tar|safetensors|model|data|distcp)$/;
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

function renderScan(report: ScanReport, style: Style): string {
  const color =
    report.verdict === "dangerous" || report.verdict === "inconclusive"
      ? style.red
      : report.verdict === "unknown"
        ? style.yellow
        : style.green;
  const lines = [`${style.bold(report.file)}: ${color(report.verdict)} (${report.format})`];
  for (const cls of ["dangerous", "unknown", "framework"] as const) {
    const names = [
      ...new Set(report.globals.filter((g) => g.class === cls).map((g) => `${g.module}.${g.name}`)),
    ];
    if (names.length > 0) lines.push(`  ${cls.padEnd(9)} ${names.join(", ")}`);
  }
  const wo = weightsOnlyText(report.weightsOnly, { detail: true });
  lines.push(`  ${wo}`);
  for (const f of report.findings) lines.push(`  ${f.severity.padEnd(7)} ${f.code}: ${f.message}`);
  return `${lines.join("\n")}\n`;
}

/** `ckpt scan PATH...`: exit 0 clean, 1 dangerous or unknown code found, 2 unreadable or inconclusive. */
export function runScan(paths: string[], options: { json: boolean }, io: Output): number {
  const outcomes: Array<ScanReport | ErrorReport> = [];
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
      else io.out(renderScan(o, io.style));
    }
  }
  if (outcomes.length === 0) return 2;
  return outcomes.reduce((worst, o) => Math.max(worst, o.schema === "ckpt.error/1" ? 2 : EXIT[o.verdict]), 0);
}
