import { Channel } from "./channel.js";

/**
 * The channel's worker in a browser: the reader runs in a dedicated worker (where `Atomics.wait` may block),
 * and posts each request to a second worker (`webIoWorker.ts`) that fetches. SharedArrayBuffer needs a
 * cross-origin isolated page (COOP `same-origin`, COEP `require-corp`). Portable: no Node import.
 */

interface WorkerLike {
  postMessage(message: unknown): void;
}
type WorkerConstructor = new (url: URL, options: { type: "module" }) => WorkerLike;

export function webChannel(workerUrl: URL = new URL("./webIoWorker.js", import.meta.url)): Channel {
  let worker: WorkerLike | undefined;
  return new Channel((request) => {
    if (!worker) {
      const WorkerClass = (globalThis as unknown as { Worker: WorkerConstructor }).Worker;
      worker = new WorkerClass(workerUrl, { type: "module" });
    }
    worker.postMessage(request);
  });
}
