import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decimalId } from "../src/reader/decimalId.js";
import { isReaderError, type ReaderError } from "../src/reader/errors.js";
import { FileSource } from "../src/reader/fileSource.js";
import { readCheckpoint } from "../src/reader/read.js";
import { BufferSource, CountingSource } from "../src/reader/source.js";
import { parseCentralDirectory } from "../src/reader/zip/centralDirectory.js";
import { crc32Portable } from "../src/reader/zip/crc32.js";
import { decodeCp437 } from "../src/reader/zip/text.js";
import { looksLikeZip, openZip, type ZipArchive, type ZipEntry } from "../src/reader/zip.js";
import {
  type BuiltZip,
  ByteWriter,
  buildZip,
  bytesOf,
  patchU16,
  patchU32,
  patchU64,
  torchRecords,
  writeCentralRecord,
  type ZipOptions,
  type ZipSpec,
  zip64Extra,
} from "./helpers/zipBuilder.js";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Deterministic bytes (xorshift), so failures reproduce. */
function pseudoRandom(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Compressible text, for deflated records. */
function prose(length: number): string {
  const words = ["weight", "bias", "running_mean", "layer", "conv", "def", "forward", "self", "return"];
  let s = "";
  for (let i = 0; s.length < length; i++) s += `${words[(i * 7) % words.length]}_${i % 13} `;
  return s.slice(0, length);
}

/** What `torch.save` writes for a small state dict (2.1-2.6 record order). */
function torchSpecs(prefix = "archive"): ZipSpec[] {
  return torchRecords(prefix, {
    "data.pkl": Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]), // PROTO 2, EMPTY_DICT, STOP
    byteorder: "little",
    "data/0": pseudoRandom(100, 2),
    "data/1": pseudoRandom(1000, 3),
    "data/10": new Uint8Array(0),
    version: "3\n",
    ".data/serialization_id": "0123456789".repeat(4),
  });
}

function open(built: BuiltZip | Uint8Array): ZipArchive {
  return openZip(new BufferSource(built instanceof Uint8Array ? built : built.bytes, "test.pt"));
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("expected a value");
  return value;
}

/** The ReaderError `fn` throws; fails the test if it throws anything else or nothing. */
function readerErrorOf(fn: () => unknown): ReaderError {
  try {
    fn();
  } catch (error) {
    if (isReaderError(error)) return error;
    throw error;
  }
  throw new Error("expected a ReaderError, nothing was thrown");
}

async function asyncReaderErrorOf(fn: () => Promise<unknown>): Promise<ReaderError> {
  try {
    await fn();
  } catch (error) {
    if (isReaderError(error)) return error;
    throw error;
  }
  throw new Error("expected a ReaderError, nothing was thrown");
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(Uint8Array.from(chunk));
  const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return { bytes, sizes: parts.map((p) => p.length) };
}

