import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Worker } from "node:worker_threads";
import { ReaderError } from "../errors.js";
import { nodeWorkerThreads } from "../nodeBuiltins.js";
import { Channel } from "./channel.js";

/**
 * The channel's worker in Node: one `worker_threads` worker per process, started on the first remote read
 * (~40 ms) and unref'd, so it never keeps the process alive.
 */

/**
 * The worker's file. Built, it sits next to this module (tsc's dist/reader/remote/, or the bundle's dist/bundle/).
 * Run from sources (vitest), this module is a .ts file that Node cannot start as a worker: the build's copy is
 * used, which `npm test` makes before the tests run.
 */
export function workerFile(name: string): URL {
  const here = new URL(`./${name}.js`, import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = fileURLToPath(here).replace(/([/\\])src([/\\]reader[/\\]remote[/\\])/, "$1dist$2");
  if (existsSync(built)) return pathToFileURL(built);
  throw new ReaderError("remote-error", `the I/O worker ${name}.js is not built: run npm run build`);
}

let worker: Worker | undefined;

function ioWorker(): Worker {
  if (!worker) {
    worker = new (nodeWorkerThreads().Worker)(workerFile("ioWorker"));
    worker.unref();
    // A crashed worker answers no request: the next caller starts a new one (the waits time out meanwhile).
    worker.on("error", () => {
      worker = undefined;
    });
  }
  return worker;
}

export const nodeChannel = new Channel((request) => ioWorker().postMessage(request));
