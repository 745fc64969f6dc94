import { existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ReaderError, type ReaderErrorCode } from "../../reader/errors.js";
import { atLeast, type Severity } from "../findings.js";
import { judgeFile } from "../resume/judgeFile.js";
import type { WorkerRequest, WorkerResponse } from "./auditWorker.js";
import { checkFile } from "./integrity.js";
import { detectRunLayout } from "./layout.js";
import { planResume, type ResumePlan, type VerifyMode } from "./plan.js";

/**
 * `ckpt audit DIR...`: every run in an outputs tree, judged like `resume-plan`, plus every loose checkpoint
 * file. The walk follows symlinks once (no loops) and skips trees that never hold runs.
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

interface Found {
  readonly runs: string[];
  readonly files: string[];
}

/** A directory is a run when its layout is a framework's, or its checkpoints carry a counter in their names. */
function isRun(dir: string): boolean {
  const layout = detectRunLayout(dir);
  if (layout.convention !== "unknown") return layout.candidates.length > 0 || layout.pointer?.exists === true;
  return layout.candidates.filter((c) => c.counterFromName !== undefined).length >= 2;
}

export function findRuns(roots: readonly string[]): Found {
  const runs: string[] = [];
  const files: string[] = [];
  const visited = new Set<string>();
  const walk = (dir: string) => {
    let real: string;
    try {
      real = realpathSync(dir);
    } catch {
      return;
    }
    if (visited.has(real)) return; // a symlink back into the tree
    visited.add(real);
    if (isRun(dir)) {
      runs.push(dir);
      return;
    }
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      let stats: ReturnType<typeof statSync>;
      try {
        stats = statSync(path);
      } catch {
        continue; // a dangling symlink
      }
      if (stats.isDirectory()) {
        if (!SKIPPED_DIRS.has(name)) walk(path);
      } else if (stats.isFile() && CHECKPOINT_FILE.test(name)) {
        files.push(path);
      }
    }
  };
  for (const root of roots) {
    const stats = statSync(root, { throwIfNoEntry: false });
    if (!stats) throw new ReaderError("file-not-found", "no such file or directory", { file: root });
    if (stats.isDirectory()) walk(resolve(root));
    else files.push(resolve(root));
  }
  return { runs, files };
}

async function looseFile(path: string, verify: boolean): Promise<LooseFile> {
  const check = await checkFile(path, { verify });
  if (check.status !== "ok")
    return { file: path, format: null, status: check.status, verdict: null, convention: null };
  try {
    const judged = judgeFile(check.checkpoint, path);
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

/** The compiled worker beside this module; absent when running from TypeScript sources (tests). */
const WORKER = new URL("./auditWorker.js", import.meta.url);

/** Plans runs on `jobs` worker threads: reading and CRC work then use every core. */
async function planOnWorkers(
  runDirs: readonly string[],
  jobs: number,
  verify: VerifyMode,
  tick: () => void,
): Promise<ResumePlan[]> {
  const results = new Array<ResumePlan>(runDirs.length);
  const workers = Array.from({ length: Math.min(jobs, runDirs.length) }, () => new Worker(WORKER));
  let next = 0;
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((done, reject) => {
            const send = () => {
              if (next >= runDirs.length) return done();
              const id = next++;
              worker.postMessage({ id, runDir: runDirs[id] as string, verify } satisfies WorkerRequest);
            };
            worker.on("message", (response: WorkerResponse) => {
              if ("error" in response) {
                const code = (response.error.code as ReaderErrorCode | undefined) ?? "io-error";
                reject(
                  new ReaderError(code, response.error.message, { file: runDirs[response.id] as string }),
                );
                return;
              }
              results[response.id] = response.plan;
              tick();
              send();
            });
            worker.on("error", reject);
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}

export async function audit(roots: readonly string[], options: AuditOptions): Promise<AuditReport> {
  const found = findRuns(roots);
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
  // Worker threads pay ~150 ms each to load ckpt; only streaming every byte (--verify-all) earns that back.
  const useWorkers =
    verify === "all" && options.jobs > 1 && found.runs.length > 1 && existsSync(fileURLToPath(WORKER));
  const runs = useWorkers
    ? await planOnWorkers(found.runs, options.jobs, verify, tick)
    : await pool(
        found.runs.length,
        options.jobs,
        (i) => planResume(found.runs[i] as string, { verify }),
        tick,
      );
  const files = await pool(
    found.files.length,
    options.jobs,
    (i) => looseFile(found.files[i] as string, verify !== "none"),
    tick,
  );
  return {
    schema: "ckpt.audit/1",
    roots: roots.map((r) => resolve(r)),
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