describe("openZip on torch-style archives", () => {
  it("round-trips names, sizes, CRCs, offsets and data; data offsets are 64-aligned", () => {
    const specs = torchSpecs();
    const built = buildZip(specs);
    const zip = open(built);
    expect(zip.entries.map((e) => e.name)).toEqual(built.entries.map((e) => e.name));
    expect(zip.zip64).toBe(true);
    expect(zip.junkBefore).toBe(0);
    expect(zip.junkAfter).toBe(0);
    expect(zip.centralDirectoryOffset).toBe(built.centralDirectoryOffset);
    expect(zip.centralDirectorySize).toBe(built.centralDirectorySize);
    for (const [i, entry] of zip.entries.entries()) {
      const expected = must(built.entries[i]);
      expect(entry.index).toBe(i);
      expect(entry.flags).toBe(expected.uncompressedSize > 0 ? 0x0808 : 0x0800);
      expect(entry.method).toBe(0);
      expect(entry.encrypted).toBe(false);
      expect(entry.crc32).toBe(expected.crc32);
      expect(entry.compressedSize).toBe(expected.compressedSize);
      expect(entry.uncompressedSize).toBe(expected.uncompressedSize);
      expect(entry.localHeaderOffset).toBe(expected.localHeaderOffset);
      expect(text(entry.nameRaw)).toBe(entry.name);
      expect(zip.dataOffset(entry)).toBe(expected.dataOffset);
      expect(zip.dataOffset(entry) % 64).toBe(0);
      expect(zip.readEntry(entry)).toEqual(bytesOf(must(specs[i]).data ?? ""));
    }
    expect(zip.prefix).toBe("archive");
    expect(zip.recordName(must(zip.entries[0]))).toBe("data.pkl");
    expect(zip.get("data.pkl")).toBe(zip.entries[0]);
    expect(zip.get("data/1")?.uncompressedSize).toBe(1000);
    expect(text(zip.readEntry(must(zip.get("byteorder"))))).toBe("little");
    expect(zip.get("archive/data.pkl")).toBeUndefined();
    expect(zip.get("data/2")).toBeUndefined();
    expect(zip.duplicates).toEqual([]);
  });

  it("reports the local header (FB padding, names) and reads it only once", () => {
    const built = buildZip(torchSpecs("new"));
    const source = new CountingSource(new BufferSource(built.bytes));
    const zip = openZip(source);
    const entry = must(zip.get("data.pkl"));
    const before = source.readCount;
    const header = zip.localHeader(entry);
    expect(source.readCount).toBe(before + 1);
    expect(header).toMatchObject({ offset: 0, flags: 0x0808, method: 0, nameMatches: true, dataOffset: 64 });
    // new/data.pkl: 30 + 12 + 4 = 46, so 18 bytes of "Z" padding (as in a real torch 1.13 file)
    expect(header.extraLength).toBe(4 + 18);
    expect(text(header.nameRaw)).toBe("new/data.pkl");
    zip.dataOffset(entry);
    zip.localHeader(entry);
    zip.readEntry(entry);
    expect(source.readCount).toBe(before + 2); // the header once, then the data
  });

  it("flags a local name that differs from the central one", () => {
    const zip = open(buildZip([{ name: "archive/data.pkl", data: "x", localName: "archive/data.pkx" }]));
    const header = zip.localHeader(must(zip.entries[0]));
    expect(header.nameMatches).toBe(false);
    expect(text(header.nameRaw)).toBe("archive/data.pkx");
    const longer = open(buildZip([{ name: "a/b", data: "x", localName: "a/bbbbbbbbbbbbbbbbbbbbbb" }]));
    expect(text(longer.localHeader(must(longer.entries[0])).nameRaw)).toBe("a/bbbbbbbbbbbbbbbbbbbbbb");
    expect(longer.readEntry(must(longer.entries[0]))).toEqual(bytesOf("x"));
  });

  it("takes the prefix from entry 0, as torch does", () => {
    const dirFirst = open(
      buildZip([{ name: "model/" }, { name: "model/data.pkl", data: "p" }, { name: "x/y" }]),
    );
    expect(dirFirst.prefix).toBe("model");
    expect(dirFirst.get("data.pkl")?.index).toBe(1);
    expect(dirFirst.recordName(must(dirFirst.entries[0]))).toBe("");
    expect(dirFirst.recordName(must(dirFirst.entries[2]))).toBeUndefined();

    const flat = open(
      buildZip([
        { name: "data.pkl", data: "p" },
        { name: "dir/version", data: "3\n" },
      ]),
    );
    expect(flat.prefix).toBe("");
    expect(flat.get("data.pkl")?.index).toBe(0);
    expect(flat.get("dir/version")?.index).toBe(1);
    expect(flat.recordName(must(flat.entries[1]))).toBe("dir/version");

    const empty = open(buildZip([]));
    expect(empty.entries).toEqual([]);
    expect(empty.prefix).toBe("");
  });

  it("lists duplicate names and resolves them to the first occurrence", () => {
    const zip = open(
      buildZip([
        { name: "archive/data.pkl", data: "pickle" },
        { name: "archive/data/0", data: "first" },
        { name: "archive/data/0", data: "second" },
        { name: "archive/data/0", data: "third" },
        { name: "archive/version", data: "3\n" },
      ]),
    );
    expect(zip.duplicates).toEqual(["archive/data/0"]);
    expect(zip.get("data/0")?.index).toBe(1);
    expect(text(zip.readEntry(must(zip.get("data/0"))))).toBe("first");
    expect(zip.entries).toHaveLength(5);
  });
});

