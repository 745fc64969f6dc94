import { ReaderError } from "../errors.js";

/** Python ints as the machine holds them: a JS number when it is exact, a bigint beyond 2^53. */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function intValue(big: bigint): number | bigint {
  return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big;
}

/** Little-endian two's complement, as LONG1/LONG4 store ints. */
export function decodeLong(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  if (n <= 6) {
    let value = 0;
    for (let i = n - 1; i >= 0; i--) value = value * 256 + (bytes[i] as number);
    if ((bytes[n - 1] as number) >= 0x80) value -= 2 ** (8 * n);
    return value;
  }
  let big = 0n;
  for (let i = n - 1; i >= 0; i--) big = (big << 8n) | BigInt(bytes[i] as number);
  if ((bytes[n - 1] as number) >= 0x80) big -= 1n << BigInt(8 * n);
  return intValue(big);
}

/**
 * INT's argument as CPython's C unpickler reads it: `strtol(text, 0)` (so `010` is octal 8 and `0x1f` is 31),
 * falling back to Python's own int literal rules when strtol cannot take the whole text.
 */
export function parseCInt(text: string, offset: number): number | bigint {
  const match = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return parseIntText(text, offset);
  const body = match[2] as string;
  const big =
    body.length > 1 && body.startsWith("0") && !/^0[xX]/.test(body)
      ? BigInt(`0o${body.slice(1)}`)
      : BigInt(body);
  return intValue(match[1] === "-" ? -big : big);
}

/** Python's `int(text, 0)` for the decimal, hex, octal and binary forms text pickles use. */
export function parseIntText(text: string, offset: number): number | bigint {
  const match = /^\s*([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0+|[1-9][0-9_]*)\s*$/.exec(text);
  if (!match) {
    throw new ReaderError(
      "pickle-malformed",
      `invalid integer literal ${JSON.stringify(text)} at byte ${offset}`,
      {
        offset,
      },
    );
  }
  const digits = (match[2] as string).replace(/_/g, "");
  const big = BigInt(digits);
  return intValue(match[1] === "-" ? -big : big);
}
