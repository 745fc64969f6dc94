import { parentPort } from "node:worker_threads";
import { ReaderError } from "../../reader/errors.js";
import { planResume } from "./node.js";
import type { VerifyMode } from "./plan.js";

/**
 * A worker thread for `ckpt audit --jobs N`: plans the runs it is sent, one at a time, so that N runs are
 * read and checksummed on N threads. Plans are plain data and cross the thread boundary as they are.
 */
export interface WorkerRequest {
  readonly id: number;
  readonly runDir: string;
  readonly verify: VerifyMode;
}

export type WorkerResponse =
  | { readonly id: number; readonly plan: Awaited<ReturnType<typeof planResume>> }
  | { readonly id: number; readonly error: { readonly code: string | undefined; readonly message: string } };

parentPort?.on("message", async (request: WorkerRequest) => {
  try {
    const plan = await planResume(request.runDir, { verify: request.verify });
    parentPort?.postMessage({ id: request.id, plan } satisfies WorkerResponse);
  } catch (error) {
    const code = error instanceof ReaderError ? error.code : undefined;
    parentPort?.postMessage({
      id: request.id,
      error: { code, message: (error as Error).message },
    } satisfies WorkerResponse);
  }
});
