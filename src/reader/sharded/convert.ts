import { ReaderError } from "../errors.js";
import { bfloat16ToNumber, halfToNumber } from "../floatBits.js";
import { elementSize } from "../torch/dtypes.js";
import type { RowMajorReader } from "./tensorReader.js";

/**
 * `tensor.float()` as bytes: what zero_to_fp32 applies to every buffer (`{k: v.float() ...}`), so a bf16 or
 * fp16 buffer and BatchNorm's int64 `num_batches_tracked` come out as float32. Conversions round to nearest
 * even, as torch's static_cast does (ints beyond 2^53 are rounded twice; no buffer holds such counts).
 */

type Decode = (view: DataView, at: number) => number;

const DECODERS: Readonly<Record<string, Decode>> = {
  float64: (v, at) => v.getFloat64(at, true),
  float16: (v, at) => halfToNumber(v.getUint16(at, true)),
  bfloat16: (v, at) => bfloat16ToNumber(v.getUint16(at, true)),
  int64: (v, at) => Number(v.getBigInt64(at, true)),
  int32: (v, at) => v.getInt32(at, true),
  int16: (v, at) => v.getInt16(at, true),
  int8: (v, at) => v.getInt8(at),
  uint8: (v, at) => v.getUint8(at),
  bool: (v, at) => (v.getUint8(at) === 0 ? 0 : 1),
};

/** A reader of float32 row-major bytes over a reader of `dtype` row-major bytes. */
export function float32Reader(source: RowMajorReader, dtype: string): RowMajorReader {
  if (dtype === "float32") return source;
  const decode = DECODERS[dtype];
  if (!decode) throw new ReaderError("unsupported-format", `converting ${dtype} to float32 is not supported`);
  const size = elementSize(dtype);
  return (start, into) => {
    const count = into.length / 4;
    const raw = new Uint8Array(count * size);
    source((start / 4) * size, raw);
    const input = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const output = new DataView(into.buffer, into.byteOffset, into.byteLength);
    for (let i = 0; i < count; i++) output.setFloat32(i * 4, decode(input, i * size), true);
  };
}
