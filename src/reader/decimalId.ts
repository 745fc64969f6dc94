/**
 * The decimal numbers torch names its storages by (`"0"`, `"1"`, ...) as indices: no sign, no leading zero,
 * at most seven digits, so that a table indexed by them has at most ten million slots (dense when torch wrote
 * them). One rule for ids as strings (`IdMap`) and for record names as bytes (`ZipArchive.numberedSizes`): a
 * key one accepted and the other did not would be looked for in a table that does not hold it.
 */
const MAX_ID_DIGITS = 7;

/** `text` as such a number, or -1. */
export function decimalId(text: string): number {
  const { length } = text;
  if (!plausible(length, text.charCodeAt(0))) return -1;
  let n = 0;
  for (let i = 0; i < length; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/** The ASCII bytes `bytes[start, end)` as such a number, or -1. */
export function decimalIdInBytes(bytes: Uint8Array, start: number, end: number): number {
  if (!plausible(end - start, bytes[start] ?? 0)) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const digit = (bytes[i] as number) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}

/** A length in range, and no leading zero before other digits. */
function plausible(length: number, firstCode: number): boolean {
  return length >= 1 && length <= MAX_ID_DIGITS && !(length > 1 && firstCode === 0x30);
}
