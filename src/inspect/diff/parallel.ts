import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { nodeWorkerThreads } from "../../reader/nodeBuiltins.js";
import { type SharedAnswer, sharedControl, sharedResults, takeShared } from "../takeShared.js";
import type { FileRange } from "./side.js";
import {
  type CompareOptions,
  comparePair,
  type PairComparer,
  type TensorPair,
  type ValueOutcome,
} from "./values.js";

/**
 * `diff --values` on two threads (Node only): comparing values costs more than reading them (decoding and
 * summing run at a fraction of the page cache's speed), so a worker thread takes pairs too. Both threads take
 * pairs from a shared counter, so this one starts at once and the worker joins when it has booted. The worker
 * reads only pairs whose two tensors are plain ranges of files, opening each file by path and checking first
 * that it is the file this thread has open; the rest stay here.
 */
const WORKER = new URL("./compareWorker.js", import.meta.url);
/** Below this, starting a worker (~30 ms) costs more than it saves. Overridable for tests. */
const PARALLEL_MIN_BYTES = Number(process.env.CKPT_PARALLEL_MIN_BYTES ?? 256 * 1024 * 1024);

/** What the worker is given for one pair: each side's dtype and file range. */
export interface RangePair {
  readonly a: { readonly dtype: string; readonly range: FileRange };
  readonly b: { readonly dtype: string; readonly range: FileRange };
}

export interface CompareJob {
  readonly pairs: readonly RangePair[];
  /** The next untaken pair, shared by both threads (`takeShared`). */
  readonly control: Int32Array;
  readonly options: CompareOptions;
}

const rangeOf = (pair: TensorPair): RangePair | undefined =>
  pair.a.range && pair.b.range && pair.a.unreadable === undefined && pair.b.unreadable === undefined
    ? { a: { dtype: pair.a.dtype, range: pair.a.range }, b: { dtype: pair.b.dtype, range: pair.b.range } }
    : undefined;

export const compareInParallel: PairComparer = async (pairs, options) => {
  const ranged = pairs.map(rangeOf);
  const shareable = ranged.flatMap((r, i) => (r ? [i] : []));
  const bytes = shareable.reduce((sum, i) => sum + (ranged[i]?.a.range.length ?? 0), 0);
  const outcomes: Array<ValueOutcome | undefined> = pairs.map(() => undefined);
  const here = (i: number) => {
    outcomes[i] = comparePair(pairs[i] as TensorPair, options);
  };
  if (bytes < PARALLEL_MIN_BYTES || shareable.length < 2 || !existsSync(fileURLToPath(WORKER))) {
    pairs.forEach((_, i) => {
      here(i);
    });
    return outcomes as ValueOutcome[];
  }
  // The worker's share first, in the order of the pairs; the others after, on this thread only.
  const control = sharedControl();
  const job: CompareJob = { pairs: shareable.map((i) => ranged[i] as RangePair), control, options };
  // Required here, not imported: commands that never start this worker skip loading worker_threads.
  const { Worker } = nodeWorkerThreads();
  const worker = new Worker(WORKER, { workerData: job });
  const answer = new Promise<SharedAnswer<ValueOutcome>>((resolve) => {
    worker.once("message", resolve);
    worker.once("error", (error) => resolve({ error: error.message }));
    worker.once("exit", () => resolve({ error: "the worker exited without an answer" }));
  });
  try {
    takeShared(control, shareable.length, (k) => here(shareable[k] as number));
    pairs.forEach((_, i) => {
      if (!ranged[i]) here(i);
    });
    for (const [k, outcome] of sharedResults(await answer)) outcomes[shareable[k] as number] = outcome;
    // A worker that failed costs time, not the answer: this thread compares what it left undone.
    pairs.forEach((_, i) => {
      if (!outcomes[i]) here(i);
    });
    return outcomes as ValueOutcome[];
  } finally {
    await worker.terminate();
  }
};
