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
  // Most calls are one short key or class name: its codes passed as arguments, without the subarray that
  // `apply` needs (which costs several times the decoding; a 200,000-tensor pickle has 600,000 strings).
  if (end - start <= 16) return shortLatin1(bytes, start, end - start);
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

/** Up to 16 bytes as text, their codes passed as arguments: one flat string (a concatenation would not be). */
function shortLatin1(b: Uint8Array, s: number, n: number): string {
  const c = (i: number) => b[s + i] as number;
  const f = String.fromCharCode;
  switch (n) {
    case 0:
      return "";
    case 1:
      return f(c(0));
    case 2:
      return f(c(0), c(1));
    case 3:
      return f(c(0), c(1), c(2));
    case 4:
      return f(c(0), c(1), c(2), c(3));
    case 5:
      return f(c(0), c(1), c(2), c(3), c(4));
    case 6:
      return f(c(0), c(1), c(2), c(3), c(4), c(5));
    case 7:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6));
    case 8:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7));
    case 9:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8));
    case 10:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9));
    case 11:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10));
    case 12:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10), c(11));
    case 13:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10), c(11), c(12));
    case 14:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10), c(11), c(12), c(13));
    case 15:
      return f(c(0), c(1), c(2), c(3), c(4), c(5), c(6), c(7), c(8), c(9), c(10), c(11), c(12), c(13), c(14));
    case 16:
      return f(
        c(0),
        c(1),
        c(2),
        c(3),
        c(4),
        c(5),
        c(6),
        c(7),
        c(8),
        c(9),
        c(10),
        c(11),
        c(12),
        c(13),
        c(14),
        c(15),
      );
    default:
      return String.fromCharCode.apply(null, b.subarray(s, s + n) as unknown as number[]);
  }
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

/** Buffers smaller than this are left to the collector (and may be slices of Node's shared pool). */
const RELEASE_MIN_BYTES = 1 << 20;

/**
 * Gives up the memory of `bytes`, which must be the caller's own and viewed by nothing that is kept: a large
 * buffer that lived through a long parse is in V8's old generation, and its memory comes back only at a full
 * collection, which a command may end before (the 20 MB `data.pkl` of a 200,000-tensor state dict stayed to
 * the end, 7% of its peak). Transferred to a fresh buffer that nothing references, it goes at the next
 * young collection. `bytes` is empty afterwards. Does nothing to a small buffer or a view of a larger one.
 */
export function releaseBuffer(bytes: Uint8Array): void {
  const { buffer } = bytes;
  if (!(buffer instanceof ArrayBuffer) || bytes.byteOffset !== 0 || bytes.byteLength !== buffer.byteLength)
    return;
  if (bytes.byteLength < RELEASE_MIN_BYTES) return;
  structuredClone(buffer, { transfer: [buffer] });
}
