import { ReaderError } from "../../reader/errors.js";
import { join, normalize } from "../../reader/posixPath.js";
import { atLeast, type Severity } from "../findings.js";
import { judgeFile } from "../resume/judgeFile.js";
import type { TreeFiles } from "../treeFiles.js";
import { checkFile } from "./integrity.js";
import { detectRunLayout } from "./layout.js";
import { planRun, type ResumePlan, type VerifyMode } from "./plan.js";

/**
 * `ckpt audit DIR...`: every run in an outputs tree, judged like `resume-plan`, plus every loose checkpoint
 * file, over any tree. The walk follows symlinks once (no loops) and skips trees that never hold runs.
 */
const SKIPPED_DIRS = new Set([
  ".git",
  "node_modules",
  "__pycache__",
  ".venv",
  "venv",
  ".mypy_cache",
  ".cache",
  "wandb",
]);
const CHECKPOINT_FILE = /\.(pt|pth|ckpt|bin|safetensors|pth\.tar)$/;

export interface LooseFile {
  readonly file: string;
  readonly format: string | null;
  readonly status: string;
  readonly verdict: string | null;
  readonly convention: string | null;
}

export interface AuditSummary {
  readonly runs: number;
  readonly resumable: number;
  readonly byVerdict: Record<string, number>;
  readonly noUsableCheckpoint: number;
  readonly pointer: Record<string, number>;
  /** Runs whose newest checkpoint is truncated or corrupt. */
  readonly brokenNewest: number;
  readonly frameworkGoesWrong: number;
  readonly files: number;
  readonly findings: Record<Severity, number>;
}

export interface AuditReport {
  readonly schema: "ckpt.audit/1";
  readonly roots: string[];
  readonly runs: ResumePlan[];
  readonly files: LooseFile[];
  readonly summary: AuditSummary;
}

export interface AuditOptions {
  /** As `resume-plan`: CRCs of each run's pointer target and chosen checkpoint by default. */
  readonly verify: VerifyMode;
  /** Worker threads planning runs at once (in the built CLI; from sources, runs interleave on one thread). */
  readonly jobs: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** Plans many runs; the Node build may spread them over worker threads. */
export type RunPlanner = (
  runDirs: readonly string[],
  verify: VerifyMode,
  tick: () => void,
) => Promise<ResumePlan[]>;

export interface AuditTreeOptions extends AuditOptions {
  readonly fs: TreeFiles;
  /** Overrides planning every run here, in order, `jobs` at a time. */
  readonly planRuns?: RunPlanner | undefined;
}

export interface Found {
  readonly runs: string[];
  readonly files: string[];
}

/** A directory is a run when its layout is a framework's, or its checkpoints carry a counter in their names. */
function isRun(dir: string, fs: TreeFiles): boolean {
  const layout = detectRunLayout(dir, fs);
  if (layout.convention !== "unknown") return layout.candidates.length > 0 || layout.pointer?.exists === true;
  return layout.candidates.filter((c) => c.counterFromName !== undefined).length >= 2;
}

/** Runs and loose checkpoint files under `roots`, absolute paths in `fs`'s tree. */
export function findRunsIn(roots: readonly string[], fs: TreeFiles): Found {
  const runs: string[] = [];
  const files: string[] = [];
  const visited = new Set<string>();
  const walk = (dir: string) => {
    const real = fs.realpath(dir);
    if (visited.has(real)) return; // a symlink back into the tree
    visited.add(real);
    if (isRun(dir, fs)) {
      runs.push(dir);
      return;
    }
    for (const entry of fs.tree.list(dir) ?? []) {
      const path = join(dir, entry.name);
      if (entry.kind === "directory") {
        if (!SKIPPED_DIRS.has(entry.name)) walk(path);
      } else if (entry.kind === "file" && CHECKPOINT_FILE.test(entry.name)) {
        files.push(path);
      }
    }
  };
  for (const root of roots.map((r) => normalize(r))) {
    if (!fs.exists(root))
      throw new ReaderError("file-not-found", "no such file or directory", { file: root });
    if (fs.isDirectory(root)) walk(root);
    else files.push(root);
  }
  return { runs, files };
}

async function looseFile(path: string, verify: boolean, fs: TreeFiles): Promise<LooseFile> {
  const check = await checkFile(path, { verify, fs });
  if (check.status !== "ok")
    return { file: path, format: null, status: check.status, verdict: null, convention: null };
  try {
    const judged = judgeFile(check.checkpoint, path, fs);
    return {
      file: path,
      format: check.checkpoint.format,
      status: "ok",
      verdict: judged?.verdict.verdict ?? null,
      convention: judged?.verdict.convention ?? null,
    };
  } finally {
    check.checkpoint.source.close();
  }
}

/** Runs `tasks` with at most `limit` in flight, keeping results in order. */
async function pool<T>(
  count: number,
  limit: number,
  task: (index: number) => Promise<T>,
  onDone: () => void,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
      onDone();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, worker));
  return results;
}