describe("record bytes", () => {
  it("inflates deflated records whole and in chunks", async () => {
    const code = prose(50_000);
    const zip = open(
      buildZip([
        { name: "scripted/data.pkl", data: "p" },
        { name: "scripted/code/m.py", data: code, deflate: true },
      ]),
    );
    const entry = must(zip.get("code/m.py"));
    expect(entry.method).toBe(8);
    expect(entry.compressedSize).toBeLessThan(entry.uncompressedSize);
    expect(zip.dataOffset(entry) % 64).toBe(0);
    expect(text(zip.readEntry(entry))).toBe(code);
    const { bytes, sizes } = await collect(zip.chunks(entry, 1000));
    expect(text(bytes)).toBe(code);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(1000);
  });

  it("streams stored records in chunks of the requested size", async () => {
    const data = pseudoRandom(1000, 9);
    const zip = open(buildZip([{ name: "archive/data/0", data }]));
    const { bytes, sizes } = await collect(zip.chunks(must(zip.entries[0]), 300));
    expect(bytes).toEqual(data);
    expect(sizes).toEqual([300, 300, 300, 100]);
    expect((await collect(zip.chunks(must(zip.entries[0])))).sizes).toEqual([1000]);
  });

  it("stops cleanly when the consumer breaks out of a deflated stream", async () => {
    const zip = open(buildZip([{ name: "a/code.py", data: prose(200_000), deflate: true }]));
    let seen = 0;
    for await (const chunk of zip.chunks(must(zip.entries[0]), 4096)) {
      seen += chunk.length;
      break;
    }
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThanOrEqual(4096);
  });

  it("verifies CRCs: ok, corrupted, not computed (0), empty", async () => {
    const specs: ZipSpec[] = [
      { name: "archive/data/0", data: pseudoRandom(5000, 4) },
      { name: "archive/code.py", data: prose(3000), deflate: true },
      { name: "archive/data/1", data: pseudoRandom(64, 5), central: { crc32: 0 } },
      { name: "archive/data/2", data: new Uint8Array(0) },
    ];
    const built = buildZip(specs);
    const zip = open(built);
    const [stored, deflated, skipped, empty] = zip.entries.map((e) => e);
    expect(await zip.verifyCrc(must(stored))).toEqual({
      ok: true,
      skipped: false,
      expected: zlibCrc32(bytesOf(must(specs[0]).data ?? "")),
      actual: zlibCrc32(bytesOf(must(specs[0]).data ?? "")),
    });
    expect((await zip.verifyCrc(must(deflated))).ok).toBe(true);
    expect(await zip.verifyCrc(must(skipped))).toEqual({
      ok: true,
      skipped: true,
      expected: 0,
      actual: undefined,
    });
    expect(await zip.verifyCrc(must(empty))).toEqual({ ok: true, skipped: false, expected: 0, actual: 0 });

    const corrupted = built.bytes.slice();
    const at = must(built.entries[0]).dataOffset + 1234;
    corrupted[at] = (corrupted[at] ?? 0) ^ 0x01;
    const damaged = open(corrupted);
    const result = await damaged.verifyCrc(must(damaged.entries[0]));
    expect(result.ok).toBe(false);
    expect(result.skipped).toBe(false);
    expect(result.expected).toBe(must(stored).crc32);
    expect(result.actual).not.toBe(result.expected);
  });

  it("the portable CRC-32 agrees with zlib's", () => {
    for (const length of [0, 1, 7, 1000]) {
      const data = pseudoRandom(length, length + 11);
      expect(crc32Portable(data)).toBe(zlibCrc32(data));
      expect(crc32Portable(data.subarray(length >> 1), crc32Portable(data.subarray(0, length >> 1)))).toBe(
        zlibCrc32(data),
      );
    }
  });

  it("refuses encrypted records and unknown methods with zip-unsupported", async () => {
    const zip = open(
      buildZip([
        { name: "a/secret", data: "xxxx", encrypted: true },
        { name: "a/bzip2", data: "BZh9", method: 12 },
      ]),
    );
    const [secret, bzip2] = zip.entries;
    expect(secret?.encrypted).toBe(true);
    expect(readerErrorOf(() => zip.readEntry(must(secret))).code).toBe("zip-unsupported");
    expect((await asyncReaderErrorOf(() => collect(zip.chunks(must(secret))))).code).toBe("zip-unsupported");
    const error = readerErrorOf(() => zip.readEntry(must(bzip2)));
    expect(error.code).toBe("zip-unsupported");
    expect(error.message).toContain("method 12");
    expect(error.file).toBe("test.pt");
  });

  it("caps whole-record reads with zip-limit", () => {
    const zip = open(buildZip([{ name: "a/data.pkl", data: pseudoRandom(100, 6) }]));
    const entry = must(zip.entries[0]);
    expect(readerErrorOf(() => zip.readEntry(entry, 99)).code).toBe("zip-limit");
    expect(zip.readEntry(entry, 100)).toHaveLength(100);
  });

  it("reports corrupt deflate data and sizes that disagree with the central directory", async () => {
    const code = prose(20_000);
    const built = buildZip([{ name: "a/code.py", data: code, deflate: true }]);
    const garbled = built.bytes.slice();
    garbled.fill(0xff, must(built.entries[0]).dataOffset, must(built.entries[0]).dataOffset + 40);
    const corrupt = open(garbled);
    expect(readerErrorOf(() => corrupt.readEntry(must(corrupt.entries[0]))).code).toBe("zip-malformed");
    expect((await asyncReaderErrorOf(() => collect(corrupt.chunks(must(corrupt.entries[0]))))).code).toBe(
      "zip-malformed",
    );

    const small = open(
      buildZip([{ name: "a/code.py", data: code, deflate: true, central: { uncompressedSize: 100 } }]),
    );
    const tooBig = readerErrorOf(() => small.readEntry(must(small.entries[0])));
    expect(tooBig.code).toBe("zip-malformed");
    expect(tooBig.message).toContain("more than the 100 bytes");
    expect((await asyncReaderErrorOf(() => collect(small.chunks(must(small.entries[0]))))).code).toBe(
      "zip-malformed",
    );

    const large = open(
      buildZip([{ name: "a/code.py", data: code, deflate: true, central: { uncompressedSize: 30_000 } }]),
    );
    expect(readerErrorOf(() => large.readEntry(must(large.entries[0]))).code).toBe("zip-malformed");
    expect((await asyncReaderErrorOf(() => collect(large.chunks(must(large.entries[0]))))).code).toBe(
      "zip-malformed",
    );

    const stored = open(buildZip([{ name: "a/data/0", data: "abcd", central: { uncompressedSize: 5 } }]));
    expect(readerErrorOf(() => stored.readEntry(must(stored.entries[0]))).code).toBe("zip-malformed");
  });
});

