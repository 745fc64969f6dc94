import { parentPort, workerData } from "node:worker_threads";
import { FileSource } from "../../reader/fileSource.js";
import { type FileIdentity, sameFile } from "../../reader/source.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { fileChanged, type SharedAnswer, sharedAnswer } from "../takeShared.js";
import type { CompareJob } from "./parallel.js";
import { rangeBytes, type SideTensor } from "./side.js";
import { comparePair, type ValueOutcome } from "./values.js";

/** The second thread of `compareInParallel`: opens the files, checks they are the caller's, takes pairs. */
function run(job: CompareJob): SharedAnswer<ValueOutcome> {
  const sources = new Map<string, FileSource>();
  const open = (identity: FileIdentity): FileSource => {
    let source = sources.get(identity.path);
    if (!source) {
      source = FileSource.open(identity.path);
      sources.set(identity.path, source);
      if (!sameFile(source.identity(), identity)) throw fileChanged(identity.path);
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
  try {
    return sharedAnswer(job.control, job.pairs.length, (k) => {
      const pair = job.pairs[k] as CompareJob["pairs"][number];
      return comparePair({ a: side(pair.a), b: side(pair.b) }, job.options);
    });
  } finally {
    for (const source of sources.values()) source.close();
  }
}

parentPort?.postMessage(run(workerData as CompareJob));
