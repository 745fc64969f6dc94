import {
  appendFileSync,
  closeSync,
  cpSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  truncateSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import { scanSource } from "../src/inspect/security/scan.js";
import { ReaderError } from "../src/reader/errors.js";
import { FileSource } from "../src/reader/fileSource.js";
import { readCheckpoint } from "../src/reader/open.js";
import { parsePickle } from "../src/reader/pickle/machine.js";
import { BufferSource } from "../src/reader/source.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * No input can crash or fool ckpt: every truncation point, random bit flips, random bytes and random opcode
 * streams end in a result or a ReaderError with a stable code, never an uncaught exception, and in bounded time.
 */
const dir = mkdtempSync(join(tmpdir(), "ckpt-robust-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Everything a user's command does with a file: read, inspect (with hashes and stats), scan. */
function everything(bytes: Uint8Array): "ok" | string {
  const source = new BufferSource(bytes, "fuzz.pt");
  try {
    const checkpoint = readCheckpoint(source);
    inspectCheckpoint(checkpoint, "fuzz.pt", { hash: true, stats: true });
    scanSource(source, { deep: true });
    return "ok";
  } catch (error) {
    if (error instanceof ReaderError) return error.code;
    throw error; // an uncaught exception: the property fails and fast-check shrinks it
  }
}

const samples = [
  "torch2/training_checkpoint.pth",
  "torch1/legacy.pt",
  "torch2/model.safetensors",
  "torch2/torchscript.pt",
  "torch2/sparse.pt",
].map((name) => new Uint8Array(readFileSync(join(SAMPLES_DIR, name))));

describe("robustness", () => {
  it("every truncation point of real checkpoints gives a result or a ReaderError", () => {
    for (const bytes of samples) {
      const step = Math.max(1, Math.floor(bytes.length / 600));
      for (let cut = 0; cut < bytes.length; cut += step) everything(bytes.subarray(0, cut));
    }
  });

  it("random bit flips in real checkpoints", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...samples),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        (bytes, positions) => {
          const copy = Uint8Array.from(bytes);
          for (const p of positions)
            copy[p % copy.length] = (copy[p % copy.length] as number) ^ (1 << (p % 8));
          everything(copy);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it("random bytes, and random bytes behind each format's magic", () => {
    const magics = [
      [0x50, 0x4b, 0x03, 0x04],
      [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19],
      [0x80, 0x02],
      [0x10, 0, 0, 0, 0, 0, 0, 0, 0x7b],
      [],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 4096 }), (magic, tail) => {
        everything(Uint8Array.from([...magic, ...tail]));
      }),
      { numRuns: 3000 },
    );
  });

  it("random opcode streams never throw anything but ReaderError, in bounded time", () => {
    const opcodes = [
      0x28, 0x2e, 0x30, 0x31, 0x32, 0x29, 0x5d, 0x7d, 0x4e, 0x88, 0x89, 0x4b, 0x4a, 0x85, 0x86, 0x87, 0x74,
      0x6c, 0x64, 0x61, 0x65, 0x73, 0x75, 0x62, 0x52, 0x81, 0x94, 0x68, 0x71, 0x93, 0x8c, 0x63, 0x8f, 0x90,
      0x91, 0x51, 0x95, 0x8a, 0x58, 0x43,
    ];
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(...opcodes), fc.nat(255)), { maxLength: 400 }), (ops) => {
        const bytes = Uint8Array.from([0x80, 0x04, ...ops]);
        const started = performance.now();
        for (const scan of [false, true]) {
          for (const frames of ["contiguous", "file"] as const) {
            try {
              parsePickle(bytes, { scan, frames });
            } catch (error) {
              if (!(error instanceof ReaderError)) throw error;
            }
          }
        }
        everything(bytes);
        expect(performance.now() - started).toBeLessThan(2000);
      }),
      { numRuns: 3000 },
    );
  });

  it("FRAMEs of any length at any place, read either way, give a result or a ReaderError", () => {
    // Real opcode streams (one opcode and its operand per entry) cut into FRAMEs at any byte, whose lengths
    // are right, short, long, zero or past the end.
    const streams = [
      [
        [0x28],
        [0x4b, 1],
        [0x58, 2, 0, 0, 0, 0x68, 0x69],
        [0x63, 0x6f, 0x73, 0x0a, 0x73, 0x0a],
        [0x86],
        [0x74],
      ],
      [[0x5d], [0x94], [0x28], [0x4a, 1, 2, 3, 4], [0x49, 0x31, 0x0a], [0x8c, 3, 0x61, 0x62, 0x63], [0x65]],
      [
        [0x7d],
        [0x8c, 1, 0x6b],
        [0x42, 3, 0, 0, 0, 1, 2, 3],
        [0x73],
        [0x72, 5, 0, 0, 0],
        [0x6a, 5, 0, 0, 0],
        [0x86],
      ],
    ];
    const frame = (length: number) => [0x95, length & 0xff, (length >> 8) & 0xff, 0, 0, 0, 0, 0, 0];
    const piece = fc.record({ take: fc.nat(12), lie: fc.integer({ min: -3, max: 40 }) });
    fc.assert(
      fc.property(fc.constantFrom(...streams), fc.array(piece, { maxLength: 6 }), (opcodes, cuts) => {
        const ops = opcodes.flat();
        const out = [0x80, 0x04];
        let at = 0;
        for (const { take, lie } of cuts) {
          const part = ops.slice(at, at + take);
          at += take;
          out.push(...frame(Math.max(0, part.length + lie)), ...part);
        }
        out.push(...ops.slice(at), 0x2e);
        for (const scan of [false, true]) {
          for (const frames of ["contiguous", "file"] as const) {
            try {
              parsePickle(Uint8Array.from(out), { scan, frames });
            } catch (error) {
              if (!(error instanceof ReaderError)) throw error;
            }
          }
        }
      }),
      { numRuns: 2000 },
    );
    // Honest FRAMEs at opcode boundaries, as the pickler writes them: no issues, and the value of the
    // unframed stream in both framings.
    fc.assert(
      fc.property(fc.constantFrom(...streams), fc.array(fc.nat(3), { maxLength: 8 }), (opcodes, sizes) => {
        const plain = parsePickle(Uint8Array.from([0x80, 0x04, ...opcodes.flat(), 0x2e]));
        const out = [0x80, 0x04];
        let at = 0;
        for (const size of sizes) {
          const part = opcodes.slice(at, at + size).flat();
          at += size;
          out.push(...frame(part.length), ...part);
        }
        out.push(...opcodes.slice(at).flat(), 0x2e);
        for (const frames of ["contiguous", "file"] as const) {
          const result = parsePickle(Uint8Array.from(out), { frames });
          expect(result.frameIssues).toEqual([]);
          expect(result.value).toEqual(plain.value);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("a memo 'billion laughs' (each list holds the previous one twice) neither explodes nor hangs", () => {
    // [[...]] nested 60 deep, each level referencing the level below twice: 2^60 paths, 60 objects.
    const ops: number[] = [0x80, 0x02, 0x5d, 0x71, 0];
    for (let level = 1; level <= 60; level++)
      ops.push(0x5d, 0x71, level, 0x28, 0x68, level - 1, 0x68, level - 1, 0x65);
    ops.push(0x2e);
    const started = performance.now();
    expect(everything(Uint8Array.from(ops))).toBe("ok"); // a bare pickle: read, outlined, scanned
    const result = parsePickle(Uint8Array.from(ops));
    expect(result.end).toBe(ops.length);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it("lists nested 200,000 deep are walked to a depth limit, with a finding, not a stack overflow", () => {
    const depth = 200_000;
    // EMPTY_LIST depth times, then APPEND depth - 1 times: each list holds the next one.
    const bytes = Uint8Array.from([
      0x80,
      0x02,
      ...new Array(depth).fill(0x5d),
      ...new Array(depth - 1).fill(0x61),
      0x2e,
    ]);
    expect(everything(bytes)).toBe("ok");
    const report = inspectCheckpoint(readCheckpoint(new BufferSource(bytes, "deep.pkl")), "deep.pkl");
    expect(report.findings.map((f) => f.code)).toContain("walk-truncated");
    expect(report.findings.find((f) => f.code === "walk-truncated")?.message).toMatch(
      /deeper than 1000 levels/,
    );
  });

  it("a dict key of tuples nested 200,000 deep is a pickle-limit error, not a stack overflow", () => {
    // EMPTY_DICT, EMPTY_TUPLE wrapped by TUPLE1 200,000 times, BININT1 1, SETITEM, STOP
    const bytes = Uint8Array.from([
      0x80,
      0x02,
      0x7d,
      0x29,
      ...new Array(200_000).fill(0x85),
      0x4b,
      1,
      0x73,
      0x2e,
    ]);
    expect(everything(bytes)).toBe("pickle-limit");
  });

  it("huge MARK frames and a 300,000-key state dict neither overflow the stack nor fail", () => {
    const count = 300_000;
    // A list built by one APPENDS of 300,000 items, and a dict by one SETITEMS of 300,000 pairs.
    const appends = Uint8Array.from([
      0x80,
      0x02,
      0x5d,
      0x28,
      ...new Array<number>(count).fill(0).flatMap(() => [0x4b, 7]),
      0x65,
      0x2e,
    ]);
    expect(everything(appends)).toBe("ok");
    const key = (i: number) => {
      const text = Buffer.from(`layers.${i}.weight`, "latin1");
      return [0x58, text.length, 0, 0, 0, ...text];
    };
    const pairs: number[] = [];
    for (let i = 0; i < count; i++) pairs.push(...key(i), 0x4e);
    const dict = Uint8Array.from([0x80, 0x02, 0x7d, 0x28, ...pairs, 0x75, 0x2e]);
    expect(everything(dict)).toBe("ok");
    // The same dict as a torch checkpoint's data.pkl: inspect then walks it for the security scan too.
    const path = join(dir, "wide.pt");
    const fd = openSync(path, "w");
    const writer = new TorchZipWriter(fd, "wide");
    writer.addRecord("data.pkl", dict);
    writer.addRecord("version", Buffer.from("3\n"));
    writer.finish();
    closeSync(fd);
    expect(everything(new Uint8Array(readFileSync(path)))).toBe("ok");
    const result = parsePickle(dict);
    expect(result.value).toMatchObject({ kind: "dict" });
    expect((result.value as { keys: unknown[] }).keys).toHaveLength(count);
  });

  it("a file that changes while being read: 'changed during read', never a wrong answer", () => {
    const path = join(dir, "growing.pth");
    cpSync(join(SAMPLES_DIR, "torch2", "training_checkpoint.pth"), path);
    const source = FileSource.open(path);
    try {
      readCheckpoint(source, path);
      appendFileSync(path, "more bytes from a trainer still writing");
      expect(() => source.assertUnchanged()).toThrow(expect.objectContaining({ code: "file-changed" }));
    } finally {
      source.close();
    }
    const shrinking = FileSource.open(path);
    try {
      truncateSync(path, 100);
      expect(() => shrinking.read(0, 2000)).toThrow(expect.objectContaining({ code: "file-changed" }));
    } finally {
      shrinking.close();
    }
  });
});