describe("names", () => {
  it("decodes UTF-8 names when flag bit 11 is set and CP437 otherwise, keeping the raw bytes", () => {
    const cp437 = Uint8Array.from([0x80, 0x82, 0x2f, 0x61, 0xe1]);
    const zip = open(
      buildZip([
        { name: "模型/data.pkl", data: "p" },
        { name: cp437, data: "q", utf8: false },
        { name: "plain/ascii", data: "r", utf8: false },
      ]),
    );
    expect(zip.prefix).toBe("模型");
    expect(zip.get("data.pkl")?.index).toBe(0);
    const [, legacy, ascii] = zip.entries;
    expect(legacy?.name).toBe("Çé/aß");
    expect(legacy?.nameRaw).toEqual(cp437);
    expect(ascii?.name).toBe("plain/ascii");
  });

  it("CP437 decoding is lossless (256 distinct characters)", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const decoded = decodeCp437(all);
    expect(decoded).toHaveLength(256);
    expect(new Set(decoded).size).toBe(256);
    expect(decoded.slice(0x80, 0x84)).toBe("Çüéâ");
    expect(decoded.charAt(0xff)).toBe("\u00a0");
  });
});

describe("layout variants", () => {
  it("handles bytes prepended without adjusting offsets (self-extractor style)", () => {
    const specs = torchSpecs();
    for (const zip64End of [true, false]) {
      const built = buildZip(specs, { junkBefore: pseudoRandom(1000, 7), zip64End });
      const zip = open(built);
      expect(zip.junkBefore).toBe(1000);
      expect(zip.zip64).toBe(zip64End);
      expect(zip.centralDirectoryOffset).toBe(built.centralDirectoryOffset);
      for (const [i, entry] of zip.entries.entries()) {
        expect(entry.localHeaderOffset).toBe(must(built.entries[i]).localHeaderOffset);
        expect(zip.dataOffset(entry)).toBe(must(built.entries[i]).dataOffset);
        expect(zip.readEntry(entry)).toEqual(bytesOf(must(specs[i]).data ?? ""));
      }
    }
  });

  it("handles prepended bytes that the offsets count (zip -A), trailing bytes and a comment", () => {
    const built = buildZip(torchSpecs(), {
      junkBefore: pseudoRandom(77, 8),
      adjustOffsets: true,
      junkAfter: pseudoRandom(33, 9),
      comment: "hello",
    });
    const zip = open(built);
    expect(zip.junkBefore).toBe(0);
    expect(zip.junkAfter).toBe(33);
    expect(zip.readEntry(must(zip.get("data/0")))).toEqual(pseudoRandom(100, 2));
  });

  it("reads archives without ZIP64 end records", () => {
    const zip = open(buildZip(torchSpecs(), { zip64End: false }));
    expect(zip.zip64).toBe(false);
    expect(zip.entries).toHaveLength(7);
  });

  it("takes counts, size and offset from the ZIP64 end record when the classic one holds sentinels", () => {
    const built = buildZip(torchSpecs(), { sentinels: true });
    const zip = open(built);
    expect(zip.entries).toHaveLength(7);
    expect(zip.centralDirectoryOffset).toBe(built.centralDirectoryOffset);
  });

  it("reads ZIP64 extra fields for sizes and offsets (local and central)", () => {
    const specs: ZipSpec[] = torchSpecs().map((spec) => ({ ...spec, zip64: true }));
    const built = buildZip(specs, { sentinels: true });
    const zip = open(built);
    for (const [i, entry] of zip.entries.entries()) {
      const expected = must(built.entries[i]);
      expect(entry.uncompressedSize).toBe(expected.uncompressedSize);
      expect(entry.compressedSize).toBe(expected.compressedSize);
      expect(entry.localHeaderOffset).toBe(expected.localHeaderOffset);
      expect(zip.dataOffset(entry)).toBe(expected.dataOffset);
      expect(zip.dataOffset(entry) % 64).toBe(0);
      expect(zip.readEntry(entry)).toEqual(bytesOf(must(specs[i]).data ?? ""));
    }
  });

  it("parses 64-bit central values beyond 4 GiB and fails lazily on the entry that points past EOF", () => {
    const far = 5 * 2 ** 32 + 123;
    const huge = 6 * 2 ** 30;
    const zip = open(
      buildZip([
        { name: "big/data.pkl", data: "p" },
        { name: "big/data/0", data: "x", central: { localHeaderOffset: far } },
        { name: "big/data/1", data: "", central: { compressedSize: huge, uncompressedSize: huge } },
      ]),
    );
    const [pickle, distant, large] = zip.entries;
    expect(distant?.localHeaderOffset).toBe(far);
    expect(large?.compressedSize).toBe(huge);
    expect(large?.uncompressedSize).toBe(huge);
    expect(text(zip.readEntry(must(pickle)))).toBe("p");
    const pastEnd = readerErrorOf(() => zip.dataOffset(must(distant)));
    expect(pastEnd.code).toBe("zip-truncated");
    expect(pastEnd.offset).toBe(far);
    expect(readerErrorOf(() => zip.dataOffset(must(large))).code).toBe("zip-truncated");
    expect(readerErrorOf(() => zip.readEntry(must(large))).code).toBe("zip-limit");
  });
});

