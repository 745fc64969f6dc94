import * as zlib from "node:zlib";

/** CRC-32 (ISO-HDLC, the zip one) continuing from `value`, like `zlib.crc32`. */
export type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

/** Table-driven fallback for Node < 20.15, which lacks `zlib.crc32`. */
function crc32Portable(data: Uint8Array, value = 0): number {
  if (table === undefined) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = ~value;
  for (const byte of data) crc = (table[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return ~crc >>> 0;
}

// A namespace import: a named import of a missing export would fail at link time on older Node 20 releases.
export const crc32: Crc32 = typeof zlib.crc32 === "function" ? zlib.crc32 : crc32Portable;

/** Exported for tests only. */
export { crc32Portable };
