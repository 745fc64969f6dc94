#!/usr/bin/env node
// The convert benchmarks of issue 14: `ckpt convert` of the 6.4 GB checkpoint to safetensors against `cp` of
// the same file then `sync` of the copy (both durable: ckpt fsyncs its output before renaming it), and the
// consolidation of a 2.7 GB two-rank DCP checkpoint, with peak RSS (/usr/bin/time -f %M). Inputs are made with
// real torch when missing (bench/.work/inputs/, git-ignored: make_inputs.py big-6g and make_sharded_input.py),
// the page cache is warmed, the cases alternate in the same run, and medians are printed as a Markdown
// section, which --write puts into BENCHMARKS.md between its convert markers. It measures only.
//
//   npm run build && node bench/convert.mjs [--write] [--keep]
//
// REPEATS (3) sets the rounds; --keep keeps the ~9 GB of inputs (default: deleted at the end).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");
const work = process.env.CKPT_BENCH_WORK ?? join(here, ".work");
const TORCH2 = process.env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const CKPT = join(root, "bin", "ckpt.js");
const REPEATS = Number(process.env.REPEATS ?? 3);
const inputs = join(work, "inputs");
const big = join(inputs, "big-6g.pt");
const dcp = join(inputs, "dcp-2ranks");
const out = join(work, "convert-out");
const rssFile = join(work, "convert-rss.txt");

mkdirSync(inputs, { recursive: true });
mkdirSync(out, { recursive: true });
const need = (existsSync(big) ? 0 : 6.5e9) + (existsSync(dcp) ? 0 : 2.7e9) + 2 * 6.5e9 + 1e9;
const { bavail, bsize } = statfsSync(work);
if (bavail * bsize < need) {
  console.error(`bench: needs ${(need / 1e9).toFixed(1)} GB free in ${work}`);
  process.exit(2);
}
if (!existsSync(big))
  execFileSync(TORCH2, [join(here, "make_inputs.py"), "big-6g", big], { stdio: "inherit" });
if (!existsSync(dcp))
  execFileSync(TORCH2, [join(here, "make_sharded_input.py"), dcp, "40"], { stdio: "inherit" });

const dirBytes = (dir) =>
  execFileSync("sh", ["-c", `cat "$1"/* "$1"/.metadata | wc -c`, "sh", dir], { encoding: "utf8" }).trim();

/** One process: wall time and peak RSS; `after` cleans up (not timed). */
function measure(argv) {
  const start = process.hrtime.bigint();
  const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (run.status !== 0) throw new Error(`${argv.join(" ")}: exit ${run.status}: ${run.stderr}`);
  const rssMB = (Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) * 1024) / 1e6;
  return { seconds, rssMB };
}

const cpTarget = join(out, "copy");
const stTarget = join(out, "model.safetensors");
const cases = [
  {
    name: "`cp` 6.4 GB file, then `sync` the copy",
    group: "big",
    argv: ["sh", "-c", 'cp "$1" "$2" && sync "$2"', "sh", big, cpTarget],
    bytes: () => statSync(cpTarget).size,
    clean: () => rmSync(cpTarget, { force: true }),
  },
  {
    name: "ckpt convert 6.4 GB → model.safetensors",
    group: "big",
    ckpt: true,
    argv: [process.execPath, CKPT, "convert", big, "-o", stTarget],
    bytes: () => statSync(stTarget).size,
    clean: () => rmSync(stTarget, { force: true }),
  },
  {
    name: "`cp -r` 2.7 GB DCP directory (2 ranks), then `sync` the copies",
    group: "dcp",
    argv: ["sh", "-c", 'cp -r "$1" "$2" && sync "$2"/* "$2"/.metadata', "sh", dcp, cpTarget],
    bytes: () => Number(dirBytes(cpTarget)),
    clean: () => rmSync(cpTarget, { recursive: true, force: true }),
  },
  {
    name: "ckpt convert DCP (2 ranks) → one model.safetensors",
    group: "dcp",
    ckpt: true,
    argv: [process.execPath, CKPT, "convert", dcp, "-o", stTarget],
    bytes: () => statSync(stTarget).size,
    clean: () => rmSync(stTarget, { force: true }),
  },
];