describe("parseCentralDirectory", () => {
  const place = { file: "cd.bin", fileOffset: 1000, junkBefore: 0 };
  const name = bytesOf("archive/data/0");

  function cd(...records: Parameters<typeof writeCentralRecord>[1][]): Uint8Array {
    const w = new ByteWriter();
    for (const record of records) writeCentralRecord(w, record);
    return w.result();
  }

  it("applies ZIP64 extras only to fields that are 0xFFFFFFFF, in APPNOTE order", () => {
    const bytes = cd(
      {
        name,
        compressedSize: 0xffffffff,
        uncompressedSize: 7,
        localHeaderOffset: 0xffffffff,
        extra: Uint8Array.from([
          ...[0xca, 0xfe, 4, 0, 1, 2, 3, 4], // an unrelated extra field first
          ...zip64Extra([2 ** 40, 2 ** 50]),
        ]),
      },
      {
        name,
        uncompressedSize: 0xffffffff,
        compressedSize: 0xffffffff,
        extra: zip64Extra([2 ** 33, 2 ** 32]),
      },
    );
    const entries = parseCentralDirectory(bytes, { ...place, entryCount: 2 });
    expect(entries[0]).toMatchObject({
      uncompressedSize: 7,
      compressedSize: 2 ** 40,
      localHeaderOffset: 2 ** 50,
    });
    expect(entries[1]).toMatchObject({
      uncompressedSize: 2 ** 33,
      compressedSize: 2 ** 32,
      localHeaderOffset: 0,
    });
  });

  it("adds the junk shift to local header offsets", () => {
    const entries = parseCentralDirectory(cd({ name, localHeaderOffset: 10 }), {
      ...place,
      entryCount: 1,
      junkBefore: 5,
    });
    expect(entries[0]?.localHeaderOffset).toBe(15);
  });

  it("takes a sentinel without a ZIP64 extra literally", () => {
    const entries = parseCentralDirectory(cd({ name, compressedSize: 0xffffffff }), {
      ...place,
      entryCount: 1,
    });
    expect(entries[0]?.compressedSize).toBe(0xffffffff);
  });

  it("rejects 64-bit values above 2^53 - 1, short ZIP64 extras and overrunning fields", () => {
    const unsafe = cd({ name, localHeaderOffset: 0xffffffff, extra: zip64Extra([2n ** 60n]) });
    const error = readerErrorOf(() => parseCentralDirectory(unsafe, { ...place, entryCount: 1 }));
    expect(error.code).toBe("zip-malformed");
    expect(error.message).toContain(String(2n ** 60n));

    const short = cd({
      name,
      compressedSize: 0xffffffff,
      uncompressedSize: 0xffffffff,
      extra: zip64Extra([1]),
    });
    expect(readerErrorOf(() => parseCentralDirectory(short, { ...place, entryCount: 1 })).code).toBe(
      "zip-malformed",
    );

    const overrun = cd({
      name,
      compressedSize: 0xffffffff,
      extra: Uint8Array.from([1, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
    });
    expect(readerErrorOf(() => parseCentralDirectory(overrun, { ...place, entryCount: 1 })).code).toBe(
      "zip-malformed",
    );
  });

  it("rejects bad signatures and counts that disagree with the size, giving the byte offset", () => {
    const two = cd({ name }, { name });
    const tooMany = readerErrorOf(() => parseCentralDirectory(two, { ...place, entryCount: 3 }));
    expect(tooMany.code).toBe("zip-malformed");
    expect(tooMany.offset).toBe(1000 + two.length);
    const tooFew = readerErrorOf(() => parseCentralDirectory(two, { ...place, entryCount: 1 }));
    expect(tooFew.code).toBe("zip-malformed");
    expect(tooFew.message).toMatch(/announces 1 central directory entries/);

    const bad = two.slice();
    patchU32(bad, 46 + name.length, 0x04034b50);
    const signature = readerErrorOf(() => parseCentralDirectory(bad, { ...place, entryCount: 2 }));
    expect(signature.code).toBe("zip-malformed");
    expect(signature.offset).toBe(1000 + 46 + name.length);
    expect(signature.message).toContain("expected central directory entry 1");
    expect(signature.message).toContain("found 0x04034b50");

    const cut = two.subarray(0, two.length - 3);
    expect(readerErrorOf(() => parseCentralDirectory(cut, { ...place, entryCount: 2 })).code).toBe(
      "zip-malformed",
    );
  });
});

describe("damaged input", () => {
  const built = buildZip(torchSpecs());
  const { bytes } = built;
  const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

  it("every cut-short file that starts like a zip is zip-truncated", () => {
    const codes = new Map<string, number>();
    for (let cut = 4; cut < bytes.length; cut++) {
      const error = readerErrorOf(() => open(bytes.subarray(0, cut)));
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
    }
    expect([...codes.keys()]).toEqual(["zip-truncated"]);
    const error = readerErrorOf(() => open(bytes.subarray(0, built.centralDirectoryOffset + 10)));
    expect(error.message).toContain("has no central directory");
    expect(error.offset).toBe(built.centralDirectoryOffset + 10);
    expect(error.file).toBe("test.pt");
  });

  it("tiny and empty inputs give ReaderErrors", () => {
    expect(readerErrorOf(() => open(new Uint8Array(0))).code).toBe("empty-file");
    expect(readerErrorOf(() => open(bytes.subarray(0, 3))).code).toBe("zip-malformed");
  });

  it("a central directory past the end of the file is zip-truncated", () => {
    const classic = buildZip(torchSpecs(), { zip64End: false });
    const patched = classic.bytes.slice();
    patchU32(patched, classic.endOffset + 16, classic.bytes.length + 100); // 16 - offset of the CD
    const error = readerErrorOf(() => open(patched));
    expect(error.code).toBe("zip-truncated");
    expect(error.message).toContain("past the end");

    const wide = buildZip(torchSpecs(), { sentinels: true });
    const patched64 = wide.bytes.slice();
    patchU64(patched64, must(wide.zip64EndOffset) + 48, wide.bytes.length); // 48 - offset of the CD
    expect(readerErrorOf(() => open(patched64)).code).toBe("zip-truncated");

    // 500 bytes lost from the middle: the end records survive but point past the end.
    const holed = Buffer.concat([bytes.subarray(0, 200), bytes.subarray(700)]);
    expect(readerErrorOf(() => open(holed)).code).toBe("zip-truncated");
  });

  it("entries whose header or data run past the end are zip-truncated; into the CD, zip-malformed", () => {
    const last = built.entries.length - 1;
    const cdRecord = (index: number) => {
      let p = built.centralDirectoryOffset;
      for (let i = 0; i < index; i++) p += 46 + view(bytes).getUint16(p + 28, true);
      return p;
    };
    const pastEnd = bytes.slice();
    patchU32(pastEnd, cdRecord(2) + 42, bytes.length - 10); // 42 - local header offset
    const header = readerErrorOf(() => open(pastEnd).dataOffset(must(open(pastEnd).entries[2])));
    expect(header.code).toBe("zip-truncated");

    const longData = bytes.slice();
    patchU32(longData, cdRecord(last) + 20, 10_000); // 20 - compressed size
    patchU32(longData, cdRecord(last) + 24, 10_000); // 24 - uncompressed size
    const zip = open(longData);
    const data = readerErrorOf(() => zip.readEntry(must(zip.entries[last])));
    expect(data.code).toBe("zip-truncated");
    expect(data.message).toContain("past the end of the");

    const intoCd = bytes.slice();
    patchU32(intoCd, cdRecord(last) + 20, 200);
    patchU32(intoCd, cdRecord(last) + 24, 200);
    const overlap = open(intoCd);
    expect(readerErrorOf(() => overlap.readEntry(must(overlap.entries[last]))).code).toBe("zip-malformed");
  });

  it("bad signatures and inconsistent counts are zip-malformed, with offsets", () => {
    const badCd = bytes.slice();
    patchU32(badCd, built.centralDirectoryOffset, 0x12345678);
    const cdError = readerErrorOf(() => open(badCd));
    expect(cdError.code).toBe("zip-malformed");
    expect(cdError.offset).toBe(built.centralDirectoryOffset);
    expect(cdError.message).toContain("found 0x12345678");

    const badLocal = bytes.slice();
    patchU32(badLocal, must(built.entries[1]).localHeaderOffset, 0);
    const localError = readerErrorOf(() => open(badLocal).readEntry(must(open(badLocal).entries[1])));
    expect(localError.code).toBe("zip-malformed");
    expect(localError.offset).toBe(must(built.entries[1]).localHeaderOffset);

    const classic = buildZip(torchSpecs(), { zip64End: false });
    const count = classic.bytes.slice();
    patchU16(count, classic.endOffset + 8, 6);
    patchU16(count, classic.endOffset + 10, 6);
    expect(readerErrorOf(() => open(count)).code).toBe("zip-malformed");
    const onDisk = classic.bytes.slice();
    patchU16(onDisk, classic.endOffset + 8, 6);
    expect(readerErrorOf(() => open(onDisk)).message).toContain("inconsistent counts");

    const disagree = bytes.slice();
    patchU16(disagree, built.endOffset + 10, 6); // classic total entries 6, ZIP64 says 7
    const mismatch = readerErrorOf(() => open(disagree));
    expect(mismatch.code).toBe("zip-malformed");
    expect(mismatch.message).toContain("inconsistent end records");

    const badZip64 = bytes.slice();
    patchU32(badZip64, must(built.zip64EndOffset), 0);
    expect(readerErrorOf(() => open(badZip64)).code).toBe("zip-malformed");

    const multiDisk = classic.bytes.slice();
    patchU16(multiDisk, classic.endOffset + 4, 1);
    expect(readerErrorOf(() => open(multiDisk)).code).toBe("zip-unsupported");
  });

  it("garbage, and random corruption of a valid archive, only ever raise ReaderErrors", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      expect(isReaderError(readerErrorOf(() => open(pseudoRandom(200 + seed * 37, seed))))).toBe(true);
    }
    const fake = pseudoRandom(5000, 99);
    fake.set([0x50, 0x4b, 0x05, 0x06], fake.length - 22);
    patchU16(fake, fake.length - 2, 0);
    expect(isReaderError(readerErrorOf(() => open(fake)))).toBe(true);

    const deflated = buildZip(
      [...torchSpecs(), { name: "archive/code.py", data: prose(5000), deflate: true }],
      {
        sentinels: true,
      },
    ).bytes;
    const noise = pseudoRandom(4 * 400, 1234);
    let opened = 0;
    for (let round = 0; round < 400; round++) {
      const damaged = deflated.slice();
      // Flip one byte, mostly in the central directory and end records where the parsing happens.
      const r = view(noise).getUint32(round * 4, true);
      const at = round % 4 === 0 ? r % damaged.length : damaged.length - 1 - (r % 700);
      damaged[at] = (damaged[at] ?? 0) ^ (1 << (r >>> 29));
      try {
        const zip = open(damaged);
        opened += 1;
        for (const entry of zip.entries) {
          try {
            zip.readEntry(entry, 1 << 20);
            await zip.verifyCrc(entry);
          } catch (error) {
            if (!isReaderError(error)) throw error;
          }
        }
      } catch (error) {
        if (!isReaderError(error)) throw error;
      }
    }
    expect(opened).toBeGreaterThan(0);
  });
});

