import type { TensorCheckpoint } from "./checkpoint.js";
import { ReaderError } from "./errors.js";
import type { TorchTensor } from "./pickle/value.js";
import { elementSize } from "./torch/dtypes.js";

/** Output chunk size: large enough for throughput, small enough that memory never depends on the file. */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** A strided tensor whose storage span fits in this is gathered from one read; larger ones row by row. */
const GATHER_SPAN_BYTES = 64 * 1024 * 1024;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const size = shape[i] as number;
    if (size !== 1 && stride[i] !== expected) return false;
    expected *= size;
  }
  return true;
}

/**
 * Reads `length` bytes of a storage starting `start` bytes into it; with `into`, fills that buffer instead of
 * allocating (a fresh 4 MiB buffer per chunk cost as much as hashing it).
 */
type StorageReader = (start: number, length: number, into?: Uint8Array) => Uint8Array;

function storageReader(checkpoint: TensorCheckpoint, tensor: TorchTensor): StorageReader {
  const storage = tensor.storage;
  if (!storage) throw new ReaderError("storage-missing", `tensor has no storage (${tensor.rebuild})`);
  const bytes = checkpoint.locate(storage);
  if (!bytes) {
    throw new ReaderError("storage-missing", `storage record ${storage.key} is absent from the file`);
  }
  if (bytes.kind === "range") {
    return (start, length, into) => {
      if (start + length > bytes.length) {
        throw new ReaderError(
          "storage-missing",
          `tensor reads bytes ${start}..${start + length} of storage ${storage.key}, which has ${bytes.length}`,
        );
      }
      return into
        ? checkpoint.source.readInto(into.subarray(0, length), bytes.offset + start)
        : checkpoint.source.read(bytes.offset + start, length);
    };
  }
  // A deflated record (a re-zipped checkpoint) cannot be read at an offset: inflate it once.
  if (checkpoint.format !== "torch-zip" && checkpoint.format !== "torchscript") {
    throw new ReaderError("storage-missing", `storage ${storage.key} has no byte range`);
  }
  const whole = checkpoint.archive.readEntry(bytes.entry);
  return (start, length) => whole.subarray(start, start + length);
}

/** Byte-swaps each element in place: big-endian storages become little-endian (complex: each half). */
function swapToLittle(chunk: Uint8Array, dtype: string): void {
  const width = dtype.startsWith("complex") ? elementSize(dtype) / 2 : elementSize(dtype);
  if (width <= 1) return;
  for (let i = 0; i + width <= chunk.length; i += width) chunk.subarray(i, i + width).reverse();
}

/**
 * Where a contiguous tensor's row-major bytes lie in the file, when they are one plain range (a stored record
 * of a little-endian file): such a tensor can be hashed by any reader of the file, on any thread.
 */
export function contiguousByteRange(
  checkpoint: TensorCheckpoint,
  tensor: TorchTensor,
): { offset: number; length: number } | undefined {
  if (tensor.layout !== "strided" || !tensor.storage || checkpoint.byteOrder === "big") return undefined;
  if (!isContiguous(tensor.shape, tensor.stride)) return undefined;
  const located = checkpoint.locate(tensor.storage);
  if (located?.kind !== "range") return undefined;
  const size = elementSize(tensor.dtype);
  const start = tensor.offset * size;
  const length = elementCount(tensor.shape) * size;
  if (start + length > located.length) return undefined; // tensorBytes reports it
  return { offset: located.offset + start, length };
}

/**
 * The tensor's elements in row-major order, each as stored (little-endian): exactly the bytes of
 * `tensor.contiguous()` in torch. Streamed in chunks whose length is a multiple of the element size; a chunk's
 * memory is reused for the next one, so consume it (hash it, decode it) before asking for more.
 */
export function* tensorBytes(checkpoint: TensorCheckpoint, tensor: TorchTensor): Generator<Uint8Array> {
  const size = elementSize(tensor.dtype);
  const numel = elementCount(tensor.shape);
  if (numel === 0 || tensor.layout !== "strided") return;
  const read = storageReader(checkpoint, tensor);
  const swap = checkpoint.byteOrder === "big";
  const emit = (chunk: Uint8Array): Uint8Array => {
    if (!swap) return chunk;
    const copy = Uint8Array.from(chunk);
    swapToLittle(copy, tensor.dtype);
    return copy;
  };

  if (isContiguous(tensor.shape, tensor.stride)) {
    const start = tensor.offset * size;
    const total = numel * size;
    const step = Math.max(size, Math.floor(CHUNK_BYTES / size) * size);
    // One buffer for every chunk: each is consumed (hashed, summed) before the next is read.
    const buffer = new Uint8Array(Math.min(step, total));
    for (let done = 0; done < total; done += step) {
      yield emit(read(start + done, Math.min(step, total - done), buffer));
    }
    return;
  }

  // Strided: element i of the row-major order sits at offset + sum(index[d] * stride[d]).
  const dims = tensor.shape.length;
  let span = 1;
  for (let d = 0; d < dims; d++) span += ((tensor.shape[d] as number) - 1) * (tensor.stride[d] as number);
  const spanBytes = span * size;
  const base = spanBytes <= GATHER_SPAN_BYTES ? read(tensor.offset * size, spanBytes) : undefined;
  const elementAt = (offsetElements: number): Uint8Array =>
    base
      ? base.subarray(offsetElements * size, offsetElements * size + size)
      : read((tensor.offset + offsetElements) * size, size);

  const index = new Array<number>(dims).fill(0);
  const out = new Uint8Array(Math.min(CHUNK_BYTES - (CHUNK_BYTES % size), numel * size));
  let filled = 0;
  let position = 0; // element offset relative to tensor.offset
  for (let n = 0; n < numel; n++) {
    out.set(elementAt(position), filled);
    filled += size;
    if (filled === out.length) {
      yield emit(out.slice());
      filled = 0;
    }
    // Advance the multi-index like an odometer, keeping `position` in step.
    for (let d = dims - 1; d >= 0; d--) {
      const i = (index[d] as number) + 1;
      if (i < (tensor.shape[d] as number)) {
        index[d] = i;
        position += tensor.stride[d] as number;
        break;
      }
      position -= (i - 1) * (tensor.stride[d] as number);
      index[d] = 0;
    }
  }
  if (filled > 0) yield emit(out.slice(0, filled));
}

const VALUE_READERS: Readonly<Record<string, (view: DataView, at: number) => number>> = {
  float64: (v, at) => v.getFloat64(at, true),
  float32: (v, at) => v.getFloat32(at, true),
  int64: (v, at) => Number(v.getBigInt64(at, true)),
  int32: (v, at) => v.getInt32(at, true),
  int16: (v, at) => v.getInt16(at, true),
  int8: (v, at) => v.getInt8(at),
  uint8: (v, at) => v.getUint8(at),
};

/** The values of a small numeric tensor (quantization scales and zero points), or `undefined` if not numeric. */
export function smallTensorValues(
  checkpoint: TensorCheckpoint,
  tensor: TorchTensor,
  max = 4096,
): number[] | undefined {
  const decode = VALUE_READERS[tensor.dtype];
  if (!decode || elementCount(tensor.shape) > max) return undefined;
  const size = elementSize(tensor.dtype);
  const values: number[] = [];
  for (const chunk of tensorBytes(checkpoint, tensor)) {
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let at = 0; at < chunk.length; at += size) values.push(decode(view, at));
  }
  return values;
}
