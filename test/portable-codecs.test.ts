import { createHash, randomBytes } from "node:crypto";
import { deflateRawSync, crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { codecs, InflateError, type Inflater } from "../src/reader/codecs.js";
import { isReaderError } from "../src/reader/errors.js";
import { Sha256 } from "../src/reader/sha256.js";
import { BufferSource } from "../src/reader/source.js";
import { crc32Portable } from "../src/reader/zip/crc32Portable.js";
import { fflateInflater } from "../src/reader/zip/inflateFflate.js";
import { openZip } from "../src/reader/zip.js";
import { buildZip } from "./helpers/zipBuilder.js";

/**
 * The codecs a browser gets (fflate's inflate, the table CRC-32, the TypeScript SHA-256) against Node's, which
 * `nodeCodecs.ts` installs for the CLI: the page must read exactly what the CLI reads.
 */

/** Text that compresses like source code does: repeated words, not runs of one byte. */
function prose(length: number): Uint8Array {
  const words = ["tensor", "weight", "bias", "layer", "optimizer", "state", "step", "\n", "  "];
  let text = "";
  for (let i = 0; text.length < length; i++) text += `${words[(i * 7 + (i >> 3)) % words.length]} `;
  return new TextEncoder().encode(text.slice(0, length));
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const pieces: Uint8Array[] = [];
  for await (const piece of chunks) pieces.push(piece);
  return { bytes: Buffer.concat(pieces), sizes: pieces.map((p) => p.length) };
}

/** Byte equality without the element-by-element diff `toEqual` builds for 300,000 elements. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

function pieces(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

describe("the portable inflater (fflate) inflates as zlib does", () => {
  const inflater: Inflater = fflateInflater;
  const plain = prose(300_000);
  const deflated = deflateRawSync(plain);

  it("whole streams, prefixes of streams and streams in pieces", async () => {
    expect(same(inflater.inflate(deflated, plain.length), plain)).toBe(true);
    const head = inflater.inflatePrefix(deflated.subarray(0, 2000), 1 << 20);
    expect(head.length).toBeGreaterThan(2000);
    expect(same(head, plain.subarray(0, head.length))).toBe(true);
    const streamed = await collect(inflater.stream(pieces(deflated, 777), 4096));
    expect(same(streamed.bytes, plain)).toBe(true);
    expect(Buffer.from(inflater.inflate(deflateRawSync(new Uint8Array(0)), 1))).toEqual(Buffer.alloc(0));
  });

  it("says when the output would pass the cap (a zip bomb), and when the data is corrupt", () => {
    const bomb = deflateRawSync(new Uint8Array(50_000_000));
    expect(() => inflater.inflate(bomb, 1_000_000)).toThrow(
      expect.objectContaining({ tooLarge: true }) as unknown as Error,
    );
    const corrupt = deflated.slice();
    corrupt[0] = 0xff; // block type 3: reserved
    let thrown: unknown;
    try {
      inflater.inflate(corrupt, plain.length);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InflateError);
    expect((thrown as InflateError).tooLarge).toBe(false);
    expect(() => inflater.inflate(deflated.subarray(0, 1000), plain.length)).toThrow(InflateError);
  });

  it("is what the zip reader uses when nothing installed Node's (the page's case)", async () => {
    expect(codecs().inflater).toBe(fflateInflater);
    const zip = openZip(
      new BufferSource(buildZip([{ name: "a/code.py", data: plain, deflate: true }]).bytes),
    );
    const entry = zip.entries[0];
    if (!entry) throw new Error("no entry");
    expect(entry.method).toBe(8);
    expect(same(zip.readEntry(entry), plain)).toBe(true);
    expect(same(zip.readHead(entry, 100), plain.subarray(0, 100))).toBe(true);
    const { bytes, sizes } = await collect(zip.chunks(entry, 1000));
    expect(same(bytes, plain)).toBe(true);
    expect(sizes.length).toBeGreaterThan(1);
    expect((await zip.verifyCrc(entry)).ok).toBe(true);
  });

  it("corrupt deflate data in a record is zip-malformed, as with zlib", () => {
    const built = buildZip([{ name: "a/code.py", data: plain, deflate: true }]);
    const bytes = built.bytes.slice();
    const at = built.entries[0]?.dataOffset ?? 0;
    bytes[at] = 0xff;
    const zip = openZip(new BufferSource(bytes));
    let thrown: unknown;
    try {
      zip.readEntry(zip.entries[0] as never);
    } catch (error) {
      thrown = error;
    }
    expect(isReaderError(thrown) && thrown.code).toBe("zip-malformed");
  });
});

describe("the portable digests", () => {
  it("SHA-256 matches node:crypto at every block boundary and across updates", () => {
    for (const length of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100_003]) {
      const data = randomBytes(length);
      const expected = createHash("sha256").update(data).digest("hex");
      const whole = new Sha256();
      whole.update(data);
      expect(whole.hex()).toBe(expected);
      const split = new Sha256();
      for (const piece of pieces(data, 37)) split.update(piece);
      expect(split.hex()).toBe(expected);
    }
  });

  it("the table CRC-32 matches zlib's, continued across pieces", () => {
    const data = randomBytes(10_000);
    let crc = 0;
    for (const piece of pieces(data, 333)) crc = crc32Portable(piece, crc);
    expect(crc).toBe(zlibCrc32(data));
  });
});
