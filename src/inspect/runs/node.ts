import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CachedTree } from "../../reader/cachedTree.js";
import { ReaderError, type ReaderErrorCode } from "../../reader/errors.js";
import { nodeWorkerThreads } from "../../reader/nodeBuiltins.js";
import { NodeTree } from "../../reader/nodeTree.js";
import "../../reader/rangeDigest.js"; // installs the two-thread digester for --verify
import { treeFiles } from "../treeFiles.js";
import {
  type AuditOptions,
  type AuditOutline,
  type AuditReport,
  type AuditSink,
  type AuditTreeOptions,
  auditTree,
  auditTreeStreamed,
  type Found,
  findRunsIn,
  type RunPlanner,
} from "./audit.js";
import type { WorkerRequest, WorkerResponse } from "./auditWorker.js";
import { localFiles } from "./localFiles.js";
import { type PlanOptions, planRun, type ResumePlan, type VerifyMode } from "./plan.js";

/**
 * Runs on this machine's file system: paths as the user typed them (relative to the working directory), read
 * through a `NodeTree` at `/`, and audits spread over worker threads when that pays. Everything else in
 * `runs/` works on any tree; only this module knows it is Node.
 */
export { localFiles };

export function planResume(runDir: string, options: PlanOptions): Promise<ResumePlan> {
  return planRun(resolve(runDir), {
    ...options,
    ...(options.configFile !== undefined ? { configFile: resolve(options.configFile) } : {}),
    fs: localFiles(),
    displayDir: runDir,
  });
}

export function findRuns(roots: readonly string[]): Found {
  for (const root of roots)
    if (!existsSync(root))
      throw new ReaderError("file-not-found", "no such file or directory", { file: root });
  return findRunsIn(
    roots.map((r) => resolve(r)),
    localFiles(),
  );
}

export function audit(roots: readonly string[], options: AuditOptions): Promise<AuditReport> {
  return auditTree(
    roots.map((r) => resolve(r)),
    localAuditOptions(roots, options),
  );
}

/** `audit`, each run handed to `sink` as it is planned and none kept (`auditTreeStreamed`). */
export function auditStreamed(
  roots: readonly string[],
  options: AuditOptions,
  sink: AuditSink,
): Promise<AuditOutline> {
  return auditTreeStreamed(
    roots.map((r) => resolve(r)),
    localAuditOptions(roots, options),
    sink,
  );
}

function localAuditOptions(roots: readonly string[], options: AuditOptions): AuditTreeOptions {
  for (const root of roots)
    if (!existsSync(root))
      throw new ReaderError("file-not-found", "no such file or directory", { file: root });
  // Worker threads pay ~150 ms each to load ckpt; only streaming every byte (--verify-all) earns that back.
  const workers = options.verify === "all" && options.jobs > 1 && existsSync(fileURLToPath(WORKER));
  // An audit only reads: each directory is listed and each file stat-ed once, not once per question.
  const fs = treeFiles(new CachedTree(new NodeTree("/")));
  return { ...options, fs, planRuns: workers ? onWorkers(options.jobs) : undefined };
}

/** The compiled worker beside this module; absent when running from TypeScript sources (tests). */
const WORKER = new URL("./auditWorker.js", import.meta.url);

/** Plans runs on `jobs` worker threads: reading and CRC work then use every core. */
function onWorkers(jobs: number): RunPlanner {
  return async (runDirs: readonly string[], verify: VerifyMode, onPlan) => {
    if (runDirs.length === 0) return;
    const workers = Array.from(
      { length: Math.min(jobs, runDirs.length) },
      () => new (nodeWorkerThreads().Worker)(WORKER),
    );
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
                try {
                  onPlan(response.id, response.plan);
                } catch (error) {
                  reject(error);
                  return;
                }
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
  };
}