describe("scale and read counts", () => {
  function manyRecords(count: number): BuiltZip {
    const specs: ZipSpec[] = [{ name: "archive/data.pkl", data: "pickle" }];
    const payload = Uint8Array.from([1, 2, 3, 4]);
    for (let i = 0; i < count; i++) specs.push({ name: `archive/data/${i}`, data: payload });
    return buildZip(specs);
  }

  it("opens a 200,000-record archive quickly, in two reads", () => {
    const built = manyRecords(200_000);
    const source = new CountingSource(new BufferSource(built.bytes, "big.pt"));
    const started = performance.now();
    const zip = openZip(source);
    const elapsed = performance.now() - started;
    console.log(
      `openZip: 200,001 entries, ${(built.centralDirectorySize / 1e6).toFixed(1)} MB central directory, ` +
        `${elapsed.toFixed(0)} ms, ${source.readCount} reads`,
    );
    expect(zip.entries).toHaveLength(200_001);
    expect(source.readCount).toBe(2);
    const lookupStarted = performance.now();
    for (let i = 0; i < 200_000; i += 1) must(zip.get(`data/${i}`));
    console.log(`get: 200,000 lookups in ${(performance.now() - lookupStarted).toFixed(0)} ms`);
    const lastEntry = must(zip.get("data/199999"));
    expect(zip.readEntry(lastEntry)).toEqual(Uint8Array.from([1, 2, 3, 4]));
    expect(zip.dataOffset(lastEntry) % 64).toBe(0);
    expect(zip.duplicates).toEqual([]);
  });

  it("makes the same small number of reads whatever the entry count", () => {
    const reads = [10, 5000, 50_000].map((count) => {
      const source = new CountingSource(new BufferSource(manyRecords(count).bytes));
      openZip(source);
      return source.readCount;
    });
    // One read of the tail holds everything while the central directory fits in its last 64 KiB; then two.
    expect(reads).toEqual([1, 2, 2]);
  });
});

