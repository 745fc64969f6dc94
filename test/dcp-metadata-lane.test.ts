import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReaderError } from "../src/reader/errors.js";
import {
  type DcpMetadata,
  decodeDcpMetadata,
  decodeDcpMetadataGraph,
} from "../src/reader/sharded/dcp/metadata.js";
import { readMetadataLane } from "../src/reader/sharded/dcp/metadataLane.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * The fast lane for `.metadata` answers only where it gives the graph decoder's answer: every field, and what
 * the security scan takes from the parse (protocol, each global and its offset, the opcodes used, whether every
 * CPython reader reads the bytes alike). Anything else it declines, and the graph decides.
 */

const metadataFiles = readdirSync(SAMPLES_DIR, { recursive: true, encoding: "utf8" })
  .filter((name) => name.endsWith(".metadata"))
  .sort()
  .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(SAMPLES_DIR, name))) }));

/** Everything but the graph-on-demand function, which is compared by calling it. */
function comparable(metadata: DcpMetadata) {
  return { ...metadata, parse: { ...metadata.parse, root: undefined } };
}

/** The graph decoder's answer, or the error code it gives. */
function graphOutcome(bytes: Uint8Array) {
  try {
    return comparable(decodeDcpMetadataGraph(bytes));
  } catch (error) {
    if (error instanceof ReaderError) return { error: error.code };
    throw error;
  }
}

/** `bytes` with the first occurrence of ASCII `from` replaced by `to` (of the same length). */
function edit(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const at = Buffer.from(bytes).indexOf(from, 0, "latin1");
  if (at < 0 || from.length !== to.length) throw new Error(`no ${from} to edit`);
  const copy = Uint8Array.from(bytes);
  copy.set(Buffer.from(to, "latin1"), at);
  return copy;
}

const current = metadataFiles.find((f) => f.name.endsWith(join("fsdp2_2ranks", ".metadata")));
/** FSDP2's `.metadata` (model, optimizer and step of two ranks, torch 2.13), which the edits below start from. */
const currentBytes = current?.bytes ?? new Uint8Array();

describe("the .metadata lane", () => {
  it("finds the real .metadata files (torch 1.13 and 2.x, FSDP2, DTensor, torchtitan, accelerate, Lightning)", () => {
    expect(metadataFiles.length).toBeGreaterThanOrEqual(15);
    expect(current).toBeDefined();
  });

  it.each(metadataFiles.map((f) => [f.name, f.bytes] as const))(
    "%s: read by the lane, with the graph decoder's answer",
    (_, bytes) => {
      expect(readMetadataLane(bytes)).toBeDefined();
      const fast = decodeDcpMetadata(bytes);
      const graph = decodeDcpMetadataGraph(bytes);
      expect(comparable(fast)).toEqual(comparable(graph));
      expect(fast.parse.root()).toEqual(graph.parse.root());
      expect(fast.items.size).toBeGreaterThan(0);
    },
  );

  it("declines a class outside DCP's modules, and the graph decodes it", () => {
    const bytes = edit(
      currentBytes,
      "torch.distributed.checkpoint.metadata",
      "torch.distributed.checkpoint.metadatX",
    );
    expect(readMetadataLane(bytes)).toBeUndefined();
    const decoded = decodeDcpMetadata(bytes);
    expect(decoded.classModule).toBe("torch.distributed.checkpoint.metadatX");
    expect(comparable(decoded)).toEqual(graphOutcome(bytes));
  });

  it("declines a call it does not model (a layout from another function), and the graph decodes it", () => {
    const bytes = edit(currentBytes, "_get_layout", "_get_layouX");
    expect(readMetadataLane(bytes)).toBeUndefined();
    const decoded = decodeDcpMetadata(bytes);
    expect(decoded.parse.pickle.globals.map((g) => g.name)).toContain("_get_layouX");
    expect(comparable(decoded)).toEqual(graphOutcome(bytes));
  });

  it("declines a FRAME whose end falls inside an operand: the bytes then read differently by reader", () => {
    const original = currentBytes;
    expect(original[2]).toBe(0x95); // PROTO 4, then FRAME
    const bytes = Uint8Array.from(original);
    // The frame now ends two bytes into the first string's text (the opcode after FRAME's 8-byte length).
    new DataView(bytes.buffer).setBigUint64(3, 4n, true);
    expect(readMetadataLane(bytes)).toBeUndefined();
    expect(decodeDcpMetadata(bytes).parse.readsAlike).toBe(false);
    expect(decodeDcpMetadata(original).parse.readsAlike).toBe(true);
  });

  it("declines what is not a .metadata at all, and the graph says what is wrong", () => {
    const dict = Uint8Array.from([0x80, 0x04, 0x7d, 0x94, 0x2e]); // {}
    expect(readMetadataLane(dict)).toBeUndefined();
    expect(() => decodeDcpMetadata(dict)).toThrow(expect.objectContaining({ code: "not-a-checkpoint" }));
    expect(() => decodeDcpMetadata(currentBytes.subarray(0, 500))).toThrow(ReaderError);
  });

  const small = metadataFiles.filter((f) => f.bytes.length < 200_000).map((f) => f.bytes);

  /** The lane's answer on `bytes`, held to the graph decoder's; whether it answered. */
  function agreesOrDeclines(bytes: Uint8Array): boolean {
    if (readMetadataLane(bytes) === undefined) return false;
    expect(comparable(decodeDcpMetadata(bytes))).toEqual(graphOutcome(bytes));
    return true;
  }

  it("on bytes with a bit flipped, answers only with the graph decoder's answer", () => {
    let answered = 0;
    fc.assert(
      fc.property(fc.constantFrom(...small), fc.nat(), fc.nat(7), (bytes, at, bit) => {
        const copy = Uint8Array.from(bytes);
        copy[at % copy.length] = (copy[at % copy.length] as number) ^ (1 << bit);
        if (agreesOrDeclines(copy)) answered++;
      }),
      { numRuns: 1500 },
    );
    // A flip inside a name or a number keeps the stream readable: those are the cases that test something.
    expect(answered).toBeGreaterThan(100);
  });

  it("on arbitrary edits and truncations, answers only with the graph decoder's answer", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...small),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.option(fc.nat(), { nil: undefined }),
        (bytes, edits, cut) => {
          let copy = Uint8Array.from(bytes);
          for (const [at, value] of edits) copy[at % copy.length] = value;
          if (cut !== undefined) copy = copy.subarray(0, cut % copy.length);
          agreesOrDeclines(copy);
        },
      ),
      { numRuns: 1500 },
    );
  });
});
