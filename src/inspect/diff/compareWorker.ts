import { parentPort, workerData } from "node:worker_threads";
import { FileSource } from "../../reader/fileSource.js";
import { type FileIdentity, sameFile } from "../../reader/source.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import type { CompareJob, CompareWorkerResult } from "./parallel.js";
import { takePairs } from "./parallel.js";
import { rangeBytes, type SideTensor } from "./side.js";
import { comparePair, type ValueOutcome } from "./values.js";

/** The second thread of `compareInParallel`: opens the files, checks they are the caller's, takes pairs. */
function run(job: CompareJob): CompareWorkerResult {
  const sources = new Map<string, FileSource>();
  const open = (identity: FileIdentity): FileSource => {
    let source = sources.get(identity.path);
    if (!source) {
      source = FileSource.open(identity.path);
      sources.set(identity.path, source);
      if (!sameFile(source.identity(), identity))
        throw Object.assign(new Error(identity.path), { changed: true });
    }
    return source;
  };
  const side = (s: CompareJob["pairs"][number]["a"]): SideTensor => {
    const source = open(s.range.identity);
    return {
      name: "",
      dtype: s.dtype,
      shape: [],
      unreadable: undefined,
      range: s.range,
      bytes: () => rangeBytes(source, s.range.offset, s.range.length, elementSize(s.dtype)),
    };
  };
  const outcomes: Array<[number, ValueOutcome]> = [];
  try {
    takePairs(job.control, job.pairs.length, 2, (k) => {
      const pair = job.pairs[k] as CompareJob["pairs"][number];
      outcomes.push([k, comparePair({ a: side(pair.a), b: side(pair.b) }, job.options)]);
    });
    return { done: true, outcomes };
  } catch (error) {
    if (error instanceof Error && "changed" in error) return { changed: error.message };
    return { error: error instanceof Error ? error.message : String(error) };
  } finally {
    for (const source of sources.values()) source.close();
  }
}

parentPort?.postMessage(run(workerData as CompareJob));
