import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { worstVerdict } from "../src/inspect/security/mergeScans.js";
import { scanParsedPickle, scanSource } from "../src/inspect/security/scan.js";
import { ScanMemo } from "../src/inspect/security/scanner.js";
import { scanSharded } from "../src/inspect/sharded/scan.js";
import { BlockCacheSource } from "../src/reader/blockCacheSource.js";
import { FileSource } from "../src/reader/fileSource.js";
import { NodeTree } from "../src/reader/nodeTree.js";
import { hasItemLayout, itemLayoutOf } from "../src/reader/sharded/dcp/itemLayout.js";
import { type DcpCheckpoint, openSharded, RangeSource } from "../src/reader/sharded/index.js";
import { BufferSource } from "../src/reader/source.js";
import { openZip } from "../src/reader/zip.js";
import { SHARDED_DIR } from "./helpers/sharded.js";

/**
 * The shortcuts that make scanning a DCP checkpoint of tens of thousands of items affordable, each checked
 * against the long way on the checkpoints torch wrote: cached blocks read what the file holds, a memoized
 * scan records what a fresh one does, and `.metadata`'s adopted parse finds what scanning the file finds.
 */

const DCP_SAMPLES = ["dcp", "damaged"].flatMap((group) =>
  readdirSync(join(SHARDED_DIR, group), { withFileTypes: true })
    .filter((e) => e.isDirectory() && readdirSync(join(SHARDED_DIR, group, e.name)).includes(".metadata"))
    .map((e) => join(SHARDED_DIR, group, e.name)),
);

function openDcpSample(dir: string): DcpCheckpoint {
  const checkpoint = openSharded(new NodeTree("/"), dir);
  if (checkpoint.kind !== "dcp") throw new Error(`${dir} is not DCP`);
  return checkpoint;
}

/** Each item of a data file as its own source: what the scan of the file reads. */
function itemRanges(checkpoint: DcpCheckpoint, file: string): Array<{ offset: number; length: number }> {
  const ranges = new Map<number, number>();
  for (const tensor of checkpoint.tensors)
    for (const chunk of tensor.chunks)
      if (chunk.storage?.relativePath === file) ranges.set(chunk.storage.offset, chunk.storage.length);
  for (const item of checkpoint.bytesItems)
    if (item.storage?.relativePath === file) ranges.set(item.storage.offset, item.storage.length);
  return [...ranges].map(([offset, length]) => ({ offset, length }));
}

/** What a scan found, without the inert loaded values (compared by what they name, not by identity). */
function essence(scan: ReturnType<typeof scanSource>) {
  return {
    format: scan.format,
    verdict: scan.verdict,
    globals: scan.globals,
    notes: scan.notes,
    pickles: scan.pickles.map((p) => ({ record: p.record, protocol: p.protocol, opcodes: [...p.opcodes] })),
  };
}

