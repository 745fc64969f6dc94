#!/usr/bin/env node
// Fuzz campaign: mutated real checkpoints, mutated corpus pickles (protocol 0/1 without PROTO, FRAME
// boundary cases) and random pickle opcode streams through everything a user's command does (read, inspect
// with --hash --stats, scan), and through the pickle machine in both framings. Reports crashes (any exception
// that is not a ReaderError) and slow inputs; never part of npm test.
//
//   npm run build && node bench/fuzz.mjs [inputs=100000] [seconds=300]
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const { readCheckpoint } = await import(join(root, "dist/reader/open.js"));
const { inspectCheckpoint } = await import(join(root, "dist/inspect/report.js"));
const { scanSource } = await import(join(root, "dist/inspect/security/scan.js"));
const { BufferSource } = await import(join(root, "dist/reader/source.js"));
const { ReaderError } = await import(join(root, "dist/reader/errors.js"));
const { parsePickle } = await import(join(root, "dist/reader/pickle/machine.js"));

const total = Number(process.argv[2] ?? 100_000);
const deadline = Date.now() + 1000 * Number(process.argv[3] ?? 300);
const SLOW_MS = 1000;

// A small deterministic PRNG (mulberry32), so a campaign can be replayed by its seed.
let seed = Number(process.env.SEED ?? 20261124);
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n) => Math.floor(random() * n);

const checkpoints = [
  "torch2/training_checkpoint.pth",
  "torch1/training_checkpoint.pth",
  "torch1/legacy.pt",
  "torch2/legacy_protocol4.pt",
  "torch2/protocol5.pt",
  "torch2/torchscript.pt",
  "torch2/model.safetensors",
  "torch2/sparse.pt",
  "torch2/quantized.pt",
  "torch2/views.pt",
  "torch2/python_values.pt",
  "torch2/whole_module.pt",
  "torch2/dtypes.pt",
].map((name) => new Uint8Array(readFileSync(join(root, "samples", name))));
// The differential corpus's hand-written streams (those CPython's readers disagree on among them) are half
// of the bases: a checkpoint is mostly tensor bytes, where a mutation seldom reaches the pickle.
const corpusDir = join(root, "test", "fixtures", "pickle-corpus");
const pickles = readdirSync(corpusDir)
  .filter((file) => /^(noproto_|frame_|dumps_|op_)/.test(file))
  .sort()
  .map((file) => new Uint8Array(readFileSync(join(corpusDir, file))));
const pick = () => {
  const list = random() < 0.5 ? checkpoints : pickles;
  return list[int(list.length)];
};

const OPS = [
  0x28, 0x2e, 0x30, 0x31, 0x32, 0x29, 0x5d, 0x7d, 0x4e, 0x88, 0x89, 0x4b, 0x4a, 0x85, 0x86, 0x87, 0x74, 0x6c,
  0x64, 0x61, 0x65, 0x73, 0x75, 0x62, 0x52, 0x81, 0x94, 0x68, 0x71, 0x93, 0x8c, 0x63, 0x8f, 0x90, 0x91, 0x51,
  0x95, 0x8a, 0x58, 0x43, 0x92, 0x8b,
];

function mutate() {
  const kind = int(6);
  if (kind === 5)
    return Uint8Array.from([
      0x80,
      2 + int(4),
      ...Array.from({ length: int(300) }, () => (random() < 0.8 ? OPS[int(OPS.length)] : int(256))),
    ]);
  const base = pick();
  const bytes = Uint8Array.from(base);
  switch (kind) {
    case 0: // bit flips
      for (let i = 0, n = 1 + int(8); i < n; i++) bytes[int(bytes.length)] ^= 1 << int(8);
      return bytes;
    case 1: // truncation
      return bytes.subarray(0, int(bytes.length));
    case 2: // random bytes over a region
      for (let i = int(bytes.length), n = i + int(64); i < n && i < bytes.length; i++) bytes[i] = int(256);
      return bytes;
    case 3: {
      // insertion or deletion (shifts every offset after it)
      const at = int(bytes.length);
      return random() < 0.5
        ? Uint8Array.from([
            ...bytes.subarray(0, at),
            ...Array.from({ length: 1 + int(16) }, () => int(256)),
            ...bytes.subarray(at),
          ])
        : Uint8Array.from([
            ...bytes.subarray(0, at),
            ...bytes.subarray(Math.min(bytes.length, at + 1 + int(16))),
          ]);
    }
    default: {
      // splice two samples
      const other = pick();
      const at = int(bytes.length);
      return Uint8Array.from([...bytes.subarray(0, at), ...other.subarray(int(other.length))]);
    }
  }
}

const codes = new Map();
const crashes = [];
const slow = [];
let done = 0;
const started = Date.now();
for (; done < total && Date.now() < deadline; done++) {
  const input = mutate();
  const t0 = performance.now();
  let outcome = "ok";
  try {
    for (const frames of ["contiguous", "file"]) {
      for (const scan of [false, true]) {
        try {
          parsePickle(input, { frames, scan });
        } catch (error) {
          if (!(error instanceof ReaderError)) throw error;
        }
      }
    }
    const source = new BufferSource(input, "fuzz.pt");
    inspectCheckpoint(readCheckpoint(source), "fuzz.pt", { hash: true, stats: true });
    scanSource(source, { deep: true });
  } catch (error) {
    if (error instanceof ReaderError) outcome = error.code;
    else {
      outcome = "CRASH";
      if (crashes.length < 20) {
        const file = join(root, "bench", ".work", `crash-${crashes.length}.bin`);
        try {
          writeFileSync(file, input);
        } catch {}
        crashes.push({
          file,
          error: String(error?.stack ?? error)
            .split("\n")
            .slice(0, 3)
            .join(" | "),
        });
      }
    }
  }
  const ms = performance.now() - t0;
  if (ms > SLOW_MS) slow.push({ ms: Math.round(ms), outcome });
  codes.set(outcome, (codes.get(outcome) ?? 0) + 1);
}
const seconds = (Date.now() - started) / 1000;
console.log(
  `${done} inputs in ${seconds.toFixed(1)} s (${Math.round(done / seconds)}/s), seed ${process.env.SEED ?? 20261124}, ${checkpoints.length + pickles.length} seeds`,
);
console.log(
  `crashes: ${crashes.length}${crashes.length ? "" : " (target: 0)"}; inputs slower than ${SLOW_MS} ms: ${slow.length}`,
);
console.log("outcomes:", Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])));
for (const c of crashes) console.log("CRASH", c.file, c.error);
process.exitCode = crashes.length > 0 ? 1 : 0;
