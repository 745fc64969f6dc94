import type { Gather } from "./compact.js";

/** Output chunk size: each chunk is written before the next is filled. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * A strided view's elements in row-major order, as `.clone()` lays them out, read from its storage's bytes
 * (`read(offset, length)`, offsets in the storage) and given in chunks of at most `chunkBytes` through one
 * reused buffer. A last dimension of stride 1 is read as one run per row; otherwise element by element (the
 * reader's block cache keeps that from being a read per element).
 */
export function* gatheredChunks(
  read: (offset: number, length: number) => Uint8Array,
  { offset, shape, stride, elementSize }: Gather,
  chunkBytes = CHUNK_BYTES,
): Generator<Uint8Array> {
  const total = shape.reduce((n, d) => n * d, 1);
  if (total === 0) return;
  const rank = shape.length;
  const inner = rank === 0 ? 1 : (shape[rank - 1] as number);
  const innerStride = rank === 0 ? 1 : (stride[rank - 1] as number);
  const capacity = Math.max(
    elementSize,
    Math.min(total * elementSize, chunkBytes - (chunkBytes % elementSize)),
  );
  const buffer = new Uint8Array(capacity);
  let filled = 0;
  // Copies `length` bytes of the storage from `from` into the buffer, handing out each full buffer.
  function* copy(from: number, length: number): Generator<Uint8Array> {
    for (let done = 0; done < length; ) {
      const size = Math.min(length - done, capacity - filled);
      buffer.set(read(from + done, size), filled);
      filled += size;
      done += size;
      if (filled === capacity) {
        yield buffer;
        filled = 0;
      }
    }
  }
  const index = new Array<number>(Math.max(0, rank - 1)).fill(0);
  for (let row = 0; row < total / inner; row++) {
    let base = offset;
    for (let d = 0; d < index.length; d++) base += (index[d] as number) * (stride[d] as number);
    if (innerStride === 1) yield* copy(base * elementSize, inner * elementSize);
    else for (let j = 0; j < inner; j++) yield* copy((base + j * innerStride) * elementSize, elementSize);
    // The next row: the last outer index moves first.
    for (let d = index.length - 1; d >= 0; d--) {
      index[d] = (index[d] as number) + 1;
      if ((index[d] as number) < (shape[d] as number)) break;
      index[d] = 0;
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
