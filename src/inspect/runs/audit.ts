import { ReaderError } from "../../reader/errors.js";
import { join, normalize } from "../../reader/posixPath.js";
import { atLeast, type Severity } from "../findings.js";
import { judgeFile } from "../resume/judgeFile.js";
import type { TreeFiles } from "../treeFiles.js";
import { checkFile } from "./integrity.js";
import { planRun, type ResumePlan, type VerifyMode } from "./plan.js";
import { isRunDir, SKIPPED_DIRS } from "./runDirs.js";

/**
 * `ckpt audit DIR...`: every run in an outputs tree, judged like `resume-plan`, plus every loose checkpoint
 * file, over any tree. The walk follows symlinks once (no loops) and skips trees that never hold runs.
 */
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

/**
 * Plans many runs, handing each plan to `onPlan` with its run's index as it is made (in any order); the Node
 * build may spread them over worker threads.
 */
export type RunPlanner = (
  runDirs: readonly string[],
  verify: VerifyMode,
  onPlan: (index: number, plan: ResumePlan) => void,
) => Promise<void>;

export interface AuditTreeOptions extends AuditOptions {
  readonly fs: TreeFiles;
  /** Overrides planning every run here, in order, `jobs` at a time. */
  readonly planRuns?: RunPlanner | undefined;
}

/** An audit without its runs: what `auditTreeStreamed` returns once it has handed every run on. */
export type AuditOutline = Omit<AuditReport, "runs">;

/** Where `auditTreeStreamed` puts the report as it is made: its head first, then each run, in order. */
export interface AuditSink {
  begin(head: Pick<AuditReport, "schema" | "roots">): void;
  run(plan: ResumePlan): void;
}