describe("looksLikeZip", () => {
  it("matches PK\\x03\\x04 at offset 0 only", () => {
    expect(looksLikeZip(bytes4(0x50, 0x4b, 0x03, 0x04))).toBe(true);
    expect(looksLikeZip(buildZip(torchSpecs()).bytes)).toBe(true);
    expect(looksLikeZip(bytes4(0x50, 0x4b, 0x05, 0x06))).toBe(false);
    expect(looksLikeZip(Uint8Array.from([0x50, 0x4b, 0x03]))).toBe(false);
    expect(looksLikeZip(new Uint8Array(0))).toBe(false);
    expect(looksLikeZip(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a]))).toBe(false);
  });

  function bytes4(a: number, b: number, c: number, d: number): Uint8Array {
    return Uint8Array.from([a, b, c, d]);
  }
});

describe("files on disk: torch samples (when generated) and synthetic archives", () => {
  /** Every *.pt / *.pth under `dir` that starts like a zip. */
  function zipFilesUnder(dir: string): string[] {
    let names: string[];
    try {
      names = readdirSync(dir, { recursive: true, encoding: "utf8" });
    } catch {
      return [];
    }
    return names
      .filter((n) => /\.(pt|pth)$/.test(n))
      .map((n) => join(dir, n))
      .filter((path) => {
        try {
          return looksLikeZip(readFileSync(path).subarray(0, 4));
        } catch {
          return false;
        }
      })
      .sort();
  }

  it("every record is 64-aligned and data.pkl reads", () => {
    const scratch = mkdtempSync(join(tmpdir(), "ckpt-zip-"));
    try {
      const synthetic: [string, ZipOptions][] = [
        ["synthetic.pt", {}],
        ["synthetic_classic.pth", { zip64End: false }],
        ["synthetic_sentinels.pt", { sentinels: true }],
      ];
      for (const [name, options] of synthetic) {
        writeFileSync(join(scratch, name), buildZip(torchSpecs(name.replace(/\.\w+$/, "")), options).bytes);
      }
      const files = [
        // The torch-written samples only: samples/outputs holds deliberately truncated and corrupted runs.
        ...zipFilesUnder(fileURLToPath(new URL("../samples/torch1", import.meta.url))),
        ...zipFilesUnder(fileURLToPath(new URL("../samples/torch2", import.meta.url))),
        ...zipFilesUnder(scratch),
      ];
      let checked = 0;
      for (const path of files) {
        const source = FileSource.open(path);
        try {
          const zip = openZip(source);
          expect(zip.prefix, path).not.toBe("");
          for (const entry of zip.entries)
            expect(zip.dataOffset(entry) % 64, `${path} ${entry.name}`).toBe(0);
          const pickle: ZipEntry = must(zip.get("data.pkl"));
          const bytes = zip.readEntry(pickle);
          expect(bytes[0], path).toBe(0x80); // pickle PROTO opcode
          checked += 1;
        } finally {
          source.close();
        }
      }
      expect(checked).toBeGreaterThanOrEqual(synthetic.length);
      console.log(`zip files checked on disk: ${checked} (${checked - synthetic.length} torch samples)`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe("records found by number", () => {
  it("numberedSizes(folder)(n) is uncompressedSizeOf(folder + n), for every name a key could take", () => {
    const names = [
      "data/0",
      "data/1",
      "data/01",
      "data/2",
      "data/2",
      "data/1234567",
      "data/12345678",
      "data/x",
    ];
    const specs = names.map((name, i) => ({ name: `archive/${name}`, data: "x".repeat(i + 1) }));
    const zip = openZip(
      new BufferSource(buildZip([{ name: "archive/data.pkl", data: "p" }, ...specs]).bytes),
    );
    const sizeOf = zip.numberedSizes("data/");
    for (const n of [0, 1, 2, 3, 1234567])
      expect(sizeOf(n), `data/${n}`).toBe(zip.uncompressedSizeOf(`data/${n}`));
    // The first of a repeated name, as torch reads it; a leading zero is another name.
    expect(sizeOf(2)).toBe(4);
    expect(sizeOf(1)).toBe(2);
    expect(sizeOf(3)).toBe(-1);
    // Eight digits are past what an id's number can be (decimalId): such a key is looked up by its name.
    expect(sizeOf(12345678)).toBe(-1);
    expect(decimalId("12345678")).toBe(-1);
    expect(zip.uncompressedSizeOf("data/12345678")).toBe(7);
  });

  it("in an archive whose names are not all ASCII, looks them up by name and answers the same", () => {
    const specs = [
      { name: "archive/data.pkl", data: "p" },
      { name: "archive/données", data: "é", utf8: true },
      { name: "archive/data/3", data: "xyz" },
    ];
    const zip = openZip(new BufferSource(buildZip(specs).bytes));
    const sizeOf = zip.numberedSizes("data/");
    expect([sizeOf(3), sizeOf(4)]).toEqual([3, -1]);
  });
});

describe("zip archives torch.save did not write", () => {
  // The records of each kind as torch 2.13 writes them (a PT2 archive from torch.export.save has .data/version).
  const kinds: Array<[string, string[], RegExp]> = [
    [
      "PT2 (torch.export.save)",
      ["m/archive_format", "m/archive_version", "m/.data/version", "m/models/model.json", "m/byteorder"],
      /^a torch\.export program \(PT2 archive/,
    ],
    [
      "torch.package",
      ["p/.data/version", "p/.data/extern_modules", "p/mod/__init__.py"],
      /^a torch\.package archive/,
    ],
    ["TorchScript <= 1.2", ["t/model.json", "t/tensors/0"], /^a TorchScript archive from torch <= 1\.2/],
  ];
  for (const [label, names, message] of kinds) {
    it(`${label} is named as what it is, unsupported-format`, () => {
      const { bytes } = buildZip(names.map((name) => ({ name, data: "x" })));
      let thrown: unknown;
      try {
        readCheckpoint(new BufferSource(bytes, "archive.zip"));
      } catch (error) {
        thrown = error;
      }
      expect(isReaderError(thrown) && thrown.code).toBe("unsupported-format");
      expect((thrown as ReaderError).message).toMatch(message);
    });
  }
});
