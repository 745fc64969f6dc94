import { createHash } from "node:crypto";
import { parentPort, workerData } from "node:worker_threads";
import type { ByteRange, SharedWork } from "../rangeDigest.js";
import { crc32 } from "../zip/crc32.js";
import { fetchRange } from "./fetch.js";
import { nodeSend } from "./nodeClient.js";
import type {
  FetchOutcome,
  RemoteSettings,
  RemoteTarget,
  Transfer,
  Validator,
  WorkerRequest,
} from "./protocol.js";
import { serve } from "./serve.js";
import { digestSendFor } from "./socketClient.js";

/**
 * Node's I/O thread behind remote sources. As the channel's worker it serves ranged reads for a caller that
 * is blocked in `Atomics.wait`: each request names a shared data buffer for the body and a shared control
 * buffer for the outcome, and several may be in flight (read-ahead). As a digest worker (`workerData.kind ===
 * "digest"`) it takes ranges from a shared counter and hashes each as its body arrives, so `--hash` of a
 * remote file never copies tensor bytes to the caller's thread; its large plain-HTTP GETs go through
 * `socketClient.ts`, which takes bodies straight off the socket. The channel's reads use Node's `http`.
 */

export interface DigestJob {
  readonly kind: "digest";
  readonly target: RemoteTarget;
  readonly expect: Validator;
  readonly settings: RemoteSettings;
  readonly ranges: readonly ByteRange[];
  readonly work: SharedWork;
}

export type DigestResult =
  | { readonly ok: true; readonly transfer: Transfer }
  | Extract<FetchOutcome, { ok: false }>;

/** Digests of ranges taken from the shared counter until none is left (the same protocol as `takeRanges`). */
async function digest(job: DigestJob): Promise<DigestResult> {
  const transfer: Transfer = { requests: 0, bytes: 0 };
  const view = new DataView(job.work.digests.buffer);
  for (;;) {
    const i = Atomics.add(job.work.control, 0, 1);
    if (i >= job.ranges.length) return { ok: true, transfer };
    const { offset, length } = job.ranges[i] as ByteRange;
    const hash = job.work.kind === "sha256" ? createHash("sha256") : undefined;
    let crc = 0;
    const outcome = await fetchRange(
      digestSendFor(length),
      job.target,
      offset,
      length,
      job.expect,
      job.settings,
      (chunk) => {
        if (hash) hash.update(chunk);
        else crc = crc32(chunk, crc);
      },
    );
    transfer.requests += outcome.transfer.requests;
    transfer.bytes += outcome.transfer.bytes;
    if (!outcome.ok) return { ...outcome, transfer };
    if (hash) job.work.digests.set(hash.digest(), i * 32);
    else view.setUint32(i * 4, crc);
    Atomics.store(job.work.control, i + 1, 1);
  }
}

const job = workerData as DigestJob | undefined;
if (job?.kind === "digest") {
  digest(job).then(
    (result) => parentPort?.postMessage(result),
    (error) =>
      parentPort?.postMessage({
        ok: false,
        code: "remote-error",
        message: String(error),
        transfer: { requests: 0, bytes: 0 },
      }),
  );
} else {
  parentPort?.on("message", (request: WorkerRequest) => void serve(request, nodeSend));
}
