import { parentPort, workerData } from "node:worker_threads";
import { FileSource } from "./fileSource.js";
import { takeRanges, type WorkerJob, type WorkerResult } from "./rangeDigest.js";
import { sameFile } from "./source.js";

/** The second thread of `digestRanges`: opens the file, checks it is the caller's, takes ranges until none is left. */
function run(job: WorkerJob): WorkerResult {
  let source: FileSource | undefined;
  try {
    source = FileSource.open(job.identity.path);
    if (!sameFile(source.identity(), job.identity)) return { changed: true };
    takeRanges(source, job.ranges, job.work);
    return { done: true };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  } finally {
    source?.close();
  }
}

parentPort?.postMessage(run(workerData as WorkerJob));
