#!/usr/bin/env node
// The benchmarks of issue 18 (performance at scale), each case against its baseline in the same run:
// alternating runs, medians of wall time and of CPU time (user + sys, less sensitive to other load on a
// shared machine), peak RSS by `/usr/bin/time`. Measures only; nothing passes or fails.
//
//   npm run build && node bench/scale.mjs [startup] [tiny] [audit] [audit10k]
//
// Inputs (bench/.work/, git-ignored) are made with real torch when missing: tiny-200k by make_inputs.py,
// audit-1k (50 runs of 20 ~100 KB fvcore checkpoints) and audit-10k (500 runs) by make_audit_tree.py.
// REPEATS (7) sets the runs per case; CKPT_BIN measures another build.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");
const work = join(here, ".work");
const env = process.env;
const TORCH = env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const PYTHON = env.PYTHON ?? "/usr/bin/python3";
const CKPT = env.CKPT_BIN ?? join(root, "bin", "ckpt.js");
const REPEATS = Number(env.REPEATS ?? 7);
const which = process.argv.slice(2);
const wanted = (name) => which.length === 0 || which.includes(name);
mkdirSync(join(work, "inputs"), { recursive: true });

function tiny() {
  const file = join(work, "inputs", "tiny-200k.pt");
  if (!existsSync(file))
    execFileSync(TORCH, [join(here, "make_inputs.py"), "tiny-200k", file], { stdio: "inherit" });
  return file;
}
function tree(name, runs) {
  const dir = join(work, name);
  if (!existsSync(join(dir, `run_${String(runs - 1).padStart(3, "0")}`, "last_checkpoint")))
    execFileSync(TORCH, [join(here, "make_audit_tree.py"), dir, String(runs), "20", "12288"], {
      stdio: "inherit",
    });
  return dir;
}

const timeFile = join(work, "time.txt");
function measure(argv) {
  const start = process.hrtime.bigint();
  const run = spawnSync("/usr/bin/time", ["-f", "%M %U %S", "-o", timeFile, ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const [rss, user, sys] = readFileSync(timeFile, "utf8").trim().split("\n").pop().split(" ").map(Number);
  if (run.status !== 0 && !(run.status === 1 && argv.includes(CKPT)))
    throw new Error(`${argv.join(" ")}: exit ${run.status}: ${run.stderr.toString().slice(-400)}`);
  return { seconds, cpu: user + sys, rssMB: (rss * 1024) / 1e6 };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
function bench(title, cases, ref, repeats = REPEATS) {
  const runs = cases.map(() => []);
  const load = [loadavg()[0]];
  for (let i = 0; i < repeats; i++)
    cases.forEach((c, k) => {
      runs[k].push(measure(c.argv));
    });
  load.push(loadavg()[0]);
  const rows = cases.map((c, k) => ({
    name: c.name,
    seconds: median(runs[k].map((r) => r.seconds)),
    cpu: median(runs[k].map((r) => r.cpu)),
    rssMB: Math.max(...runs[k].map((r) => r.rssMB)),
  }));
  const base = rows.find((r) => r.name === ref);
  const lines = [
    `### ${title}`,
    "",
    `${repeats} alternating runs; load average ${load.map((l) => l.toFixed(1)).join(" -> ")}`,
    "",
    `| case | wall (median) | CPU (median) | peak RSS | wall / ${ref} | CPU / ${ref} |`,
    "| --- | --: | --: | --: | --: | --: |",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.seconds.toFixed(3)} s | ${r.cpu.toFixed(2)} s | ${r.rssMB.toFixed(0)} MB | ${(r.seconds / base.seconds).toFixed(2)} | ${(r.cpu / base.cpu).toFixed(2)} |`,
    ),
  ];
  console.log(`${lines.join("\n")}\n`);
  return rows;
}

const node = process.execPath;
const ckpt = (...args) => [node, CKPT, ...args];
const floor = { name: "`node -e 0`", argv: [node, "-e", "0"] };
if (wanted("startup")) {
  const sample = join(root, "samples", "torch2", "training_checkpoint.pth");
  const rows = bench(
    "Start-up: inspect --json of a 12 KB checkpoint",
    [
      floor,
      { name: "ckpt --version", argv: ckpt("--version") },
      { name: "ckpt inspect --json", argv: ckpt("inspect", sample, "--json") },
      { name: "ckpt inspect (text)", argv: ckpt("inspect", sample) },
      // What bin/ckpt.js's code cache is worth: the same command compiled from source at every start.
      {
        name: "ckpt inspect --json, no code cache",
        argv: ["/usr/bin/env", "CKPT_COMPILE_CACHE=off", ...ckpt("inspect", sample, "--json")],
      },
    ],
    "`node -e 0`",
    Number(env.STARTUP_REPEATS ?? 21),
  );
  const [f, , j, , cold] = rows;
  const above = (r) => `${((r.seconds - f.seconds) * 1000).toFixed(0)} ms`;
  console.log(`inspect --json above node -e 0: ${above(j)} wall (${above(cold)} without the code cache)\n`);
}
if (wanted("tiny")) {
  const file = tiny();
  bench(
    "inspect --json: 200,000 small tensors",
    [
      { name: "ckpt inspect --json", argv: ckpt("inspect", file, "--json") },
      { name: "peek.py", argv: [PYTHON, join(here, "peek.py"), file] },
    ],
    "peek.py",
  );
}
for (const [name, runs, title, repeats] of [
  ["audit", 50, "audit: 1,000 checkpoints (~100 KB) in 50 runs", REPEATS],
  ["audit10k", 500, "audit: 10,000 checkpoints (~100 KB) in 500 runs", Number(env.SLOW_REPEATS ?? 3)],
]) {
  if (!wanted(name)) continue;
  const dir = tree(name === "audit" ? "audit-1k" : "audit-10k", runs);
  bench(
    title,
    [
      { name: "ckpt audit --json", argv: ckpt("audit", dir, "--json") },
      { name: "peek_tree.py", argv: [PYTHON, join(here, "peek_tree.py"), dir] },
    ],
    "peek_tree.py",
    repeats,
  );
}
