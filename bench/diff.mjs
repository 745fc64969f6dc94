#!/usr/bin/env node
// Issue 15's benchmark: `ckpt diff --values` of two ~1.1 GB checkpoints (a fine-tune: half the matrices
// frozen, half moved) against reading both with `cat`, warm page cache, alternating runs. Prints the median
// wall time and CPU time (user + sys) of each and their ratio. Inputs are made with real torch in
// bench/.work/diff/ (git-ignored) and kept.
//
//   npm run build && node bench/diff.mjs [runs]
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const work = join(here, ".work", "diff");
const a = join(work, "a.pt");
const b = join(work, "b.pt");
const TORCH2 = process.env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const runs = Number(process.argv[2] ?? 5);
mkdirSync(work, { recursive: true });
if (!existsSync(a) || !existsSync(b))
  execFileSync(TORCH2, [join(here, "make_diff_pair.py"), a, b], { stdio: "inherit" });

/** Wall seconds and CPU seconds (user + sys of the command and its threads), from /usr/bin/time. */
function timed(command, args, env = process.env) {
  const run = spawnSync("/usr/bin/time", ["-f", "%e %U %S", command, ...args], {
    encoding: "utf8",
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const [wall, user, sys] = run.stderr.trim().split("\n").pop().split(" ").map(Number);
  return { wall, cpu: user + sys };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const ckpt = join(here, "..", "bin", "ckpt.js");
const cases = {
  cat: () => timed("cat", [a, b]),
  "ckpt diff --values": () => timed(process.execPath, [ckpt, "diff", a, b, "--values"]),
  "ckpt diff --values (one thread)": () =>
    timed(process.execPath, [ckpt, "diff", a, b, "--values"], {
      ...process.env,
      CKPT_PARALLEL_MIN_BYTES: "1e15",
    }),
};
timed("cat", [a, b]); // warm the page cache
const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < runs; i++) for (const [name, run] of Object.entries(cases)) results[name].push(run());
const gb = (statSync(a).size + statSync(b).size) / 1e9;
const cat = results.cat;
console.log(
  `inputs: ${gb.toFixed(2)} GB; load average ${execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).trim()}`,
);
for (const [name, rs] of Object.entries(results)) {
  const wall = median(rs.map((r) => r.wall));
  const cpu = median(rs.map((r) => r.cpu));
  console.log(
    `${name.padEnd(32)} wall ${wall.toFixed(2)} s (${(gb / wall).toFixed(2)} GB/s, ${(wall / median(cat.map((r) => r.wall))).toFixed(2)}x cat)  cpu ${cpu.toFixed(2)} s`,
  );
}
