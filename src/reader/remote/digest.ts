import { availableParallelism } from "node:os";
import { nodeWorkerThreads } from "../nodeBuiltins.js";
import { type DigestKind, type Digests, results, sharedWork } from "../rangeDigest.js";
import { outcomeError } from "./channel.js";
import type { DigestJob, DigestResult } from "./ioWorker.js";
import { workerFile } from "./nodeChannel.js";
import type { DigestRequest } from "./remoteSource.js";

/**
 * Digests of ranges of a remote object, on one worker per core, each taking ranges from a shared counter and
 * hashing each body as it arrives (one GET per range on a keep-alive connection). This thread only waits: on
 * two cores, SHA-256 is the bound, as it is for a local file, so the two workers use both.
 */
export async function digestRemote<K extends DigestKind>(request: DigestRequest<K>): Promise<Digests<K>> {
  const { target, expect, settings, ranges, kind, transfer, name } = request;
  const work = sharedWork(ranges.length, kind);
  if (ranges.length === 0) return results(work, kind);
  const threads = Math.max(1, Math.min(availableParallelism(), ranges.length));
  const job: DigestJob = { kind: "digest", target, expect, settings, ranges, work };
  const workers = Array.from(
    { length: threads },
    () => new (nodeWorkerThreads().Worker)(workerFile("ioWorker"), { workerData: job }),
  );
  try {
    const answers = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<DigestResult>((resolve) => {
            const failed = (message: string) =>
              resolve({ ok: false, code: "remote-error", message, transfer: { requests: 0, bytes: 0 } });
            worker.once("message", resolve);
            worker.once("error", (error) => failed(error.message));
            worker.once("exit", () => failed("a digest worker exited without an answer"));
          }),
      ),
    );
    for (const answer of answers) {
      transfer.requests += answer.transfer.requests;
      transfer.bytes += answer.transfer.bytes;
    }
    const failure = answers.find((a) => !a.ok);
    if (failure && !failure.ok) throw outcomeError(failure, name);
    return results(work, kind);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
