#!/usr/bin/env node
// The benchmarks of issue 7 in one command. Generates the inputs with real torch when missing (bench/.work/,
// git-ignored; ~10 GB, free space is checked first), runs ckpt and its baselines alternately in the same run,
// prints medians, peak RSS and ratios, profiles ckpt's paths, and rewrites the generated part of
// BENCHMARKS.md. It measures only: nothing passes or fails, the exit code is 0.
//
//   npm run build && node bench/run.mjs [--keep] [--no-cold]
//
// --keep keeps the inputs for the next run (default: deleted at the end); --no-cold skips the runs after
// dropping the page cache (which need root). REPEATS (5) and SLOW_REPEATS (3, for torch.load and jszip) set
// the runs per case (a full run takes ~12 min on 2 cores). CKPT_BIN measures another build (CKPT_LABEL names
// it in BENCHMARKS.md); TORCH2_PYTHON, TORCH1_PYTHON and PYTHON (for peek.py) choose the interpreters.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, statSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { profileCkpt } from "./cpuprof.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "..");
const work = join(here, ".work");
const env = process.env;
const TORCH2 = env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const TORCH1 = env.TORCH1_PYTHON ?? "/usr/bin/python3";
const PYTHON = env.PYTHON ?? "/usr/bin/python3";
const CKPT = env.CKPT_BIN ?? join(root, "bin", "ckpt.js");
// bin/ckpt.js runs the bundle (dist/bundle/); this launcher runs the same code as tsc emitted it, one module
// per file (dist/cli/main.js), to show what bundling saves.
const UNBUNDLED = join(work, "unbundled.mjs");
const REPEATS = Number(env.REPEATS ?? 5);
const SLOW = Number(env.SLOW_REPEATS ?? 3);
const keep = process.argv.includes("--keep");
const cold = !process.argv.includes("--no-cold") && process.getuid?.() === 0;

// ---- inputs
const input = (name) => join(work, "inputs", `${name}.pt`);
const tree = join(work, "audit-tree");
const INPUTS = { "big-6g": 6.5e9, "big-1g": 1.1e9, "legacy-1g": 1.1e9, "tiny-200k": 0.1e9 };
const missing = Object.keys(INPUTS).filter((k) => !existsSync(input(k)));
const treeMissing = !existsSync(join(tree, "run_049", "last_checkpoint"));
mkdirSync(join(work, "inputs"), { recursive: true });
const need = missing.reduce((s, k) => s + INPUTS[k], treeMissing ? 1.2e9 : 0) + 1e9;
const { bavail, bsize } = statfsSync(work);
if (bavail * bsize < need) {
  console.error(`bench: needs ${(need / 1e9).toFixed(1)} GB free in ${work}, has ${(bavail * bsize) / 1e9}`);
  process.exit(2);
}
for (const kind of missing)
  execFileSync(TORCH2, [join(here, "make_inputs.py"), kind, input(kind)], { stdio: "inherit" });
if (treeMissing)
  execFileSync(TORCH2, [join(here, "make_audit_tree.py"), tree, "50", "20"], { stdio: "inherit" });
const auditFiles = execFileSync("sh", ["-c", `ls ${tree}/*/*.pth`], { encoding: "utf8" })
  .trim()
  .split("\n");
const treeBytes = auditFiles.reduce((s, f) => s + statSync(f).size, 0);
const unbundled = !env.CKPT_BIN;
writeFileSync(
  UNBUNDLED,
  `import { main } from ${JSON.stringify(join(root, "dist", "cli", "main.js"))};\nprocess.exitCode = await main(process.argv);\n`,
);

