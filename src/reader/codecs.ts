import { type Hasher, Sha256 } from "./sha256.js";
import { crc32Portable } from "./zip/crc32Portable.js";
import { fflateInflater } from "./zip/inflateFflate.js";

/** CRC-32 (ISO-HDLC, the zip one) continuing from `value`, like `zlib.crc32`. */
export type Crc32 = (data: Uint8Array, value?: number) => number;

/** Why an inflate failed: corrupt data, or more output than the caller allowed. */
export class InflateError extends Error {
  readonly tooLarge: boolean;
  constructor(message: string, tooLarge: boolean) {
    super(message);
    this.tooLarge = tooLarge;
  }
}

/** Raw deflate (zip method 8), whole or in pieces. Failures are `InflateError`s. */
export interface Inflater {
  /** The whole stream, which must inflate to at most `maxOutput` bytes. */
  inflate(data: Uint8Array, maxOutput: number): Uint8Array;
  /** What a prefix of a stream inflates to (the stream need not end), at most `maxOutput` bytes. */
  inflatePrefix(data: Uint8Array, maxOutput: number): Uint8Array;
  /** The stream read from `input` piece by piece, yielded in pieces; memory bounded by a few pieces. */
  stream(input: Iterable<Uint8Array>, chunkSize: number): AsyncIterable<Uint8Array>;
}

/**
 * The byte codecs the reader uses. The defaults are portable TypeScript and a library (fflate), so the same
 * reader runs in a browser; a Node program gets Node's native zlib, ~3x faster to inflate, ~10x to CRC and faster to hash
 * (README, "Reading in a browser"), installed by `nodeCodecs.ts`, which `FileSource` imports: whatever opens a
 * file in Node has them.
 */
export interface Codecs {
  readonly crc32: Crc32;
  readonly inflater: Inflater;
  readonly sha256: () => Hasher;
}

let installed: Codecs = { crc32: crc32Portable, inflater: fflateInflater, sha256: () => new Sha256() };

export function codecs(): Codecs {
  return installed;
}

export function installCodecs(next: Codecs): void {
  installed = next;
}
