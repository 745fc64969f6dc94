/**
 * Byte helpers that `Buffer` gave the reader, in portable form: the reader also runs in browsers, which have
 * no `Buffer`.
 */

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether every byte of `bytes[start, end)` is below 0x80. */
export function isAscii(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end; i++) if ((bytes[i] as number) >= 0x80) return false;
  return true;
}

/** Latin-1 text of `bytes[start, end)`: each byte one character (what `Buffer#toString("latin1")` does). */
export function latin1(bytes: Uint8Array, start = 0, end = bytes.length): string {
  // Most calls are one key or class name: one call, no concatenation.
  if (end - start <= 8192)
    return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
  let text = "";
  // In slices: String.fromCharCode takes its arguments on the stack.
  for (let at = start; at < end; at += 8192) {
    text += String.fromCharCode.apply(
      null,
      bytes.subarray(at, Math.min(end, at + 8192)) as unknown as number[],
    );
  }
  return text;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Lowercase hex, two digits a byte. */
export function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += HEX[byte];
  return text;
}

/** UTF-8 length of a string, as `Buffer.byteLength` gives it. */
export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** The pieces one after another, in one array. */
export function concatBytes(pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}
