import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import { FileSource } from "../src/reader/fileSource.js";
import { readCheckpoint } from "../src/reader/open.js";
import { CountingSource } from "../src/reader/source.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { stateDictPickle } from "./helpers/pickleWriter.js";

/**
 * Reading a checkpoint's structure must touch the end records, the central directory and data.pkl, never
 * tensor bytes. The proof: state dicts whose tensors span 4 KiB, 1 GiB and 6 GiB (sparse files, so they cost
 * no disk) must cost the same number of bytes read, a few KiB, whatever their size.
 */
const dir = mkdtempSync(join(tmpdir(), "ckpt-lazy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeSparseCheckpoint(name: string, bigElements: number): string {
  const path = join(dir, `${name}.pt`);
  const fd = openSync(path, "w");
  try {
    const writer = new TorchZipWriter(fd, name);
    const tensors = [
      {
        name: "small.weight",
        storageClass: "FloatStorage",
        key: "0",
        numel: 16,
        shape: [4, 4],
        stride: [4, 1],
      },
      {
        name: "big.weight",
        storageClass: "FloatStorage",
        key: "1",
        numel: bigElements,
        shape: [bigElements / 1024, 1024],
        stride: [1024, 1],
      },
    ];
    writer.addRecord("data.pkl", stateDictPickle(tensors));
    writer.addRecord("data/0", new Uint8Array(64));
    // The big record is a hole: declared size, no bytes written, CRC "not computed" (0) as torch 2.6+ allows.
    writer.addRecordStream("data/1", bigElements * 4, [bigElements * 4], 0);
    writer.addRecord("version", new TextEncoder().encode("3\n"));
    writer.finish();
  } finally {
    closeSync(fd);
  }
  return path;
}

function structureReadCost(path: string) {
  const source = new CountingSource(FileSource.open(path));
  try {
    const report = inspectCheckpoint(readCheckpoint(source, path), path);
    return { bytesRead: source.bytesRead, reads: source.readCount, report };
  } finally {
    source.close();
  }
}

/** The legacy stream: magic, version, sys_info, the state dict, the key list, then counts and (sparse) bytes. */
function writeSparseLegacy(name: string, bigElements: number): string {
  const path = join(dir, `${name}.pt`);
  const fd = openSync(path, "w");
  try {
    const tensors = [
      {
        name: "small.weight",
        storageClass: "FloatStorage",
        key: "1",
        numel: 16,
        shape: [16],
        stride: [1],
        legacy: true,
      },
      {
        name: "big.weight",
        storageClass: "FloatStorage",
        key: "2",
        numel: bigElements,
        shape: [bigElements],
        stride: [1],
        legacy: true,
      },
    ];
    const keyList = Uint8Array.from([
      0x80, 0x02, 0x5d, 0x28, 0x58, 1, 0, 0, 0, 0x31, 0x58, 1, 0, 0, 0, 0x32, 0x65, 0x2e,
    ]);
    const header = Buffer.concat([
      Uint8Array.from([
        0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
      ]),
      Uint8Array.from([0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]),
      Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]),
      stateDictPickle(tensors),
      keyList,
    ]);
    let position = writeSync(fd, header, 0, header.length, 0);
    for (const numel of [16, bigElements]) {
      const count = Buffer.alloc(8);
      count.writeBigInt64LE(BigInt(numel));
      writeSync(fd, count, 0, 8, position);
      position += 8 + numel * 4; // the bytes themselves stay a hole
    }
    ftruncateSync(fd, position);
  } finally {
    closeSync(fd);
  }
  return path;
}

describe("structure reads are independent of tensor bytes", () => {
  it("legacy format: only the pickles and each storage's 8-byte count are read", () => {
    const small = structureReadCost(writeSparseLegacy("legacy-1g", 2 ** 28)); // 1 GiB of storage
    const big = structureReadCost(writeSparseLegacy("legacy-3g", 3 * 2 ** 28)); // 3 GiB
    expect(big.report.format).toBe("torch-legacy");
    expect(big.report.tensors.map((t) => t.shape)).toEqual([[16], [3 * 2 ** 28]]);
    expect(big.bytesRead).toBe(small.bytesRead);
    expect(big.bytesRead).toBeLessThan(64 * 1024);
  });

  const sizes = { small: 1024, oneGiB: 2 ** 28, sixGiB: 3 * 2 ** 29 };
  const files = Object.fromEntries(
    Object.entries(sizes).map(([name, n]) => [name, writeSparseCheckpoint(name, n)]),
  );

  it("reads only kilobytes of a 6 GiB checkpoint, and the same amount whatever the tensor size", () => {
    const costs = Object.fromEntries(
      Object.entries(files).map(([name, path]) => [name, structureReadCost(path)]),
    );
    expect(statSync(files.sixGiB as string).size).toBeGreaterThan(6 * 2 ** 30);

    const big = costs.sixGiB as ReturnType<typeof structureReadCost>;
    expect(big.report.tensors.map((t) => t.shape)).toEqual([
      [4, 4],
      [sizes.sixGiB / 1024, 1024],
    ]);
    expect(big.report.summary.storageBytes).toBe(64 + sizes.sixGiB * 4);
    // The only difference between the 1 GiB and 6 GiB files is a zip64 extra field (28 bytes per header).
    expect(Math.abs(big.bytesRead - (costs.oneGiB?.bytesRead ?? 0))).toBeLessThanOrEqual(64);
    expect(big.reads).toBe(costs.oneGiB?.reads);
    expect(big.bytesRead).toBeLessThan(16 * 1024);
  });
});