function summarize(runs: readonly ResumePlan[], files: readonly LooseFile[]): AuditSummary {
  const byVerdict: Record<string, number> = {};
  const pointer: Record<string, number> = {};
  const findings: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  let brokenNewest = 0;
  let frameworkGoesWrong = 0;
  for (const run of runs) {
    const verdict = run.choice?.verdict ?? "no usable checkpoint";
    byVerdict[verdict] = (byVerdict[verdict] ?? 0) + 1;
    if (run.pointer && run.pointer.status !== "ok")
      pointer[run.pointer.status] = (pointer[run.pointer.status] ?? 0) + 1;
    const newest = run.candidates[0];
    if (
      newest &&
      (newest.status === "truncated" || newest.status === "corrupt" || newest.status === "incomplete-dir")
    )
      brokenNewest++;
    if (run.findings.some((f) => f.code === "framework-resume-differs")) frameworkGoesWrong++;
    for (const f of run.findings) findings[f.severity]++;
  }
  return {
    runs: runs.length,
    resumable: runs.filter((r) => r.resumable).length,
    byVerdict,
    noUsableCheckpoint: runs.filter((r) => r.choice === null).length,
    pointer,
    brokenNewest,
    frameworkGoesWrong,
    files: files.length,
    findings,
  };
}

/** Audits `roots`, absolute paths in `options.fs`'s tree. */
export async function auditTree(roots: readonly string[], options: AuditTreeOptions): Promise<AuditReport> {
  const { fs } = options;
  const found = findRunsIn(roots, fs);
  // A mistyped path or a folder of notes must not pass CI as "nothing wrong".
  if (found.runs.length === 0 && found.files.length === 0) {
    throw new ReaderError("no-checkpoints", "holds no training run and no checkpoint file", {
      file: roots.join(" "),
    });
  }
  const total = found.runs.length + found.files.length;
  let done = 0;
  const tick = () => options.onProgress?.(++done, total);
  const verify = options.verify;
  const runs = options.planRuns
    ? await options.planRuns(found.runs, verify, tick)
    : await pool(
        found.runs.length,
        options.jobs,
        (i) => planRun(found.runs[i] as string, { verify, fs }),
        tick,
      );
  const files = await pool(
    found.files.length,
    options.jobs,
    (i) => looseFile(found.files[i] as string, verify !== "none", fs),
    tick,
  );
  return {
    schema: "ckpt.audit/1",
    roots: roots.map((r) => normalize(r)),
    runs,
    files,
    summary: summarize(runs, files),
  };
}

/** Exit code for CI: 1 when any finding reaches `failOn` (or a loose file is broken), else 0. */
export function auditExitCode(report: AuditReport, failOn: Severity): 0 | 1 {
  const runProblem = report.runs.some((r) => r.findings.some((f) => atLeast(f.severity, failOn)));
  const fileProblem = report.files.some((f) => f.status !== "ok");
  return runProblem || fileProblem ? 1 : 0;
}