export interface Found {
  readonly runs: string[];
  readonly files: string[];
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
    if (isRunDir(dir, fs)) {
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

/** Runs `tasks` with at most `limit` in flight, handing each result on with its index as it finishes. */
async function pool<T>(
  count: number,
  limit: number,
  task: (index: number) => Promise<T>,
  onDone: (index: number, result: T) => void,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    // After one task fails no other starts or reports: the caller is already handling the error.
    while (next < count && !failed) {
      const index = next++;
      try {
        const result = await task(index);
        if (!failed) onDone(index, result);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, worker));
}

/**
 * Hands results that finish in any order to `emit` in index order: a result waits only until those before it
 * are out, so at most about as many wait as run at once.
 */
function inOrder<T>(emit: (result: T) => void): (index: number, result: T) => void {
  const waiting = new Map<number, T>();
  let next = 0;
  return (index, result) => {
    waiting.set(index, result);
    while (waiting.has(next)) {
      const ready = waiting.get(next) as T;
      waiting.delete(next++);
      emit(ready);
    }
  };
}

/** The summary's counts, added to run by run so that no run need be kept for them. */
class SummaryCounts {
  private runs = 0;
  private resumable = 0;
  private noUsableCheckpoint = 0;
  private brokenNewest = 0;
  private frameworkGoesWrong = 0;
  private readonly byVerdict: Record<string, number> = {};
  private readonly pointer: Record<string, number> = {};
  private readonly findings: Record<Severity, number> = { error: 0, warning: 0, info: 0 };

  add(run: ResumePlan): void {
    this.runs++;
    if (run.resumable) this.resumable++;
    if (run.choice === null) this.noUsableCheckpoint++;
    const verdict = run.choice?.verdict ?? "no usable checkpoint";
    this.byVerdict[verdict] = (this.byVerdict[verdict] ?? 0) + 1;
    if (run.pointer && run.pointer.status !== "ok")
      this.pointer[run.pointer.status] = (this.pointer[run.pointer.status] ?? 0) + 1;
    const newest = run.candidates[0];
    if (
      newest &&
      (newest.status === "truncated" ||
        newest.status === "corrupt" ||
        newest.status === "incomplete-dir" ||
        newest.status === "unfinished")
    )
      this.brokenNewest++;
    if (run.findings.some((f) => f.code === "framework-resume-differs")) this.frameworkGoesWrong++;
    for (const f of run.findings) this.findings[f.severity]++;
  }

  summary(files: readonly LooseFile[]): AuditSummary {
    return {
      runs: this.runs,
      resumable: this.resumable,
      byVerdict: this.byVerdict,
      noUsableCheckpoint: this.noUsableCheckpoint,
      pointer: this.pointer,
      brokenNewest: this.brokenNewest,
      frameworkGoesWrong: this.frameworkGoesWrong,
      files: files.length,
      findings: this.findings,
    };
  }
}

/** Audits `roots`, absolute paths in `options.fs`'s tree. */
export async function auditTree(roots: readonly string[], options: AuditTreeOptions): Promise<AuditReport> {
  let head: Pick<AuditReport, "schema" | "roots"> | undefined;
  const runs: ResumePlan[] = [];
  const outline = await auditTreeStreamed(roots, options, {
    begin: (h) => {
      head = h;
    },
    run: (plan) => runs.push(plan),
  });
  return {
    ...(head as Pick<AuditReport, "schema" | "roots">),
    runs,
    files: outline.files,
    summary: outline.summary,
  };
}

/**
 * Audits `roots` as `auditTree` does, handing each run's plan to `sink` as soon as it and those before it are
 * made, and keeping none: memory stays flat however many runs the tree holds (an audit of 10,000 checkpoints
 * kept ~27 MB of plans). Throws before `sink.begin` when the tree holds nothing to audit.
 */
export async function auditTreeStreamed(
  roots: readonly string[],
  options: AuditTreeOptions,
  sink: AuditSink,
): Promise<AuditOutline> {
  const { fs } = options;
  const found = findRunsIn(roots, fs);
  // A mistyped path or a folder of notes must not pass CI as "nothing wrong".
  if (found.runs.length === 0 && found.files.length === 0) {
    throw new ReaderError("no-checkpoints", "holds no training run and no checkpoint file", {
      file: roots.join(" "),
    });
  }
  const head = { schema: "ckpt.audit/1" as const, roots: roots.map((r) => normalize(r)) };
  sink.begin(head);
  const total = found.runs.length + found.files.length;
  let done = 0;
  const tick = () => options.onProgress?.(++done, total);
  const verify = options.verify;
  const counts = new SummaryCounts();
  const emitRun = inOrder<ResumePlan>((plan) => {
    counts.add(plan);
    sink.run(plan);
  });
  let planned = 0;
  const onPlan = (index: number, plan: ResumePlan) => {
    planned++;
    tick();
    emitRun(index, plan);
  };
  if (options.planRuns) await options.planRuns(found.runs, verify, onPlan);
  else
    await pool(
      found.runs.length,
      options.jobs,
      (i) => planRun(found.runs[i] as string, { verify, fs }),
      onPlan,
    );
  // A planner that skips or repeats a run must not make an audit that passes with runs missing.
  if (planned !== found.runs.length)
    throw new Error(`the run planner reported ${planned} plans for ${found.runs.length} runs`);
  const files = new Array<LooseFile>(found.files.length);
  await pool(
    found.files.length,
    options.jobs,
    (i) => looseFile(found.files[i] as string, verify !== "none", fs),
    (i, file) => {
      tick();
      files[i] = file;
    },
  );
  return { ...head, files, summary: counts.summary(files) };
}

/**
 * Exit code for CI: 1 when any finding reaches `failOn` (or a loose file is broken), else 0. It reads the
 * summary's counts, so a streamed audit that kept no run has it too.
 */
export function auditExitCode(report: Pick<AuditReport, "files" | "summary">, failOn: Severity): 0 | 1 {
  const counts = report.summary.findings;
  const runProblem = (Object.keys(counts) as Severity[]).some((s) => counts[s] > 0 && atLeast(s, failOn));
  const fileProblem = report.files.some((f) => f.status !== "ok");
  return runProblem || fileProblem ? 1 : 0;
}
