import type { TensorCheckpoint } from "../checkpoint.js";
import { ReaderError } from "../errors.js";
import type { TorchTensor } from "../pickle/value.js";
import { contiguousByteRange, elementCount, tensorBytes } from "../tensorData.js";
import { elementSize } from "../torch/dtypes.js";

/** Fills `into` with a tensor's row-major bytes from byte `start` (a multiple of the element size). */
export type RowMajorReader = (start: number, into: Uint8Array) => void;

/**
 * Random access to one saved tensor's row-major bytes, as `tensor.contiguous()` has them, for a piece of a
 * larger tensor: a contiguous tensor reads straight from its stored record; a strided one (DCP saves a view
 * whose storage is exactly its bytes as it is: a transposed or channels-last chunk) reads, per call, only the
 * storage span the requested elements lie in. A deflated record or a big-endian file is streamed once into
 * memory (bounded by this tensor, not the logical one it is a piece of).
 */
export function rowMajorReader(checkpoint: TensorCheckpoint, tensor: TorchTensor): RowMajorReader {
  const size = elementSize(tensor.dtype);
  const total = elementCount(tensor.shape) * size;
  const outside = (start: number, length: number) =>
    new ReaderError("storage-missing", `bytes ${start}..${start + length} of a ${total}-byte tensor`);
  const direct = contiguousByteRange(checkpoint, tensor);
  if (direct) {
    return (start, into) => {
      if (start + into.length > total) throw outside(start, into.length);
      checkpoint.source.readInto(into, direct.offset + start);
    };
  }
  const located = tensor.storage ? checkpoint.locate(tensor.storage) : undefined;
  if (located?.kind === "range" && checkpoint.byteOrder === "little" && tensor.layout === "strided") {
    return stridedReader(checkpoint, tensor, located.offset, located.length, size);
  }
  let whole: Uint8Array | undefined;
  return (start, into) => {
    if (start + into.length > total) throw outside(start, into.length);
    if (!whole) {
      whole = new Uint8Array(total);
      let at = 0;
      for (const chunk of tensorBytes(checkpoint, tensor)) {
        whole.set(chunk, at);
        at += chunk.length;
      }
    }
    into.set(whole.subarray(start, start + into.length));
  };
}

function stridedReader(
  checkpoint: TensorCheckpoint,
  tensor: TorchTensor,
  storageOffset: number,
  storageLength: number,
  size: number,
): RowMajorReader {
  const { shape, stride } = tensor;
  const dims = shape.length;
  /** Storage element of row-major element `n`, visiting `count` of them from `first`. */
  const visit = (first: number, count: number, each: (position: number, k: number) => void) => {
    const index = new Array<number>(dims).fill(0);
    let rest = first;
    let position = tensor.offset;
    for (let d = dims - 1; d >= 0; d--) {
      const extent = shape[d] as number;
      index[d] = rest % extent;
      rest = Math.floor(rest / extent);
      position += (index[d] as number) * (stride[d] as number);
    }
    for (let k = 0; k < count; k++) {
      each(position, k);
      for (let d = dims - 1; d >= 0; d--) {
        const i = (index[d] as number) + 1;
        if (i < (shape[d] as number)) {
          index[d] = i;
          position += stride[d] as number;
          break;
        }
        position -= (i - 1) * (stride[d] as number);
        index[d] = 0;
      }
    }
  };
  return (start, into) => {
    const first = start / size;
    const count = into.length / size;
    if (count === 0) return;
    let low = Number.POSITIVE_INFINITY;
    let high = Number.NEGATIVE_INFINITY;
    visit(first, count, (position) => {
      if (position < low) low = position;
      if (position > high) high = position;
    });
    if (low < 0 || (high + 1) * size > storageLength) {
      throw new ReaderError(
        "storage-missing",
        `a strided tensor reaches outside its ${storageLength}-byte storage`,
      );
    }
    const span = checkpoint.source.read(storageOffset + low * size, (high - low + 1) * size);
    visit(first, count, (position, k) => {
      const from = (position - low) * size;
      into.set(span.subarray(from, from + size), k * size);
    });
  };
}
