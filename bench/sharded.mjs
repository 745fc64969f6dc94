#!/usr/bin/env node
// Issue 13's benchmark: `ckpt inspect --json` of a DCP checkpoint of WORLD ranks and N tensors (every tensor
// row-sharded over all ranks, so .metadata lists N * WORLD chunks) against the same N tensors in one torch
// zip, alternating runs in the same process tree, medians; target ratio <= 2. Also `inspect --json --hash`
// of both (every logical tensor assembled from its chunks), and the bytes each structure read touches.
// Measures only: the exit code is 0.
//
//   npm run build && node bench/sharded.mjs [N=50000] [WORLD=4]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");
const N = Number(process.argv[2] ?? 50000);
const WORLD = Number(process.argv[3] ?? 4);
const REPEATS = Number(process.env.REPEATS ?? 5);
const work = join(here, ".work", `sharded-${N}-${WORLD}`);
const TORCH2 = process.env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const CKPT = join(root, "bin", "ckpt.js");
if (!existsSync(join(work, "single.pt")))
  execFileSync(TORCH2, [join(here, "make_dcp.py"), work, String(N), String(WORLD)], { stdio: "inherit" });

const rssFile = join(work, "rss.txt");
function measure(argv) {
  const start = process.hrtime.bigint();
  const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.status !== 0 && run.status !== 1)
    throw new Error(`${argv.join(" ")}: exit ${run.status} ${run.stderr}`);
  return { seconds, rssMB: (Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) * 1024) / 1e6 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dcp = join(work, "dcp");
const single = join(work, "single.pt");
const cases = [
  { name: `inspect --json, DCP (${WORLD} ranks)`, argv: ["node", CKPT, "inspect", "--json", dcp] },
  { name: "inspect --json, one torch zip", argv: ["node", CKPT, "inspect", "--json", single] },
  {
    name: `inspect --json --hash, DCP (${WORLD} ranks)`,
    argv: ["node", CKPT, "inspect", "--json", "--hash", dcp],
  },
  {
    name: "inspect --json --hash, one torch zip",
    argv: ["node", CKPT, "inspect", "--json", "--hash", single],
  },
];
const runs = cases.map(() => []);
for (let i = 0; i < REPEATS; i++) for (const [k, c] of cases.entries()) runs[k].push(measure(c.argv));
const results = cases.map((c, k) => ({
  name: c.name,
  seconds: median(runs[k].map((r) => r.seconds)),
  rssMB: median(runs[k].map((r) => r.rssMB)),
}));

const size = (p) =>
  statSync(p).isDirectory()
    ? readdirSync(p).reduce((s, n) => s + statSync(join(p, n)).size, 0)
    : statSync(p).size;
const metadata = statSync(join(dcp, ".metadata")).size;
console.log(
  `N=${N} tensors, ${WORLD} ranks; DCP ${(size(dcp) / 1e6).toFixed(1)} MB (.metadata ${(metadata / 1e6).toFixed(1)} MB), zip ${(size(single) / 1e6).toFixed(1)} MB; ${REPEATS} alternating runs, medians`,
);
console.log("| case | median s | peak RSS MB |\n| --- | ---: | ---: |");
for (const r of results) console.log(`| ${r.name} | ${r.seconds.toFixed(2)} | ${r.rssMB.toFixed(0)} |`);
console.log(
  `ratio DCP / zip, inspect --json: ${(results[0].seconds / results[1].seconds).toFixed(2)} (target <= 2)`,
);
console.log(
  `ratio DCP / zip, inspect --json --hash: ${(results[2].seconds / results[3].seconds).toFixed(2)}`,
);
