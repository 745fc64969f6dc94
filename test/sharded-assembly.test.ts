import { createHash } from "node:crypto";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { NodeTree } from "../src/reader/nodeTree.js";
import {
  assembleRowMajor,
  type Box,
  checkTiling,
  closeSharded,
  openSharded,
  type Piece,
  type ShardedCheckpoint,
  shardedTensors,
} from "../src/reader/sharded/index.js";
import { elementSize } from "../src/reader/torch/dtypes.js";
import { findShardedTruths, hashLogical } from "./helpers/sharded.js";

/**
 * Assembly streams a logical tensor in row-major order with memory bounded by its buffer, not by the tensor or
 * a piece: the same sha256 whatever the buffer size (down to one element), no buffer larger than asked, and
 * any tiling of any shape assembled as a naive element-by-element copy would.
 */

const opened: ShardedCheckpoint[] = [];
afterAll(() => {
  for (const checkpoint of opened) closeSharded(checkpoint);
});

interface Truth {
  damage?: unknown;
  tensors: Array<{ name: string; sha256: string | null; shape: number[]; dtype: string }>;
  producer: string;
}

describe("memory-bounded assembly of the samples", () => {
  const samples = findShardedTruths<Truth>().filter(
    (s) => !s.truth.damage && !s.name.includes("transform_descriptors"),
  );
  for (const { dir, name, truth } of samples) {
    it(`${name}: the same sha256 with a one-element buffer and with a 7-byte one`, () => {
      const checkpoint = openSharded(new NodeTree(dir));
      opened.push(checkpoint);
      for (const tensor of shardedTensors(checkpoint)) {
        const expected = truth.tensors.find((t) => t.name === tensor.name)?.sha256;
        if (!expected) continue;
        const size = elementSize(tensor.dtype);
        for (const budget of [size, 7]) {
          const result = hashLogical(checkpoint, tensor.name, budget);
          expect(result.sha256, `${name} ${tensor.name} @${budget}`).toBe(expected);
          expect(result.largest, `${name} ${tensor.name} @${budget}`).toBeLessThanOrEqual(
            Math.max(size, budget),
          );
        }
      }
    });
  }
});

/** A tiling of `shape`: each dimension cut at random points, then some boxes split again along another dimension. */
function tilingOf(shape: number[], cuts: number[][], resplit: number[]): Box[] {
  let boxes: Box[] = [{ offsets: shape.map(() => 0), sizes: [...shape] }];
  shape.forEach((extent, d) => {
    const points = [...new Set((cuts[d] ?? []).map((c) => c % (extent + 1)))].sort((a, b) => a - b);
    const edges = [0, ...points.filter((p) => p > 0 && p < extent), extent];
    boxes = boxes.flatMap((box) =>
      edges.slice(1).map((end, i) => {
        const offsets = [...box.offsets];
        const sizes = [...box.sizes];
        offsets[d] = edges[i] as number;
        sizes[d] = end - (edges[i] as number);
        return { offsets, sizes };
      }),
    );
  });
  // Irregular tilings too: split some boxes along their last dimension (not a grid any more).
  return boxes.flatMap((box, i) => {
    const d = shape.length - 1;
    const at = resplit[i % Math.max(1, resplit.length)] ?? 0;
    const extent = box.sizes[d] ?? 0;
    if (d < 0 || extent < 2 || at % 2 === 0) return [box];
    const cut = 1 + (at % (extent - 1));
    const first = { offsets: [...box.offsets], sizes: [...box.sizes] };
    const second = { offsets: [...box.offsets], sizes: [...box.sizes] };
    first.sizes[d] = cut;
    second.offsets[d] = (box.offsets[d] as number) + cut;
    second.sizes[d] = extent - cut;
    return [first, second];
  });
}

function rowMajorIndex(shape: readonly number[], index: readonly number[]): number {
  let at = 0;
  shape.forEach((extent, d) => {
    at = at * extent + (index[d] as number);
  });
  return at;
}

/** The global tensor's elements are 0..n-1 (as 4-byte ints); each piece holds its box of them, row-major. */
function piecesOf(shape: number[], boxes: Box[]): Piece[] {
  return boxes.map((box) => {
    const count = box.sizes.reduce((a, b) => a * b, 1);
    const bytes = new Uint8Array(count * 4);
    const view = new DataView(bytes.buffer);
    const index = box.sizes.map(() => 0);
    for (let k = 0; k < count; k++) {
      view.setInt32(
        k * 4,
        rowMajorIndex(
          shape,
          index.map((i, d) => i + (box.offsets[d] as number)),
        ),
        true,
      );
      for (let d = index.length - 1; d >= 0; d--) {
        index[d] = (index[d] as number) + 1;
        if ((index[d] as number) < (box.sizes[d] as number)) break;
        index[d] = 0;
      }
    }
    return {
      ...box,
      read: (start: number, into: Uint8Array) => into.set(bytes.subarray(start, start + into.length)),
    };
  });
}

