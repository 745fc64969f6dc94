import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { digestRangesHere } from "../src/reader/rangeDigest.js";
import { BufferSource } from "../src/reader/source.js";
import { crc32 } from "../src/reader/zip/crc32.js";
import { openZip } from "../src/reader/zip.js";
import { ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `--hash` and `--verify` split their reading between this thread and a worker (`digestRanges`). From sources
 * (vitest) there is no built worker, so the two-thread path is run through the built CLI, with the size
 * threshold lowered to one byte so that small real samples take it.
 */
const twoThreads = { ...process.env, CKPT_PARALLEL_MIN_BYTES: "1" };
const scratch = mkdtempSync(join(tmpdir(), "ckpt-digest-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("digests of byte ranges", () => {
  it("on one thread: CRC-32 and sha256 of each range, across the read-buffer boundary", () => {
    const bytes = new Uint8Array(700_000).map((_, i) => (i * 7919) % 251);
    const source = new BufferSource(bytes);
    const ranges = [
      { offset: 0, length: 0 },
      { offset: 5, length: 300_000 },
      { offset: 100, length: 699_900 },
    ];
    expect(digestRangesHere(source, ranges, "crc32")).toEqual(
      ranges.map((r) => crc32(bytes.subarray(r.offset, r.offset + r.length))),
    );
    const [, second] = digestRangesHere(source, ranges, "sha256");
    expect(second).toMatch(/^[0-9a-f]{64}$/);
    expect(second).not.toBe(digestRangesHere(source, [{ offset: 6, length: 300_000 }], "sha256")[0]);
  });

  it("--hash on two threads gives the sha256 real torch computed, for every tensor", () => {
    const file = join(SAMPLES_DIR, "torch2", "state_dict.pt");
    const truth = JSON.parse(readFileSync(`${file}.truth.json`, "utf8")) as {
      tensors: Array<{ path: Array<string | number>; sha256: string }>;
    };
    const result = ckptBinary(["inspect", file, "--hash", "--json"], twoThreads);
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout) as { tensors: Array<{ path: unknown; sha256: string }> };
    expect(truth.tensors.length).toBeGreaterThan(2);
    for (const expected of truth.tensors) {
      const actual = report.tensors.find((t) => JSON.stringify(t.path) === JSON.stringify(expected.path));
      expect(actual?.sha256, JSON.stringify(expected.path)).toBe(expected.sha256);
    }
  });

  it("--verify on two threads finds a flipped byte in the half the worker reads", () => {
    const file = join(scratch, "flipped.pt");
    copyFileSync(join(SAMPLES_DIR, "torch2", "state_dict.pt"), file);
    const before = ckptBinary(["audit", file, "--verify-all", "--json"], twoThreads);
    expect((JSON.parse(before.stdout) as { files: Array<{ status: string }> }).files[0]?.status).toBe("ok");
    // The last storage record lies in the later half of the bytes, which the worker digests.
    const bytes = readFileSync(file);
    const archive = openZip(new BufferSource(bytes, file));
    const records = archive.entries.filter((e) => /\/data\/\d+$/.test(e.name));
    const last = records.reduce((a, b) => (b.localHeaderOffset > a.localHeaderOffset ? b : a));
    expect(last.uncompressedSize).toBeGreaterThan(0);
    const at = archive.dataOffset(last);
    bytes[at] = (bytes[at] as number) ^ 0xff;
    writeFileSync(file, bytes);
    const status = (env?: NodeJS.ProcessEnv) =>
      (
        JSON.parse(ckptBinary(["audit", file, "--verify-all", "--json"], env).stdout) as {
          files: Array<{ status: string }>;
        }
      ).files[0]?.status;
    expect(status(twoThreads)).toBe("corrupt");
    expect(status()).toBe("corrupt");
  });
});
