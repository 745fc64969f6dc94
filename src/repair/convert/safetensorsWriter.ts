import { writeSync } from "node:fs";
import { SAFETENSORS_DTYPES } from "../../reader/safetensors.js";
import { elementSize } from "../../reader/torch/dtypes.js";

/**
 * Writes safetensors files as the reference writer (`safetensors::tensor::serialize`, what
 * `safetensors.torch.save_file` calls) lays them out, so that for the same tensors and metadata the bytes are
 * the same: tensors ordered by dtype (the `Dtype` enum, descending) then by name, data offsets packed in that
 * order, the header compact JSON with `__metadata__` first, padded with spaces to a multiple of 8. Tensor
 * bytes are streamed: nothing holds more than one chunk.
 */

/**
 * torch dtype -> safetensors code, for the dtypes ckpt converts exactly: complex64 as C64, which the
 * reference writes and reads (`safetensors.torch.save_file`, 0.8); complex32 and complex128 have no code and
 * are refused; F6 has no torch dtype.
 */
const TORCH_TO_CODE = new Map<string, string>(
  [...SAFETENSORS_DTYPES.values()].filter((d) => d.code !== d.torch).map((d) => [d.torch, d.code]),
);

/**
 * The shape written to the header: safetensors counts F4 in 4-bit elements, two per torch
 * `float4_e2m1fn_x2` element, so the last dimension doubles (as the reference's torch binding writes it).
 */
export function headerShape(dtype: string, shape: readonly number[]): readonly number[] {
  if (dtype !== "float4_e2m1fn_x2" || shape.length === 0) return shape;
  return [...shape.slice(0, -1), (shape[shape.length - 1] as number) * 2];
}

/** The `Dtype` enum's order in the reference, greatest first: its writer sorts by it, descending. */
const DTYPE_RANK = [
  "U64",
  "I64",
  "F64",
  "C64",
  "F32",
  "U32",
  "I32",
  "BF16",
  "F16",
  "U16",
  "I16",
  "F8_E5M2FNUZ",
  "F8_E4M3FNUZ",
  "F8_E8M0",
  "F8_E4M3",
  "F8_E5M2",
  "I8",
  "U8",
  "F4",
  "BOOL",
];

/** The safetensors code for a torch dtype, or undefined when the format cannot hold it exactly. */
export function safetensorsCode(dtype: string): string | undefined {
  return TORCH_TO_CODE.get(dtype);
}

export interface SafetensorsEntry {
  readonly name: string;
  /** torch dtype name. */
  readonly dtype: string;
  readonly shape: readonly number[];
  /** The tensor's row-major little-endian bytes, streamed. */
  readonly bytes: () => Iterable<Uint8Array>;
}

export interface SafetensorsLayout {
  readonly header: Uint8Array;
  /** Entries in the order their bytes follow the header. */
  readonly order: readonly SafetensorsEntry[];
  /** Bytes of tensor data after the header. */
  readonly dataBytes: number;
  readonly totalBytes: number;
}

const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

function rank(code: string): number {
  const at = DTYPE_RANK.indexOf(code);
  return at < 0 ? DTYPE_RANK.length : at;
}

/**
 * Byte-wise comparison of UTF-8 names, as Rust's `String::cmp`; also code-point order, as Python's `sorted`
 * orders strings.
 */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The header and data order for `entries` (each already known to have a code). */
export function layoutSafetensors(
  entries: readonly SafetensorsEntry[],
  metadata: ReadonlyMap<string, string> | undefined,
): SafetensorsLayout {
  const order = [...entries].sort(
    (a, b) =>
      rank(safetensorsCode(a.dtype) as string) - rank(safetensorsCode(b.dtype) as string) ||
      compareNames(a.name, b.name),
  );
  // Built as text in the reference's order: JSON.stringify of an object would reorder integer-like names.
  const parts: string[] = [];
  if (metadata) {
    const items = [...metadata].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    parts.push(`"__metadata__":{${items.join(",")}}`);
  }
  let offset = 0;
  for (const entry of order) {
    const length = numel(entry.shape) * elementSize(entry.dtype);
    parts.push(
      `${JSON.stringify(entry.name)}:{"dtype":"${safetensorsCode(entry.dtype)}","shape":[${headerShape(entry.dtype, entry.shape).join(",")}],"data_offsets":[${offset},${offset + length}]}`,
    );
    offset += length;
  }
  const json = Buffer.from(`{${parts.join(",")}}`, "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  return { header, order, dataBytes: offset, totalBytes: header.length + offset };
}

/**
 * Writes the laid-out file to `fd` from position 0; calls `onBytes` after each piece (for progress and
 * hashing). Returns the bytes written.
 */
export function writeSafetensors(
  fd: number,
  layout: SafetensorsLayout,
  onBytes: (chunk: Uint8Array) => void = () => undefined,
): number {
  let position = 0;
  const put = (chunk: Uint8Array) => {
    let done = 0;
    while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done, position + done);
    position += chunk.length;
    onBytes(chunk);
  };
  put(layout.header);
  for (const entry of layout.order) {
    const expected = numel(entry.shape) * elementSize(entry.dtype);
    const start = position;
    for (const chunk of entry.bytes()) put(chunk);
    if (position - start !== expected) {
      throw new Error(`bug: ${entry.name} streamed ${position - start} bytes, expected ${expected}`);
    }
  }
  return position;
}
