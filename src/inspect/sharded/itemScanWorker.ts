import { parentPort } from "node:worker_threads";
import { FileSource } from "../../reader/fileSource.js";
import { sameFile } from "../../reader/source.js";
import { fileChanged, sharedAnswer } from "../takeShared.js";
import { FILE_REPORTS } from "./fileReports.js";
import type { ShardedFileScan } from "./fileScan.js";
import { scanDataFile } from "./itemScans.js";
import type { WorkerAnswer, WorkerJob } from "./parallelScans.js";

/**
 * The second thread of `itemScansInParallel`: waits for its one job, then takes data files, checks each is
 * the caller's, scans it and answers with its report.
 */
function run(job: WorkerJob): WorkerAnswer {
  const reportOf = FILE_REPORTS[job.report] as (s: ShardedFileScan) => unknown;
  return sharedAnswer(job.control, job.files.length, (f) => {
    const items = job.files[f] as WorkerJob["files"][number];
    const source = FileSource.open(items.identity.path);
    try {
      if (!sameFile(source.identity(), items.identity)) throw fileChanged(items.identity.path);
      return reportOf(scanDataFile(source, items, job.labels));
    } finally {
      source.close();
    }
  });
}

parentPort?.once("message", (job: WorkerJob) => parentPort?.postMessage(run(job)));