// ---- one measured process: wall time, peak RSS (/usr/bin/time -f %M), the error when it fails
const rssFile = join(work, "rss.txt");
function measure({ argv, ok = [0], dropCache = false, evict }) {
  if (dropCache) execFileSync("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
  if (evict) execFileSync("dd", [`if=${evict}`, "iflag=nocache", "count=0", "status=none"]); // only this file
  const start = process.hrtime.bigint();
  const run = spawnSync("/usr/bin/time", ["-f", "%M", "-o", rssFile, ...argv], {
    stdio: ["ignore", "ignore", "pipe"],
    maxBuffer: 1 << 28,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rssMB = (Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) * 1024) / 1e6;
  return { seconds, rssMB, error: ok.includes(run.status) ? undefined : failure(argv, run) };
}
/** The last line of stderr; if empty (ckpt --json reports errors on stdout), its "message" from a rerun. */
function failure(argv, run) {
  const text =
    run.stderr.toString().trim() ||
    spawnSync(argv[0], argv.slice(1), { maxBuffer: 1 << 30 }).stdout.toString();
  const message = text.match(/"message": "(.*)"/)?.[1] ?? text.trim().split("\n").pop();
  return `exit ${run.status}: ${message}`.slice(0, 160);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs every case `repeats` times, alternating (slow cases only in the first SLOW rounds); medians. */
function bench(cases, { repeats = REPEATS, dropCache = false, evict } = {}) {
  const runs = cases.map(() => []);
  for (let i = 0; i < repeats; i++)
    cases.forEach((c, k) => {
      if (!c.slow || i < SLOW) runs[k].push(measure({ ...c, dropCache, evict }));
    });
  return cases.map((c, k) => ({
    name: c.name,
    seconds: median(runs[k].map((r) => r.seconds)),
    rssMB: median(runs[k].map((r) => r.rssMB)),
    error: runs[k].find((r) => r.error)?.error,
    runs: runs[k].length,
  }));
}

/** Bytes and read calls that a process makes on `file` (strace: openat/read/pread64/close). */
function bytesRead(argv, file) {
  const log = join(work, "strace.txt");
  spawnSync("strace", ["-f", "-qq", "-s", "0", "-e", "trace=openat,read,pread64,close", "-o", log, ...argv]);
  const fds = new Set();
  let bytes = 0;
  let calls = 0;
  for (const line of readFileSync(log, "utf8").split("\n")) {
    const open = line.match(/openat\(\w+, "([^"]*)".* = (\d+)$/);
    const read = line.match(/(?:pread64|read)\((\d+),.* = (\d+)$/);
    const close = line.match(/close\((\d+)\)/);
    if (open && open[1] === file) fds.add(open[2]);
    else if (read && fds.has(read[1])) [bytes, calls] = [bytes + Number(read[2]), calls + 1];
    else if (close) fds.delete(close[1]);
  }
  rmSync(log);
  return { bytes, calls };
}

// ---- the cases
const ckpt = (...args) => [process.execPath, CKPT, ...args];
const nodeFloor = { name: "`node -e 0` (floor)", argv: [process.execPath, "-e", "0"] };
const torchLoad = (python, file, mmap) => [
  python,
  "-c",
  `import sys, torch; torch.load(sys.argv[1], map_location="cpu"${mmap ? ", mmap=True" : ""})`,
  file,
];
const version = (python) =>
  execFileSync(python, ["-c", "import sys, torch; print(torch.__version__, sys.version.split()[0])"], {
    encoding: "utf8",
  }).trim();
const [torch1, torch2] = [version(TORCH1), version(TORCH2)];
function inspectCases(file, { modules = false } = {}) {
  return [
    nodeFloor,
    { name: "ckpt inspect --json", argv: ckpt("inspect", file, "--json"), ok: [0, 1] },
    ...(modules && unbundled
      ? [
          {
            name: "ckpt unbundled (dist/cli, one file per module)",
            argv: [process.execPath, UNBUNDLED, "inspect", file, "--json"],
            ok: [0, 1],
          },
        ]
      : []),
    { name: "minimal Python inspector (peek.py)", argv: [PYTHON, join(here, "peek.py"), file] },
    { name: "jszip loadAsync", argv: [process.execPath, join(here, "jszip-load.mjs"), file], slow: true },
    { name: `torch.load, torch ${torch1.split(" ")[0]}`, argv: torchLoad(TORCH1, file, false), slow: true },
    { name: `torch.load, torch ${torch2.split(" ")[0]}`, argv: torchLoad(TORCH2, file, false), slow: true },
    {
      name: `torch.load mmap=True, torch ${torch2.split(" ")[0]}`,
      argv: torchLoad(TORCH2, file, true),
      slow: true,
    },
  ];
}
const cat = (file) => ["sh", "-c", 'cat "$1" > /dev/null', "sh", file];
const crcLoop =
  "const fs=require('fs'),z=require('zlib');const fd=fs.openSync(process.argv[1]);const b=Buffer.allocUnsafe(4<<20);" +
  "let c=0,p=0,n;while((n=fs.readSync(fd,b,0,b.length,p))>0){c=z.crc32(b.subarray(0,n),c);p+=n}";
function streamCases(file) {
  return [
    { name: "`cat FILE > /dev/null`", argv: cat(file) },
    {
      name: "ckpt audit FILE --verify-all --json (CRC-32)",
      argv: ckpt("audit", file, "--verify-all", "--json"),
      ok: [0, 1],
    },
    {
      name: "ckpt inspect FILE --hash --json (sha256)",
      argv: ckpt("inspect", file, "--hash", "--json"),
      ok: [0, 1],
    },
    { name: "ceiling: node readSync + zlib.crc32, 1 thread", argv: [process.execPath, "-e", crcLoop, file] },
    { name: "ceiling: `openssl dgst -sha256`", argv: ["openssl", "dgst", "-sha256", file] },
  ];
}

const sections = [];
const section = (title, rows, opts = {}) => {
  sections.push({ title, rows, ...opts });
  console.log(render(sections.at(-1)));
};
const row = (rows, prefix) => rows.find((r) => r.name.startsWith(prefix));
const mb = (bytes) => `${(bytes / 1e6).toFixed(bytes < 1e7 ? 2 : 0)} MB`;

console.error(`bench: ${REPEATS} alternating runs per case (${SLOW} for torch.load and jszip)`);
const sample = join(root, "samples", "torch2", "training_checkpoint.pth");
section(
  "Start-up: a 12 KB checkpoint",
  bench([
    nodeFloor,
    { name: "`python3 -c pass`", argv: [PYTHON, "-c", "pass"] },
    { name: "ckpt --version", argv: ckpt("--version") },
    { name: "ckpt inspect --json", argv: ckpt("inspect", sample, "--json") },
    ...(unbundled
      ? [
          {
            name: "ckpt unbundled (dist/cli) inspect --json",
            argv: [process.execPath, UNBUNDLED, "inspect", sample, "--json"],
          },
        ]
      : []),
  ]),
  { ref: "ckpt inspect" },
);
const size6 = statSync(input("big-6g")).size;
section(
  `inspect: ${mb(size6)} checkpoint (zip64, 103 records)`,
  bench(inspectCases(input("big-6g"), { modules: true })),
  { ref: "ckpt inspect" },
);
section(
  `inspect: ${mb(statSync(input("big-1g")).size)} checkpoint (64 tensors)`,
  bench(inspectCases(input("big-1g"), { modules: true })),
  { ref: "ckpt inspect" },
);
section("inspect: 200,000 small tensors", bench(inspectCases(input("tiny-200k"), { modules: true })), {
  ref: "ckpt inspect",
});
const legacySize = statSync(input("legacy-1g")).size;
section(`inspect: legacy format, ${mb(legacySize)}, 256 tensors`, bench(inspectCases(input("legacy-1g"))), {
  ref: "ckpt inspect",
});

const reads = [];
for (const [what, file] of [
  ["big-6g", input("big-6g")],
  ["legacy-1g", input("legacy-1g")],
  ["tiny-200k", input("tiny-200k")],
]) {
  const size = statSync(file).size;
  for (const [who, argv] of [
    ["ckpt inspect --json", ckpt("inspect", file, "--json")],
    ["peek.py", [PYTHON, join(here, "peek.py"), file]],
  ]) {
    const r = bytesRead(argv, file);
    reads.push({ what, who, size, ...r });
  }
}
console.log(renderReads(reads));

section(
  `audit: ${auditFiles.length} checkpoints in 50 runs, ${mb(treeBytes)}`,
  bench([
    nodeFloor,
    { name: "ckpt audit --json", argv: ckpt("audit", tree, "--json"), ok: [0, 1] },
    {
      name: "ckpt audit --verify-all --json",
      argv: ckpt("audit", tree, "--verify-all", "--json"),
      ok: [0, 1],
    },
    { name: "`cat` of every checkpoint", argv: ["sh", "-c", `cat ${tree}/*/*.pth > /dev/null`] },
  ]),
  { ref: "ckpt audit --json" },
);
execFileSync("sh", ["-c", 'cat "$1" > /dev/null', "sh", input("big-6g")]); // warm: the file fits in RAM
section(`streaming, warm page cache: ${mb(size6)}`, bench(streamCases(input("big-6g"))), {
  throughput: size6,
});
section(
  `streaming, cold: the checkpoint evicted from the page cache before each run: ${mb(size6)}`,
  bench(streamCases(input("big-6g")), { repeats: SLOW, evict: input("big-6g") }),
  { throughput: size6 },
);
if (cold) {
  const coldCases = inspectCases(input("big-6g"), { modules: true }).filter(
    (c) => !c.name.startsWith("jszip"),
  );
  coldCases.push({
    name: "ckpt inspect --json, legacy 1 GB",
    argv: ckpt("inspect", input("legacy-1g"), "--json"),
    ok: [0, 1],
  });
  coldCases.push({ name: "peek.py, legacy 1 GB", argv: [PYTHON, join(here, "peek.py"), input("legacy-1g")] });
  section(
    "inspect, cold (page cache dropped before each run): 6.4 GB zip64, legacy 1 GB",
    bench(coldCases, { repeats: SLOW, dropCache: true }),
    { ref: "ckpt inspect" },
  );
}

// ---- targets of issue 7, each against its reference in the same run
const sec = (prefix) => sections.find((s) => s.title.startsWith(prefix))?.rows ?? [];
const ms = (s) => `${(s * 1000).toFixed(0)} ms`;
const targets = [];
/** One target; `ckptRow` failing makes it missed, whatever was measured. */
function target(what, goal, measured, met, ckptRow) {
  if (ckptRow?.error) targets.push({ what, goal, measured: `ckpt fails (${ckptRow.error})`, met: false });
  else targets.push({ what, goal, measured, met });
}
for (const [label, rows] of [
  ["", sec("inspect: 6")],
  ["cold cache: ", sec("inspect, cold")],
]) {
  if (!rows.length) continue;
  const [floor, ck, mods] = [row(rows, "`node"), row(rows, "ckpt inspect"), row(rows, "ckpt unbundled")];
  const above = (r) => r.seconds - floor.seconds;
  target(
    `inspect 6.4 GB, ${label}time above \`node -e 0\``,
    "<= 50 ms",
    ms(above(ck)),
    above(ck) <= 0.05,
    ck,
  );
  if (mods)
    target(
      "... the same, unbundled (before bundling)",
      "<= 50 ms",
      ms(above(mods)),
      above(mods) <= 0.05,
      mods,
    );
  if (!label)
    target("inspect 6.4 GB: peak RSS", "<= 100 MB", `${ck.rssMB.toFixed(0)} MB`, ck.rssMB <= 100, ck);
  for (const t of rows.filter((r) => r.name.startsWith("torch.load"))) {
    const x = t.seconds / ck.seconds;
    const measured = t.error ? `torch fails: ${t.error}` : `${x.toFixed(0)}x (${t.seconds.toFixed(2)} s)`;
    target(`inspect 6.4 GB, ${label}vs ${t.name}`, "> 200x faster", measured, !t.error && x > 200, ck);
  }
}
const tiny = sec("inspect: 200,000");
const [tc, tp] = [row(tiny, "ckpt inspect"), row(tiny, "minimal Python")];
const tr = tc.seconds / tp.seconds;
const trText = `${tr.toFixed(2)} (${tc.seconds.toFixed(2)} s vs ${tp.seconds.toFixed(2)} s)`;
target("200,000 tensors: ckpt time / peek.py time", "<= 0.5", trText, tr <= 0.5, tc);
const lr = reads.find((r) => r.what === "legacy-1g" && r.who.startsWith("ckpt"));
const lrText = `${lr.bytes} B in ${lr.calls} reads`;
target(
  "legacy 1 GB: bytes read (pickles + storage headers)",
  "~ pickles + 256 x 8 B",
  lrText,
  lr.bytes < 1e6,
);
const au = row(sec("audit"), "ckpt audit --json");
target("audit of 1,000 checkpoints", "<= 2 s", `${au.seconds.toFixed(2)} s`, au.seconds <= 2, au);
for (const s of sections.filter((x) => x.throughput)) {
  const c = row(s.rows, "`cat").seconds;
  for (const [label, prefix] of [
    ["--verify", "ckpt audit"],
    ["--hash", "ckpt inspect"],
  ]) {
    const r = row(s.rows, prefix);
    const where = s.title.includes("cold") ? "checkpoint not cached" : "warm page cache";
    target(
      `${label} throughput / cat's, ${where}`,
      ">= 0.80",
      (c / r.seconds).toFixed(2),
      c / r.seconds >= 0.8,
      r,
    );
  }
}
console.log(renderTargets());

// ---- profiles: where ckpt's time goes (top functions by self time)
const profiles = [
  ["inspect 6.4 GB --json", ["inspect", input("big-6g"), "--json"]],
  ["inspect 200,000 tensors --json", ["inspect", input("tiny-200k"), "--json"]],
  ["inspect 1.07 GB --hash --json", ["inspect", input("big-1g"), "--hash", "--json"]],
  ["audit 1,000 checkpoints --json", ["audit", tree, "--json"]],
].map(([title, args]) => ({ title, top: profileCkpt(args, 10) }));
const profileText = profiles
  .map(
    (p) =>
      `#### ${p.title}\n\n| self ms | % | function | where |\n| --: | --: | --- | --- |\n` +
      p.top
        .map((f) => `| ${f.ms.toFixed(0)} | ${f.percent.toFixed(1)} | ${f.name} | ${f.where} |`)
        .join("\n"),
  )
  .join("\n\n");
console.log(profileText);

// ---- BENCHMARKS.md: the generated part between the markers; text outside them is kept
const git = (args) =>
  spawnSync("git", ["-C", dirname(dirname(CKPT)), ...args], { encoding: "utf8" }).stdout?.trim();
const label =
  env.CKPT_LABEL ??
  `${git(["rev-parse", "--short", "HEAD"]) || "?"}${git(["status", "--porcelain", "src"]) ? " + uncommitted src changes" : ""}`;
const jszip = JSON.parse(readFileSync(join(root, "node_modules", "jszip", "package.json"), "utf8")).version;
const machine = [
  `- Machine: ${cpus()[0].model}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}`,
  `- Node ${process.version}; ckpt ${label}; torch ${torch1} (Python) and ${torch2}; peek.py on ${execFileSync(PYTHON, ["--version"], { encoding: "utf8" }).trim()}; jszip ${jszip}`,
  `- ${REPEATS} alternating runs per case (${SLOW} for torch.load, jszip and cold runs); medians; peak RSS by \`/usr/bin/time -f %M\`; ${new Date().toISOString().slice(0, 10)}`,
].join("\n");
const generated = [
  "<!-- bench:begin (generated by `node bench/run.mjs`; edits here are overwritten) -->",
  "Reproduce: `npm run build && node bench/run.mjs` (as root for the cold-cache rows; `--keep` keeps the ~10 GB of inputs)\n",
  machine,
  "\n### Targets (issue 7)\n",
  renderTargets(),
  ...sections.map((s) => `\n${render(s)}`),
  `\n${renderReads(reads)}`,
  "\n### Profiles: top functions by self time (`node --cpu-prof`, 200 µs sampling; `node bench/cpuprof.mjs ARGS...`)\n",
  profileText,
  "<!-- bench:end -->",
].join("\n");
const mdPath = join(root, "BENCHMARKS.md");
const old = existsSync(mdPath)
  ? readFileSync(mdPath, "utf8")
  : "# Benchmarks\n\n<!-- bench:begin --><!-- bench:end -->\n";
const [before, rest] = old.split(/<!-- bench:begin[^>]*-->/);
writeFileSync(mdPath, `${before}${generated}${rest.split("<!-- bench:end -->")[1] ?? "\n"}`);
// Aligned as `npm run lint` (biome) wants it.
spawnSync(join(root, "node_modules", ".bin", "biome"), ["format", "--write", mdPath], { stdio: "ignore" });
console.error(`bench: wrote ${mdPath}`);

if (!keep) {
  rmSync(join(work, "inputs"), { recursive: true, force: true });
  rmSync(tree, { recursive: true, force: true });
  for (const f of [UNBUNDLED, rssFile]) rmSync(f, { recursive: true, force: true });
  console.error("bench: deleted the generated inputs (--keep keeps them)");
}

// ---- rendering
function render({ title, rows, ref, throughput }) {
  const base = ref && row(rows, ref);
  const head = throughput
    ? "| case | median | peak RSS | MB/s | vs cat |"
    : "| case | median | peak RSS | vs ckpt | note |";
  const catRow = throughput && row(rows, "`cat");
  const lines = rows.map((r) => {
    const cells = [r.name, `${r.seconds.toFixed(3)} s`, `${r.rssMB.toFixed(0)} MB`];
    if (throughput)
      cells.push((throughput / 1e6 / r.seconds).toFixed(0), (catRow.seconds / r.seconds).toFixed(2));
    else
      cells.push(
        base && !r.error
          ? `${(r.seconds / base.seconds).toFixed(r.seconds / base.seconds < 10 ? 2 : 0)}x`
          : "",
        r.error ? `fails: ${r.error.replaceAll("|", "\\|")}` : "",
      );
    return `| ${cells.join(" | ")} |`;
  });
  return [`### ${title}\n`, head, head.replace(/[^|]+/g, " --- "), ...lines].join("\n");
}
function renderReads(rows) {
  const lines = rows.map(
    (r) =>
      `| ${r.what} | ${r.who} | ${mb(r.size)} | ${r.bytes} | ${r.calls} | ${((100 * r.bytes) / r.size).toFixed(4)}% |`,
  );
  return [
    "### Bytes read from the checkpoint (strace: read/pread64 on its descriptor)\n",
    "| file | reader | file size | bytes read | read calls | of the file |",
    "| --- | --- | --: | --: | --: | --: |",
    ...lines,
  ].join("\n");
}
function renderTargets() {
  const lines = targets.map(
    (t) => `| ${t.what} | ${t.goal} | ${t.measured.replaceAll("|", "\\|")} | ${t.met ? "met" : "missed"} |`,
  );
  return ["| target | goal | measured | status |", "| --- | --- | --- | --- |", ...lines].join("\n");
}
