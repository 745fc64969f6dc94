import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  type ByteRange,
  type DigestKind,
  type Digests,
  digestBuffer,
  digestRange,
  installRangeDigester,
} from "./digests.js";
import { ReaderError } from "./errors.js";
import { nodeWorkerThreads } from "./nodeBuiltins.js";
import type { ByteSource, FileIdentity } from "./source.js";

/**
 * CRC-32 or SHA-256 of byte ranges of one file (`--verify`'s records, `--hash`'s contiguous tensors), on two
 * threads when there is enough to read. Measured on this 2-core machine, warm page cache: reading alone runs
 * at ~9 GB/s, CRC-32 at ~3.8 GB/s and SHA-256 at ~1.6 GB/s per thread, so the digest bounds the speed and a
 * second thread nearly doubles it. Both threads take ranges from a shared counter, so this thread starts at
 * once and the worker joins when it has booted (~30 ms). The worker opens the file by path and first checks
 * that it is the same file (device, inode, size, mtime) that this thread has open.
 */

export type { ByteRange, DigestKind, Digests } from "./digests.js";

/** Below this, starting a worker (~30 ms) costs more than it saves. Overridable for tests. */
const PARALLEL_MIN_BYTES = Number(process.env.CKPT_PARALLEL_MIN_BYTES ?? 256 * 1024 * 1024);
const WORKER = new URL("./rangeDigestWorker.js", import.meta.url);

/** Digests of `ranges`, read through `source` on this thread only. */
export function digestRangesHere<K extends DigestKind>(
  source: Pick<ByteSource, "readInto">,
  ranges: readonly ByteRange[],
  kind: K,
): Digests<K> {
  const shared = sharedWork(ranges.length, kind);
  takeRanges(source, ranges, shared);
  return results(shared, kind);
}

/**
 * What both threads share: the next range to take (each thread takes ranges until none is left, so the
 * thread that starts first or reads faster does more), a done flag per range, and the digests.
 */
export interface SharedWork {
  readonly kind: DigestKind;
  /** [0]: the index of the next untaken range; then one done flag per range. */
  readonly control: Int32Array;
  /** CRC-32: 4 bytes per range; SHA-256: 32. */
  readonly digests: Uint8Array;
}

export function sharedWork(count: number, kind: DigestKind): SharedWork {
  return {
    kind,
    control: new Int32Array(new SharedArrayBuffer(4 * (count + 1))),
    digests: new Uint8Array(new SharedArrayBuffer(count * (kind === "crc32" ? 4 : 32))),
  };
}

/** Digests ranges for as long as some are untaken (`only`: just these indices, ignoring the counter). */
export function takeRanges(
  source: Pick<ByteSource, "readInto">,
  ranges: readonly ByteRange[],
  work: SharedWork,
  only?: readonly number[],
): void {
  const buffer = digestBuffer(ranges);
  const view = new DataView(work.digests.buffer);
  for (let k = 0; ; k++) {
    const i = only ? only[k] : Atomics.add(work.control, 0, 1);
    if (i === undefined || i >= ranges.length) return;
    const digest = digestRange(source, ranges[i] as ByteRange, buffer, work.kind);
    if (typeof digest === "string") work.digests.set(Buffer.from(digest, "hex"), i * 32);
    else view.setUint32(i * 4, digest);
    Atomics.store(work.control, i + 1, 1);
  }
}

export function results<K extends DigestKind>(work: SharedWork, kind: K): Digests<K> {
  const count = work.control.length - 1;
  const view = new DataView(work.digests.buffer);
  const out = Array.from({ length: count }, (_, i) =>
    kind === "crc32"
      ? view.getUint32(i * 4)
      : Buffer.from(work.digests.subarray(i * 32, i * 32 + 32)).toString("hex"),
  );
  return out as Digests<K>;
}

/**
 * A source that digests its own ranges: a remote object, whose I/O workers hash each body as it arrives
 * instead of copying every byte to this thread.
 */
export interface ParallelDigester {
  digestRanges<K extends DigestKind>(ranges: readonly ByteRange[], kind: K): Promise<Digests<K>>;
}

function isParallelDigester(source: ByteSource): source is ByteSource & ParallelDigester {
  return typeof (source as Partial<ParallelDigester>).digestRanges === "function";
}

export interface WorkerJob {
  readonly identity: FileIdentity;
  readonly ranges: readonly ByteRange[];
  readonly work: SharedWork;
}

export type WorkerResult = { readonly done: true } | { readonly changed: true } | { readonly error: string };

/**
 * Digests of `ranges` of the file behind `source`. When they total at least 256 MiB and the source is a file,
 * a worker thread takes ranges too, as soon as it has started.
 * @throws ReaderError `file-changed` when the worker finds another file at the path, and what reads throw.
 */
export async function digestRanges<K extends DigestKind>(
  source: ByteSource,
  ranges: readonly ByteRange[],
  kind: K,
): Promise<Digests<K>> {
  if (isParallelDigester(source)) return source.digestRanges(ranges, kind);
  const total = ranges.reduce((sum, r) => sum + r.length, 0);
  const identity = source.identity?.();
  if (!identity || total < PARALLEL_MIN_BYTES || ranges.length < 2 || !existsSync(fileURLToPath(WORKER)))
    return digestRangesHere(source, ranges, kind);

  const work = sharedWork(ranges.length, kind);
  const job: WorkerJob = { identity, ranges, work };
  // Required here, not imported: commands that never start this worker skip loading worker_threads.
  const { Worker } = nodeWorkerThreads();
  const worker = new Worker(WORKER, { workerData: job });
  const answer = new Promise<WorkerResult>((resolve) => {
    worker.once("message", resolve);
    worker.once("error", (error) => resolve({ error: error.message }));
    worker.once("exit", () => resolve({ error: "the worker exited without an answer" }));
  });
  try {
    takeRanges(source, ranges, work);
    const result = await answer;
    if ("changed" in result) {
      throw new ReaderError("file-changed", `${source.name} changed while being read`, { file: source.name });
    }
    // A worker that failed costs time, not the answer: this thread digests what it left undone.
    const undone = ranges.map((_, i) => i).filter((i) => Atomics.load(work.control, i + 1) === 0);
    takeRanges(source, ranges, work, undone);
    return results(work, kind);
  } finally {
    await worker.terminate();
  }
}

// Loaded by Node's run analysis (`inspect/runs/node.ts`): its audits and plans verify on two threads.
installRangeDigester(digestRanges);
