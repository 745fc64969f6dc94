import { describe, expect, it } from "vitest";
import { releaseBuffer } from "../src/reader/bytes.js";
import { hasTensors } from "../src/reader/checkpoint.js";
import { dictGet, isBoxed } from "../src/reader/pickle/value.js";
import { readCheckpoint } from "../src/reader/read.js";
import { BufferSource } from "../src/reader/source.js";
import { buildZip, torchRecords } from "./helpers/zipBuilder.js";

const MiB = 1 << 20;

/** `{"big": <value>}` pickled: a bytes payload (BINBYTES) or a str (BINUNICODE) of `length` bytes. */
function pickleOf(kind: "bytes" | "str", length: number): Uint8Array {
  const u32 = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
  const head = [0x80, 2, 0x7d, 0x58, ...u32(3), ...new TextEncoder().encode("big")];
  const value = [kind === "bytes" ? 0x42 : 0x58, ...u32(length)];
  const out = new Uint8Array(head.length + value.length + length + 2);
  out.set(head, 0);
  out.set(value, head.length);
  out.fill(0x61, head.length + value.length, out.length - 2);
  out.set([0x73, 0x2e], out.length - 2);
  return out;
}

function rootOf(pickle: Uint8Array) {
  const zip = buildZip(torchRecords("archive", { "data.pkl": pickle, version: "3\n" }));
  const checkpoint = readCheckpoint(new BufferSource(zip.bytes), "big.pt");
  if (!hasTensors(checkpoint) || !isBoxed(checkpoint.root, "dict")) throw new Error("expected a dict");
  return dictGet(checkpoint.root, "big");
}

describe("a parsed pickle's buffer given up early", () => {
  it("empties a large buffer of its own, and leaves small ones and views of others alone", () => {
    const large = new Uint8Array(2 * MiB);
    const small = new Uint8Array(1024);
    const view = new Uint8Array(new ArrayBuffer(3 * MiB), 0, 2 * MiB);
    releaseBuffer(large);
    releaseBuffer(small);
    releaseBuffer(view);
    expect([large.length, small.length, view.length]).toEqual([0, 1024, 2 * MiB]);
  });

  it("keeps the pickle when a bytes value of the graph views it, and reads a large str whole", () => {
    // Both pickles are over the size whose buffer is given up; only the one without a bytes view may be.
    const bytes = rootOf(pickleOf("bytes", 1.5 * MiB));
    if (!isBoxed(bytes, "bytes")) throw new Error("expected bytes");
    expect(bytes.value.length).toBe(1.5 * MiB);
    expect(bytes.value.every((b) => b === 0x61)).toBe(true);
    const text = rootOf(pickleOf("str", 1.5 * MiB));
    expect(typeof text === "string" && text.length === 1.5 * MiB && text.startsWith("aaa")).toBe(true);
  });
});
