#!/usr/bin/env node
// Where `ckpt inspect` of a sharded checkpoint spends its time, phase by phase, in one process:
// open (metadata decode), the security scans, the resume judgement, and the report as a whole.
//
//   npm run build && node bench/phases-sharded.mjs DIR
import { performance } from "node:perf_hooks";

const dir = (await import("node:path")).resolve(process.argv[2]);
const { localFiles } = await import("../dist/inspect/runs/localFiles.js");
const { openSharded, closeSharded } = await import("../dist/reader/sharded/index.js");
const { scanSharded } = await import("../dist/inspect/sharded/scan.js");
const { inspectSharded } = await import("../dist/inspect/sharded/report.js");
const { dcpJudgedState } = await import("../dist/inspect/sharded/state.js");

const time = (label, run) => {
  const start = performance.now();
  const value = run();
  console.log(`${label.padEnd(28)} ${(performance.now() - start).toFixed(0).padStart(7)} ms`);
  return value;
};
const fs = localFiles();
const checkpoint = time("open (metadata decode)", () => openSharded(fs.tree, dir));
time("security scans", () => scanSharded(checkpoint));
if (checkpoint.kind === "dcp") time("judged state", () => dcpJudgedState(checkpoint));
const start = performance.now();
await inspectSharded(checkpoint, dir, { fs, path: dir });
console.log(`${"inspectSharded (all)".padEnd(28)} ${(performance.now() - start).toFixed(0).padStart(7)} ms`);
closeSharded(checkpoint);
