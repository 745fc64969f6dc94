#!/usr/bin/env node
// Fuzz campaign for DCP's `.metadata` lane: every real `.metadata` under samples/, mutated (bits flipped,
// bytes replaced, stretches of the stream copied elsewhere), read by the lane and by the pickle machine's
// graph decoder. Wherever the lane answers, its answer must equal the graph decoder's (or the lane must have
// declined what the graph decoder refuses). Reports each difference and saves its bytes; never part of
// npm test (test/dcp-metadata-lane.test.ts runs a few thousand of these on every run).
//
//   npm run build && SEED=7 node bench/fuzz-lane.mjs [inputs=60000]
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

const root = join(fileURLToPath(new URL(".", import.meta.url)), "..");
const { decodeDcpMetadata, decodeDcpMetadataGraph } = await import(
  join(root, "dist/reader/sharded/dcp/metadata.js")
);
const { readMetadataLane } = await import(join(root, "dist/reader/sharded/dcp/metadataLane.js"));

const samples = join(root, "samples");
const files = readdirSync(samples, { recursive: true, encoding: "utf8" })
  .filter((name) => name.endsWith(".metadata"))
  .map((name) => new Uint8Array(readFileSync(join(samples, name))));
const total = Number(process.argv[2] ?? 60_000);

// A small deterministic PRNG (mulberry32), so a campaign can be replayed by its seed.
let seed = Number(process.env.SEED ?? 20261202);
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const below = (n) => Math.floor(random() * n);

function mutate(source) {
  let bytes = Uint8Array.from(source);
  const kind = random();
  for (let k = 1 + below(3); k > 0; k--) {
    const at = below(bytes.length);
    if (kind < 0.5) bytes[at] ^= 1 << below(8);
    else if (kind < 0.8) bytes[at] = below(256);
    else {
      // A stretch of the stream copied in at `at`: whole opcodes land in unexpected places.
      const from = below(bytes.length);
      const piece = bytes.slice(from, from + below(16));
      const out = new Uint8Array(bytes.length + piece.length);
      out.set(bytes.subarray(0, at));
      out.set(piece, at);
      out.set(bytes.subarray(at), at + piece.length);
      bytes = out;
    }
  }
  return bytes;
}

/** Everything but the graph-on-demand function; the graph decoder's error code when it refuses. */
function outcome(decode, bytes) {
  try {
    const metadata = decode(bytes);
    return { ...metadata, parse: { ...metadata.parse, root: undefined } };
  } catch (error) {
    return { error: error.code ?? String(error) };
  }
}

let answered = 0;
let different = 0;
for (let i = 0; i < total; i++) {
  const bytes = mutate(files[below(files.length)]);
  if (readMetadataLane(bytes) === undefined) continue;
  answered++;
  if (isDeepStrictEqual(outcome(decodeDcpMetadata, bytes), outcome(decodeDcpMetadataGraph, bytes))) continue;
  different++;
  const saved = `/tmp/fuzz-lane-${process.pid}-${different}.metadata`;
  writeFileSync(saved, bytes);
  console.log(`different: ${saved}`);
}
console.log(`${total} mutated .metadata files, ${answered} read by the lane, ${different} different`);
process.exitCode = different > 0 ? 1 : 0;
