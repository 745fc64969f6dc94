import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parsePickle } from "../src/reader/pickle/machine.js";
import { findMemoReads } from "../src/reader/pickle/memoReads.js";
import { BufferSource } from "../src/reader/source.js";
import { openZip } from "../src/reader/zip.js";
import { findTruths } from "./helpers/samples.js";

/**
 * The machine keeps only the memo entries some GET reads (`findMemoReads`). Its answer is checked against the
 * GETs the machine actually executes (its `onMemo` trace) on CPython's corpus and on real torch pickles.
 */
function executedGets(bytes: Uint8Array): Set<number> | undefined {
  const gets = new Set<number>();
  try {
    parsePickle(bytes, { trace: { onMemo: (kind, index) => kind === "get" && gets.add(index) } });
  } catch {
    return undefined; // malformed streams are the robustness suite's business
  }
  return gets;
}

const corpusDir = join(import.meta.dirname, "fixtures", "pickle-corpus");
const corpus = readdirSync(corpusDir)
  .filter((name) => name.endsWith(".pkl"))
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(corpusDir, name))) }));

function torchPickles(): Array<{ name: string; bytes: Uint8Array }> {
  return findTruths<unknown>()
    .filter(({ path }) => /\.(pt|pth|ckpt|bin)$/.test(path))
    .flatMap(({ path }) => {
      const bytes = readFileSync(path);
      if (bytes[0] !== 0x50) return [];
      const archive = openZip(new BufferSource(bytes, path));
      const entry = archive.get("data.pkl");
      return entry ? [{ name: path, bytes: archive.readEntry(entry) }] : [];
    });
}

describe("findMemoReads", () => {
  it("finds every memo entry the machine reads, in CPython's corpus and in real torch pickles", () => {
    const cases = [...corpus, ...torchPickles()];
    expect(cases.length).toBeGreaterThan(300);
    let checked = 0;
    for (const { name, bytes } of cases) {
      const gets = executedGets(bytes);
      if (gets === undefined) continue;
      const reads = findMemoReads(bytes);
      if (reads === undefined) continue; // keeps everything: nothing to miss
      checked++;
      for (const index of gets) expect(reads(index), `${name}: memo ${index}`).toBe(true);
    }
    expect(checked).toBeGreaterThan(200);
  });

  it("names far fewer entries than torch's pickler stores", () => {
    const pickles = torchPickles();
    expect(pickles.length).toBeGreaterThan(10);
    for (const { name, bytes } of pickles) {
      const reads = findMemoReads(bytes);
      expect(reads, name).toBeDefined();
      const puts: number[] = [];
      parsePickle(bytes, { trace: { onMemo: (kind, index) => kind === "put" && puts.push(index) } });
      const kept = puts.filter((index) => reads?.(index)).length;
      expect(kept, name).toBeLessThan(Math.max(8, puts.length / 2));
    }
  });

  // PROTO 4, then: EMPTY_LIST MEMOIZE (memo 0), BINPUT 5, MARK, BINGET 0, BINGET 5, LIST, STOP
  const mixed = Uint8Array.from([0x80, 4, 0x5d, 0x94, 0x71, 5, 0x28, 0x68, 0, 0x68, 5, 0x6c, 0x2e]);
  it("keeps everything when MEMOIZE and PUT mix, or a text GET or an unknown opcode appears", () => {
    expect(findMemoReads(mixed)).toBeUndefined();
    expect(parsePickle(mixed).value).toMatchObject({
      kind: "list",
      items: [{ kind: "list" }, { kind: "list" }],
    });
    // protocol 0: (lp0\ng0\na.
    const text = new TextEncoder().encode("(lp0\ng0\na.");
    expect(findMemoReads(text)).toBeUndefined();
    expect(findMemoReads(Uint8Array.from([0x80, 2, 0xff, 0x2e]))).toBeUndefined();
    expect(findMemoReads(Uint8Array.from([0x80, 2, 0x58, 9, 0, 0, 0, 0x61]))).toBeUndefined(); // truncated
  });

  it("handles sparse memo indices and reads through to the first STOP only", () => {
    // EMPTY_DICT LONG_BINPUT 4000000000, POP, LONG_BINGET 4000000000, STOP, then a second pickle reading 7
    const index = [0x00, 0x28, 0x6b, 0xee]; // 4_000_000_000 little-endian
    const bytes = Uint8Array.from([0x7d, 0x72, ...index, 0x30, 0x6a, ...index, 0x2e, 0x68, 7, 0x2e]);
    const reads = findMemoReads(bytes);
    expect(reads?.(4_000_000_000)).toBe(true);
    expect(reads?.(7)).toBe(false);
    expect(parsePickle(bytes).value).toMatchObject({ kind: "dict" });
  });
});
