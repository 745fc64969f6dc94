let table: Uint32Array | undefined;

/**
 * Table-driven CRC-32 (ISO-HDLC), continuing from `value` like `zlib.crc32`: for browsers, and for Node < 20.15,
 * which lacks `zlib.crc32`.
 */
export function crc32Portable(data: Uint8Array, value = 0): number {
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
