import type { TensorCheckpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import type { TorchTensor } from "../../reader/pickle/value.js";
import { elementCount, tensorBytes } from "../../reader/tensorData.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import type { SelectedTensor } from "./select.js";

/**
 * One tensor to write, whatever it was read from: a name, dtype and shape, its row-major bytes on demand, and
 * where in which storage its elements lie, so tensors sharing bytes can be found (ties, views).
 */
export interface ConvertTensor {
  readonly name: string;
  /** torch dtype name. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Bytes written: elements times element size. */
  readonly byteLength: number;
  /** Row-major little-endian bytes; a chunk may be reused once the next is asked for. */
  readonly bytes: () => Iterable<Uint8Array>;
  readonly region: StorageRegion | undefined;
}

/** The bytes of a storage a tensor reads: two tensors alias when their regions are the same view. */
export interface StorageRegion {
  /** Identifies the storage within the source (its record key; a legacy view names its root's). */
  readonly storage: string;
  readonly storageBytes: number;
  /** Byte offset of the first element and one past the last element the tensor reads. */
  readonly start: number;
  readonly end: number;
  /** offset, shape and stride: equal views are the same tensor under two names. */
  readonly view: string;
}

/** What the destination format can hold exactly. */
export type TargetFormat = "safetensors" | "torch-zip";

export type Refusal =
  | { readonly kind: "sparse"; readonly layout: string }
  | { readonly kind: "quantized" }
  | { readonly kind: "no-data"; readonly rebuild: string }
  | { readonly kind: "dtype"; readonly dtype: string };

export function refusalText(name: string, refusal: Refusal, target: TargetFormat): string {
  const into = target === "safetensors" ? "safetensors" : "a torch state dict of plain tensors";
  switch (refusal.kind) {
    case "sparse":
      return `tensor ${JSON.stringify(name)} is a ${refusal.layout} tensor: ${into} holds dense tensors only`;
    case "quantized":
      return `tensor ${JSON.stringify(name)} is quantized: its scales and zero points have no place in ${into}`;
    case "no-data":
      return `tensor ${JSON.stringify(name)} was saved without data (${refusal.rebuild}): there are no bytes to convert`;
    case "dtype":
      return `tensor ${JSON.stringify(name)} has dtype ${refusal.dtype}, which ${into} cannot hold exactly`;
  }
}

function refusalOf(
  tensor: TorchTensor,
  target: TargetFormat,
  hasCode: (dtype: string) => boolean,
): Refusal | undefined {
  if (tensor.layout !== "strided") return { kind: "sparse", layout: tensor.layout };
  if (tensor.quantization || tensor.dtype.startsWith("q")) return { kind: "quantized" };
  if (!tensor.storage) return { kind: "no-data", rebuild: tensor.rebuild };
  if (!hasCode(tensor.dtype)) return { kind: "dtype", dtype: tensor.dtype };
  // Two 4-bit values per element need a dimension to double: safetensors cannot hold a 0-d one.
  if (target === "safetensors" && tensor.dtype === "float4_e2m1fn_x2" && tensor.shape.length === 0)
    return { kind: "dtype", dtype: "float4_e2m1fn_x2 with no dimensions" };
  return undefined;
}

function regionOf(tensor: TorchTensor): StorageRegion | undefined {
  const storage = tensor.storage;
  if (!storage) return undefined;
  const size = elementSize(tensor.dtype);
  const base = storage.view?.offset ?? 0;
  let span = elementCount(tensor.shape) === 0 ? 0 : 1;
  if (span > 0)
    for (let d = 0; d < tensor.shape.length; d++)
      span += ((tensor.shape[d] as number) - 1) * (tensor.stride[d] as number);
  const start = (base + tensor.offset) * size;
  return {
    storage: storage.view?.root ?? storage.key,
    // A legacy view's root is only known to reach at least to the view's end.
    storageBytes: storage.view ? base * size + storage.sizeBytes : storage.sizeBytes,
    start,
    end: start + span * size,
    view: `${tensor.dtype}@${tensor.offset}:${tensor.shape.join("x")}/${tensor.stride.join(",")}`,
  };
}

/**
 * The selected tensors of a file, ready to write into `target`; refuses, naming the tensor, what the target
 * cannot hold exactly (the next step says how to leave it out).
 */
export function checkpointTensors(
  checkpoint: TensorCheckpoint,
  selected: readonly SelectedTensor[],
  target: TargetFormat,
  hasCode: (dtype: string) => boolean,
): ConvertTensor[] {
  const names = new Set<string>();
  return selected.map(({ name, tensor }) => {
    const refusal = refusalOf(tensor, target, hasCode);
    if (refusal) throw new ReaderError("convert-refused", refusalText(name, refusal, target));
    if (names.has(name)) {
      throw new ReaderError(
        "convert-refused",
        `two tensors would both be named ${name}: choose prefixes that keep names distinct`,
      );
    }
    names.add(name);
    return {
      name,
      dtype: tensor.dtype,
      shape: tensor.shape,
      byteLength: elementCount(tensor.shape) * elementSize(tensor.dtype),
      bytes: () => tensorBytes(checkpoint, tensor),
      region: regionOf(tensor),
    };
  });
}
