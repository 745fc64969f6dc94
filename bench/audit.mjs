#!/usr/bin/env node
// Benchmark: `ckpt audit` over an outputs tree of 1,000 checkpoints in 50 runs, with and without --verify,
// against `cat` of the same files in the same run. Reports medians and ratios; never pass/fail.
//
//   npm run build && node bench/audit.mjs            (needs python3 with torch to make the tree once)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");
const tree = join(here, ".work", "audit-tree");
const python =
  process.env.TORCH_PYTHON ?? ["/opt/torch2/bin/python", "/usr/bin/python3"].find((p) => existsSync(p));
const REPEATS = Number(process.env.REPEATS ?? 5);

if (!existsSync(join(tree, "run_049", "last_checkpoint"))) {
  console.error(`generating ${tree} with ${python} ...`);
  execFileSync(python, [join(here, "make_audit_tree.py"), tree, "50", "20"], { stdio: "inherit" });
}
const files = readdirSync(tree, { recursive: true })
  .map((f) => join(tree, f))
  .filter((f) => f.endsWith(".pth"));
const bytes = files.reduce((sum, f) => sum + statSync(f).size, 0);

function time(command, args) {
  const start = process.hrtime.bigint();
  const run = spawnSync(command, args, { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 << 30 });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.status !== 0 && run.status !== 1) throw new Error(`${command} exited ${run.status}`);
  return seconds;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const ckpt = [join(root, "bin", "ckpt.js")];
const cases = {
  "node -e 0": () => time(process.execPath, ["-e", "0"]),
  "cat (all files)": () => time("sh", ["-c", `cat ${tree}/*/*.pth > /dev/null`]),
  "ckpt audit": () => time(process.execPath, [...ckpt, "audit", tree, "--json"]),
  "ckpt audit --verify-all": () => time(process.execPath, [...ckpt, "audit", tree, "--json", "--verify-all"]),
};
cases["cat (all files)"](); // warm the page cache once, so every case reads from memory
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < REPEATS; i++) for (const [name, run] of Object.entries(cases)) results[name].push(run());

const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
console.log(
  `${files.length} checkpoints in 50 runs, ${(bytes / 1e6).toFixed(0)} MB, ${REPEATS} alternating runs each`,
);
for (const [name, seconds] of Object.entries(m))
  console.log(`${name.padEnd(22)} median ${seconds.toFixed(3)} s`);
const mbps = (s) => (bytes / 1e6 / s).toFixed(0);
console.log(`audit (structure):   ${m["ckpt audit"].toFixed(2)} s for 1,000 checkpoints (target <= 2 s)`);
console.log(
  `audit --verify:      ${mbps(m["ckpt audit --verify"])} MB/s vs cat ${mbps(m["cat (all files)"])} MB/s: ratio ${(m["cat (all files)"] / m["ckpt audit --verify"]).toFixed(2)}`,
);
