import { codecs } from "../codecs.js";

export type { Crc32 } from "../codecs.js";

/** CRC-32 with the installed codec (Node's zlib in Node, the portable table elsewhere; see `codecs.ts`). */
export function crc32(data: Uint8Array, value = 0): number {
  return codecs().crc32(data, value);
}

/** Exported for tests only. */
export { crc32Portable } from "./crc32Portable.js";