function expectedBytes(shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(count * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < count; i++) view.setInt32(i * 4, i, true);
  return out;
}

function collect(chunks: Iterable<Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const chunk of chunks) parts.push(Uint8Array.from(chunk));
  return new Uint8Array(Buffer.concat(parts));
}

describe("assembleRowMajor", () => {
  it("assembles any tiling of any shape, with any buffer size, as a naive copy would", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 0, maxLength: 4 }),
        fc.array(fc.array(fc.nat(8), { maxLength: 3 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.nat(9), { maxLength: 6 }),
        fc.integer({ min: 1, max: 64 }),
        (shape, cuts, resplit, budget) => {
          const boxes = tilingOf(shape, cuts, resplit);
          expect(checkTiling(shape, boxes)).toEqual([]);
          const pieces = piecesOf(shape, boxes);
          // Shuffled piece order: DCP lists chunks in whatever order the ranks wrote them.
          pieces.reverse();
          const chunks = [...assembleRowMajor(shape, 4, pieces, { chunkBytes: budget })].map((c) => c.length);
          expect(chunks.every((n) => n <= Math.max(4, budget - (budget % 4)))).toBe(true);
          expect(collect(assembleRowMajor(shape, 4, pieces, { chunkBytes: budget }))).toEqual(
            expectedBytes(shape),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("refuses pieces that leave elements uncovered (torch would leave them uninitialised)", () => {
    const shape = [4, 3];
    const pieces = piecesOf(shape, [
      { offsets: [0, 0], sizes: [2, 3] },
      { offsets: [3, 0], sizes: [1, 3] },
    ]);
    expect(() => collect(assembleRowMajor(shape, 4, pieces))).toThrow(
      expect.objectContaining({ code: "storage-missing" }),
    );
  });

  it("streams a large row-sharded tensor in one run per piece, in bounded buffers", () => {
    const shape = [1000, 64];
    const boxes = [0, 1, 2, 3].map((r) => ({ offsets: [r * 250, 0], sizes: [250, 64] }));
    let reads = 0;
    const pieces = piecesOf(shape, boxes).map((p) => ({
      ...p,
      read: (s: number, i: Uint8Array) => {
        reads++;
        p.read(s, i);
      },
    }));
    const hash = createHash("sha256");
    let largest = 0;
    for (const chunk of assembleRowMajor(shape, 4, pieces, { chunkBytes: 4096 })) {
      largest = Math.max(largest, chunk.length);
      hash.update(chunk);
    }
    expect(largest).toBe(4096);
    expect(hash.digest("hex")).toBe(createHash("sha256").update(expectedBytes(shape)).digest("hex"));
    // 256,000 bytes in 4 KiB buffers: one read per buffer (a run never splits more than the buffer does).
    expect(reads).toBeLessThanOrEqual(Math.ceil(256_000 / 4096) + 4);
  });
});

describe("checkTiling", () => {
  it("accepts exact tilings, empty boxes at a dimension's end, and 0-d tensors", () => {
    expect(
      checkTiling(
        [4],
        [
          { offsets: [0], sizes: [4] },
          { offsets: [4], sizes: [0] },
        ],
      ),
    ).toEqual([]);
    expect(checkTiling([], [{ offsets: [], sizes: [] }])).toEqual([]);
    expect(checkTiling([0, 3], [{ offsets: [0, 0], sizes: [0, 3] }])).toEqual([]);
  });

  it("names gaps, overlaps and boxes out of bounds", () => {
    expect(checkTiling([4, 2], [{ offsets: [0, 0], sizes: [3, 2] }])).toEqual([
      { kind: "gap", missingElements: 2 },
    ]);
    expect(
      checkTiling(
        [4],
        [
          { offsets: [0], sizes: [3] },
          { offsets: [2], sizes: [2] },
        ],
      ),
    ).toEqual([{ kind: "overlap", boxes: [0, 1] }]);
    expect(checkTiling([4], [{ offsets: [2], sizes: [3] }])).toEqual([
      { kind: "out-of-bounds", box: 0 },
      { kind: "gap", missingElements: 4 },
    ]);
    expect(checkTiling([4, 4], [{ offsets: [0], sizes: [4] }])).toContainEqual({
      kind: "out-of-bounds",
      box: 0,
    });
    expect(checkTiling([], [])).toEqual([{ kind: "gap", missingElements: 1 }]);
  });
});