// Warm: both inputs fit in the page cache.
execFileSync("sh", ["-c", 'cat "$1" "$2"/* > /dev/null', "sh", big, dcp]);
const runs = cases.map(() => []);
for (let i = 0; i < REPEATS; i++) {
  cases.forEach((c, k) => {
    const r = measure(c.argv);
    runs[k].push({ ...r, bytes: c.bytes() });
    c.clean();
  });
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = cases.map((c, k) => {
  const seconds = median(runs[k].map((r) => r.seconds));
  const bytes = runs[k][0].bytes;
  return {
    ...c,
    seconds,
    all: runs[k].map((r) => r.seconds.toFixed(1)).join(", "),
    rssMB: Math.max(...runs[k].map((r) => r.rssMB)),
    bytes,
    rate: bytes / seconds,
  };
});
const ratio = (group) => {
  const [base, ours] = rows.filter((r) => r.group === group);
  return ours.rate / base.rate;
};
/** The same ratio round by round (each round's ckpt run against the cp run just before it). */
const roundRatios = (group) => {
  const [b, o] = cases.flatMap((c, k) => (c.group === group ? [k] : []));
  return runs[o]
    .map((r, i) => r.bytes / r.seconds / (runs[b][i].bytes / runs[b][i].seconds))
    .map((x) => x.toFixed(2))
    .join(", ");
};

let torchRss = "";
if (process.env.TORCH_CONSOLIDATE !== "0") {
  // For scale: torch's own consolidation (dcp_to_torch_save) holds the whole state dict.
  const target = join(out, "consolidated.pt");
  const r = measure([
    TORCH2,
    "-c",
    "import sys; from torch.distributed.checkpoint.format_utils import dcp_to_torch_save as f; f(sys.argv[1], sys.argv[2])",
    dcp,
    target,
  ]);
  rmSync(target, { force: true });
  torchRss = `torch's own \`dcp_to_torch_save\` of the same directory (one run, not durable): ${r.seconds.toFixed(1)} s, peak RSS ${Math.round(r.rssMB)} MB.`;
}

const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;
const cpu = cpus()[0]?.model ?? "?";
const table = [
  "| case | bytes written | median | runs | throughput | peak RSS |",
  "| --- | --: | --: | --- | --: | --: |",
  ...rows.map(
    (r) =>
      `| ${r.name} | ${mb(r.bytes)} | ${r.seconds.toFixed(1)} s | ${r.all} | ${mb(r.rate)}/s | ${Math.round(r.rssMB)} MB |`,
  ),
].join("\n");
const ckptRss = (group) => Math.round(rows.find((r) => r.group === group && r.ckpt).rssMB);
const section = `<!-- convert:begin (generated by \`node bench/convert.mjs --write\`; edits here are overwritten) -->
## convert (issue 14)

Reproduce: \`npm run build && node bench/convert.mjs --write\` (inputs made with torch when missing; \`--keep\` keeps them)

- Machine: ${cpu}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, shared with other jobs while it ran; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}
- Warm page cache (inputs read once before), ${REPEATS} alternating rounds, medians; peak RSS is the largest of the runs (\`/usr/bin/time -f %M\`).
  Both sides are durable: ckpt writes a temp file, fsyncs it, renames it and fsyncs the directory; \`cp\` is followed by \`sync\` of the copy.
- Throughput is bytes written over wall time (ckpt's output is the input's tensor data plus an 8-byte-padded header).

${table}

| target | goal | measured | status |
| --- | --- | --- | --- |
| convert 6.4 GB: throughput / \`cp\`+\`sync\`'s | ≥ 0.70 | ${ratio("big").toFixed(2)} (medians; by round: ${roundRatios("big")}) | ${ratio("big") >= 0.7 ? "met" : "missed"} |
| convert 6.4 GB: peak RSS | < 200 MB | ${ckptRss("big")} MB | ${ckptRss("big") < 200 ? "met" : "missed"} |
| consolidate 2.7 GB DCP (2 ranks): peak RSS | < 200 MB | ${ckptRss("dcp")} MB | ${ckptRss("dcp") < 200 ? "met" : "missed"} |
| consolidate 2.7 GB DCP: throughput / \`cp -r\`+\`sync\`'s | (for scale) | ${ratio("dcp").toFixed(2)} (by round: ${roundRatios("dcp")}) | — |

${torchRss}
<!-- convert:end -->`;

console.log(section);
if (process.argv.includes("--write")) {
  const path = join(root, "BENCHMARKS.md");
  const text = readFileSync(path, "utf8");
  const pattern = /<!-- convert:begin[\s\S]*?<!-- convert:end -->/;
  writeFileSync(
    path,
    pattern.test(text) ? text.replace(pattern, section) : `${text.trimEnd()}\n\n${section}\n`,
  );
}
rmSync(out, { recursive: true, force: true });
if (!process.argv.includes("--keep")) rmSync(inputs, { recursive: true, force: true });
