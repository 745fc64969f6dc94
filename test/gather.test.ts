import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { gatheredChunks } from "../src/repair/gather.js";

/**
 * Gathering a strided view streams its elements in row-major order: the same bytes as visiting every index
 * and reading each element where `offset + sum(index * stride)` puts it, whatever the chunk size.
 */
function naive(
  storage: Uint8Array,
  offset: number,
  shape: number[],
  stride: number[],
  size: number,
): number[] {
  const out: number[] = [];
  const visit = (d: number, at: number) => {
    if (d === shape.length) {
      for (let k = 0; k < size; k++) out.push(storage[at * size + k] as number);
      return;
    }
    for (let i = 0; i < (shape[d] as number); i++) visit(d + 1, at + i * (stride[d] as number));
  };
  visit(0, offset);
  return out;
}

describe("gatheredChunks", () => {
  it("yields a view's elements in row-major order, for any strides and chunk size", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 9 })), { maxLength: 4 }),
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom(1, 2, 4, 8),
        fc.integer({ min: 1, max: 40 }),
        (dims, offset, size, chunkElements) => {
          const shape = dims.map(([n]) => n);
          const stride = dims.map(([, s]) => s);
          const reach =
            offset + shape.reduce((sum, n, d) => sum + Math.max(0, n - 1) * (stride[d] as number), 0);
          const storage = Uint8Array.from({ length: (reach + 1) * size }, (_, i) => (i * 7 + 3) & 0xff);
          const read = (at: number, length: number) => storage.subarray(at, at + length);
          // One reused buffer: each chunk is copied before the next is made.
          const chunks: number[][] = [];
          const view = { offset, shape, stride, elementSize: size };
          for (const chunk of gatheredChunks(read, view, chunkElements * size)) chunks.push([...chunk]);
          expect(chunks.flat()).toEqual(naive(storage, offset, shape, stride, size));
          for (const chunk of chunks) expect(chunk.length).toBeLessThanOrEqual(chunkElements * size);
        },
      ),
      { numRuns: 500 },
    );
  });
});
