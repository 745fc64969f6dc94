import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { nodeWorkerThreads } from "../../reader/nodeBuiltins.js";
import type { FileIdentity } from "../../reader/source.js";
import { type SharedAnswer, sharedResults } from "../takeShared.js";
import type { FileReport, FileReportKind } from "./fileReports.js";
import type { DataFileItems } from "./fileScan.js";
import type { ItemScanHelper, ItemScanJob } from "./scan.js";

/**
 * A DCP checkpoint's data files scanned on a second thread too (Node only). Opening 200,000 item archives
 * and judging their merged scans is most of a second that nothing waits on until the report's security
 * section, so a worker takes files while this thread builds the rest of the report, and this thread takes
 * what is left when it gets there. The worker opens each file by path, checking first that it is the file
 * this thread saw (its identity when the job was posted), and answers with the file's report, never its scan
 * (a record per item's global).
 *
 * `warmFor` starts the worker before `.metadata` is decoded (the caller knows a large DCP directory from its
 * listing), so that its start-up (~100 ms of loading and compiling) is not on the way.
 */
const WORKER = new URL("./itemScanWorker.js", import.meta.url);
/** Below this many items a worker (~100 ms to start) costs more than it saves. Overridable for tests. */
const PARALLEL_MIN_ITEMS = minItems(process.env.CKPT_PARALLEL_MIN_ITEMS);

function minItems(setting: string | undefined): number {
  const n = Number(setting);
  return setting !== undefined && setting !== "" && !Number.isNaN(n) ? n : 20_000;
}
/** A `.metadata` this large lists about that many items (~185 bytes each at 4 ranks). */
const WARM_METADATA_BYTES = PARALLEL_MIN_ITEMS * 150;

/** The size of `dir/.metadata`, or 0 (no such file, or `dir` is a file). */
function metadataBytes(dir: string): number {
  try {
    return statSync(join(dir, ".metadata"), { throwIfNoEntry: false })?.size ?? 0;
  } catch {
    return 0;
  }
}

/** What the worker is posted: each data file by identity instead of its open source. */
export interface WorkerJob {
  readonly files: ReadonlyArray<DataFileItems & { readonly identity: FileIdentity }>;
  readonly labels: readonly string[];
  readonly report: FileReportKind;
  readonly control: Int32Array;
}

export type WorkerAnswer = SharedAnswer<unknown>;

/** Data file `f`'s identity as this thread opens it (undefined: not a local file, or it does not open). */
function identityOf(open: ItemScanJob["open"], f: number): FileIdentity | undefined {
  try {
    const source = open(f);
    try {
      return source.identity?.();
    } finally {
      source.close();
    }
  } catch {
    return undefined;
  }
}

/** The worker's start, whether or not a job comes: unreferenced, so an idle one never holds the process. */
function startWorker(): Worker | undefined {
  if (!existsSync(fileURLToPath(WORKER))) return undefined;
  // Required here, not imported: commands that never start this worker skip loading worker_threads.
  const worker = new (nodeWorkerThreads().Worker)(WORKER);
  worker.unref();
  // A worker that fails before a job comes (it did not load) only costs the job its second thread.
  worker.on("error", () => {});
  return worker;
}

/**
 * A helper for one checkpoint. With `warmFor` (a local directory), its worker starts now when the directory's
 * `.metadata` is large enough to be worth one; a job that never comes costs that start only.
 */
export function itemScansInParallel(options: { readonly warmFor?: string } = {}): ItemScanHelper & {
  dispose(): void;
} {
  const warm = options.warmFor !== undefined && metadataBytes(options.warmFor) >= WARM_METADATA_BYTES;
  let worker = warm ? startWorker() : undefined;
  let used = false;
  return {
    start<K extends FileReportKind>(job: ItemScanJob & { readonly report: K }) {
      const items = job.files.reduce((n, f) => n + f.columns.offsets.length, 0);
      if (items < PARALLEL_MIN_ITEMS) return undefined;
      const identities = job.files.map((_, f) => identityOf(job.open, f));
      if (identities.includes(undefined)) return undefined;
      worker ??= startWorker();
      if (!worker) return undefined;
      used = true;
      const posted: WorkerJob = {
        files: job.files.map(({ file, columns, hasBytes }, i) => ({
          file,
          columns,
          hasBytes,
          identity: identities[i] as FileIdentity,
        })),
        labels: job.labels,
        report: job.report,
        control: job.control,
      };
      const running = worker;
      running.ref();
      running.postMessage(posted);
      return new Promise<ReadonlyMap<number, FileReport<K>>>((resolve, reject) => {
        const settle = (answer: WorkerAnswer) => {
          void running.terminate();
          // A worker that failed costs time, not the answer: the caller scans what it did not answer for.
          try {
            resolve(sharedResults(answer) as Map<number, FileReport<K>>);
          } catch (error) {
            reject(error);
          }
        };
        running.once("message", settle);
        running.once("error", (error) => settle({ error: error.message }));
        running.once("exit", () => settle({ error: "the worker exited without an answer" }));
      });
    },
    dispose() {
      if (!used) void worker?.terminate();
    },
  };
}
