import { bfloat16ToNumber, halfToNumber } from "../../reader/floatBits.js";
/**
 * Tensor elements as float64, block by block, for comparing values: every dtype that has numbers (floating,
 * integer, bool, complex as interleaved real and imaginary parts) decodes into a `Float64Array`, so one
 * monomorphic loop compares any pair of dtypes (float32 against bfloat16 after a cast, too). The element
 * bytes are little-endian, as `tensorBytes` gives them.
 */

/** Writes `count` elements of `bytes` (from its start) into `out` as numbers; complex dtypes write 2 per element. */
export type Decoder = (bytes: Uint8Array, count: number, out: Float64Array) => void;

/** A view of `bytes` as typed elements, copying into an aligned buffer only when the bytes are not aligned. */
function aligned<T>(
  bytes: Uint8Array,
  width: number,
  count: number,
  make: (buffer: ArrayBufferLike, offset: number, length: number) => T,
): T {
  if (bytes.byteOffset % width === 0) return make(bytes.buffer, bytes.byteOffset, count);
  const copy = new Uint8Array(count * width);
  copy.set(bytes.subarray(0, count * width));
  return make(copy.buffer, 0, count);
}

function typed<T extends ArrayLike<number>>(
  width: number,
  make: (buffer: ArrayBufferLike, offset: number, length: number) => T,
): Decoder {
  return (bytes, count, out) => {
    out.set(aligned(bytes, width, count, make));
  };
}

/** Every 16-bit pattern's value, built once per format on first use (256 KiB each). */
function table16(decode: (bits: number) => number): () => Float64Array {
  let table: Float64Array | undefined;
  return () => {
    if (!table) {
      table = new Float64Array(65536);
      for (let bits = 0; bits < 65536; bits++) table[bits] = decode(bits);
    }
    return table;
  };
}

/**
 * An 8-bit float with `mantissa` fraction bits and exponent bias `bias`. e5m2 follows IEEE (all-ones exponent:
 * infinities and NaNs); e4m3fn has no infinities and only S.1111.111 is NaN (torch's `float8_e4m3fn`).
 */
function float8Value(bits: number, mantissa: number, bias: number, ieee: boolean): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exponentBits = 7 - mantissa;
  const exponent = (bits >> mantissa) & ((1 << exponentBits) - 1);
  const fraction = bits & ((1 << mantissa) - 1);
  const top = (1 << exponentBits) - 1;
  if (ieee && exponent === top) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  if (!ieee && exponent === top && fraction === (1 << mantissa) - 1) return Number.NaN;
  if (exponent === 0) return sign * 2 ** (1 - bias) * (fraction / (1 << mantissa));
  return sign * 2 ** (exponent - bias) * (1 + fraction / (1 << mantissa));
}

function table8(decode: (bits: number) => number): Decoder {
  const table = new Float64Array(256);
  for (let bits = 0; bits < 256; bits++) table[bits] = decode(bits);
  return (bytes, count, out) => {
    for (let i = 0; i < count; i++) out[i] = table[bytes[i] as number] as number;
  };
}

function lookup16(table: () => Float64Array): Decoder {
  return (bytes, count, out) => {
    const values = table();
    const bits = aligned(bytes, 2, count, (b, o, n) => new Uint16Array(b, o, n));
    for (let i = 0; i < count; i++) out[i] = values[bits[i] as number] as number;
  };
}

/** 64-bit integers as two 32-bit halves: exact up to 2^53, as close as a double gets beyond. */
function int64(signed: boolean): Decoder {
  return (bytes, count, out) => {
    const words = aligned(bytes, 4, count * 2, (b, o, n) => new Uint32Array(b, o, n));
    for (let i = 0; i < count; i++) {
      const low = words[2 * i] as number;
      const high = words[2 * i + 1] as number;
      out[i] = (signed ? high | 0 : high) * 4294967296 + low;
    }
  };
}

const DECODERS: Readonly<Record<string, { readonly decode: Decoder; readonly complex: boolean }>> = {
  float64: { decode: typed(8, (b, o, n) => new Float64Array(b, o, n)), complex: false },
  float32: { decode: typed(4, (b, o, n) => new Float32Array(b, o, n)), complex: false },
  float16: { decode: lookup16(table16(halfToNumber)), complex: false },
  bfloat16: { decode: lookup16(table16(bfloat16ToNumber)), complex: false },
  float8_e5m2: { decode: table8((bits) => float8Value(bits, 2, 15, true)), complex: false },
  float8_e4m3fn: { decode: table8((bits) => float8Value(bits, 3, 7, false)), complex: false },
  int64: { decode: int64(true), complex: false },
  uint64: { decode: int64(false), complex: false },
  int32: { decode: typed(4, (b, o, n) => new Int32Array(b, o, n)), complex: false },
  uint32: { decode: typed(4, (b, o, n) => new Uint32Array(b, o, n)), complex: false },
  int16: { decode: typed(2, (b, o, n) => new Int16Array(b, o, n)), complex: false },
  uint16: { decode: typed(2, (b, o, n) => new Uint16Array(b, o, n)), complex: false },
  int8: { decode: typed(1, (b, o, n) => new Int8Array(b, o, n)), complex: false },
  uint8: { decode: typed(1, (b, o, n) => new Uint8Array(b, o, n)), complex: false },
  bool: { decode: typed(1, (b, o, n) => new Uint8Array(b, o, n)), complex: false },
  complex128: {
    decode: (bytes, count, out) => DECODERS.float64?.decode(bytes, count * 2, out),
    complex: true,
  },
  complex64: {
    decode: (bytes, count, out) => DECODERS.float32?.decode(bytes, count * 2, out),
    complex: true,
  },
  complex32: {
    decode: (bytes, count, out) => DECODERS.float16?.decode(bytes, count * 2, out),
    complex: true,
  },
};

/**
 * How a dtype's elements are compared: as numbers (with a decoder), or, for the dtypes whose bytes are not
 * plain numbers (quantized integers, packed 4-bit values, scaled float8 variants, raw bits), element bytes
 * against element bytes.
 */
export function numericDecoder(
  dtype: string,
): { readonly decode: Decoder; readonly complex: boolean } | undefined {
  return DECODERS[dtype];
}
