/**
 * The 16-bit float formats torch stores, decoded from their bits to a JS number exactly (every float16 and
 * bfloat16 value is a float32, hence a double). One place for stats, diff and zero_to_fp32's `.float()`.
 */

/** IEEE binary16: subnormals, infinities and NaN as torch's `torch.float16`. */
export function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

const scratch = new DataView(new ArrayBuffer(4));

/** bfloat16: the high half of a float32. */
export function bfloat16ToNumber(bits: number): number {
  scratch.setUint32(0, (bits & 0xffff) << 16);
  return scratch.getFloat32(0);
}