describe("BlockCacheSource", () => {
  const path = join(SHARDED_DIR, "dcp", "fsdp2_2ranks", "__0_0.distcp");

  it("reads exactly what the file holds, within a block, across blocks and past the block size", () => {
    const file = FileSource.open(path);
    const cached = new BlockCacheSource(FileSource.open(path), { blockSize: 512, maxBlocks: 3 });
    let compared = 0;
    for (let offset = 0; offset < file.size; offset += 97) {
      for (const length of [0, 1, 7, 511, 512, 513, 2000]) {
        if (offset + length > file.size) continue;
        expect(new Uint8Array(cached.read(offset, length))).toEqual(
          new Uint8Array(file.read(offset, length)),
        );
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(50);
    file.close();
  });

  it("refuses a read outside the file with the source's io-error", () => {
    const cached = new BlockCacheSource(FileSource.open(path));
    expect(() => cached.read(cached.size - 2, 4)).toThrow(expect.objectContaining({ code: "io-error" }));
  });
});

describe.each(DCP_SAMPLES)("%s", (dir) => {
  const checkpoint = openDcpSample(dir);

  it("a memoized scan of every item records what a fresh scan of it does", () => {
    const present = new Set(readdirSync(dir));
    let items = 0;
    for (const file of checkpoint.files.filter((f) => present.has(f.name))) {
      const source = FileSource.open(join(dir, file.name));
      const memo = new ScanMemo();
      for (const { offset, length } of itemRanges(checkpoint, file.name)) {
        if (offset + length > source.size) continue;
        const item = () => new RangeSource(source, offset, length);
        // Twice through the memo: the second is a replay, and must still equal a scan without one.
        scanSource(item(), { memo });
        expect(essence(scanSource(item(), { memo }))).toEqual(essence(scanSource(item())));
        items++;
      }
      source.close();
    }
    expect(items).toBeGreaterThan(0);
  });

  it("the scan of each data file (layouts recognised, scans memoized) finds what a fresh scan of every item finds", () => {
    const present = new Set(readdirSync(dir));
    const scans = scanSharded(checkpoint).filter((s) => s.role === "data");
    expect(scans.length).toBeGreaterThan(0);
    for (const file of scans) {
      expect(present.has(file.file)).toBe(true);
      const source = FileSource.open(join(dir, file.file));
      const deep = new Set(checkpoint.bytesItems.map((b) => b.storage?.offset));
      const fresh = itemRanges(checkpoint, file.file)
        .filter(({ offset, length }) => offset + length <= source.size)
        .map(({ offset, length }) =>
          scanSource(new RangeSource(source, offset, length), { deep: deep.has(offset) }),
        );
      const key = (g: { module: string; name: string; class: string; offset: number }) =>
        `${g.module}.${g.name}:${g.class}@${g.offset}`;
      const globals = (
        list: ReadonlyArray<{ module: string; name: string; class: string; offset: number }>,
      ) => list.map(key).sort();
      expect(globals(file.scan.globals)).toEqual(globals(fresh.flatMap((f) => f.globals)));
      expect(file.scan.notes.map((n) => n.code).sort()).toEqual(
        fresh.flatMap((f) => f.notes.map((n) => n.code)).sort(),
      );
      expect(file.scan.verdict).toBe(worstVerdict(fresh.map((f) => f.verdict)));
      source.close();
    }
  });

  it(".metadata's adopted parse finds what scanning the file finds", () => {
    const parsed = scanParsedPickle(checkpoint.metadata?.parse ?? expect.fail("no metadata"));
    const scanned = scanSource(FileSource.open(join(dir, ".metadata")));
    expect(parsed).toBeDefined();
    if (parsed) expect(essence(parsed)).toEqual(essence(scanned));
  });
});

describe("the memo keys on the bytes", () => {
  it("keeps the dangerous bytes item dangerous beside clean tensor items that share its memo", () => {
    const dir = join(SHARDED_DIR, "damaged", "dcp_malicious_bytes_item");
    const checkpoint = openDcpSample(dir);
    const source = FileSource.open(join(dir, "__0_0.distcp"));
    const memo = new ScanMemo();
    const verdicts = itemRanges(checkpoint, "__0_0.distcp").map(
      ({ offset, length }) =>
        scanSource(new RangeSource(source, offset, length), { memo, deep: true }).verdict,
    );
    expect(verdicts).toContain("dangerous");
    expect(verdicts.filter((v) => v !== "dangerous").length).toBeGreaterThan(0);
    source.close();
  });
});

describe("item layouts", () => {
  const dir = join(SHARDED_DIR, "dcp", "fsdp2_2ranks");
  const checkpoint = openDcpSample(dir);
  const bytes = new Uint8Array(readFileSync(join(dir, "__0_0.distcp")));
  const [first] = itemRanges(checkpoint, "__0_0.distcp").filter(
    ({ offset }) => !checkpoint.bytesItems.some((b) => b.storage?.offset === offset),
  );
  const item = first ?? expect.fail("no tensor item");
  const layout = itemLayoutOf(new RangeSource(new BufferSource(bytes), item.offset, item.length));

  /** The item with one byte changed at `at` (an offset in the item). */
  const changed = (at: number) => {
    const copy = bytes.slice();
    copy[item.offset + at] = ((copy[item.offset + at] as number) + 1) & 0xff;
    return new RangeSource(new BufferSource(copy), item.offset, item.length);
  };
  const zip = openZip(new RangeSource(new BufferSource(bytes), item.offset, item.length));
  const record = (name: string) => zip.entries.find((e) => e.name.endsWith(name)) ?? expect.fail(name);

  it("a change in the storage's bytes keeps the layout: the scan never reads them", () => {
    expect(layout).toBeDefined();
    if (layout) expect(hasItemLayout(layout, changed(zip.dataOffset(record("data/0"))))).toBe(true);
  });

  it("a change in data.pkl, a record name or the central directory is another layout", () => {
    if (!layout) return expect.fail("no layout");
    expect(hasItemLayout(layout, changed(zip.dataOffset(record("data.pkl")) + 3))).toBe(false);
    expect(hasItemLayout(layout, changed(record("data.pkl").localHeaderOffset + 31))).toBe(false);
    expect(hasItemLayout(layout, changed(zip.centralDirectoryOffset + 30))).toBe(false);
  });

  it("every byte of the item, changed: another layout exactly where a compared segment holds it", () => {
    if (!layout) return expect.fail("no layout");
    const compared = (at: number) =>
      layout.segments.some(({ start, bytes }) => at >= start && at < start + bytes.length);
    const wrong: number[] = [];
    for (let at = 0; at < item.length; at++)
      if (hasItemLayout(layout, changed(at)) === compared(at)) wrong.push(at);
    expect(wrong).toEqual([]);
    // Both answers occur: CRCs and the storage's bytes are skipped, everything else is compared.
    const skipped = Array.from({ length: item.length }, (_, at) => at).filter((at) => !compared(at));
    expect(skipped.length).toBeGreaterThan(0);
    expect(skipped.length).toBeLessThan(item.length / 2);
  });

  it("a layout taken through the file itself (Node Buffers from a pool) compares the same bytes", () => {
    const file = FileSource.open(join(dir, "__0_0.distcp"));
    try {
      const fromFile = itemLayoutOf(new RangeSource(file, item.offset, item.length));
      if (!fromFile) return expect.fail("no layout");
      expect(
        hasItemLayout(fromFile, new RangeSource(new BufferSource(bytes), item.offset, item.length)),
      ).toBe(true);
      expect(hasItemLayout(fromFile, changed(zip.dataOffset(record("data.pkl")) + 3))).toBe(false);
    } finally {
      file.close();
    }
  });

  it("the reader's layouts also compare byteorder, which the scan's skip", () => {
    const strict = itemLayoutOf(
      new RangeSource(new BufferSource(bytes), item.offset, item.length),
      /(?:^|\/)byteorder$/,
    );
    if (!strict || !layout) return expect.fail("no layout");
    const inByteorder = changed(zip.dataOffset(record("byteorder")));
    expect(hasItemLayout(layout, inByteorder)).toBe(true);
    expect(hasItemLayout(strict, inByteorder)).toBe(false);
  });
});
