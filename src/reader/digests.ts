import { codecs } from "./codecs.js";
import type { ByteSource } from "./source.js";

/**
 * CRC-32 or SHA-256 of byte ranges of one source (`--verify`'s records, `--hash`'s tensors), portable: one
 * thread, the installed codecs. Node installs its two-thread version (`rangeDigest.ts`) where the file
 * system's run analysis loads (`inspect/runs/node.ts`); a page's worker uses this one.
 */

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

export type DigestKind = "crc32" | "sha256";

/** Per range, in input order: CRC-32 as an unsigned number, SHA-256 as lowercase hex. */
export type Digests<K extends DigestKind> = K extends "crc32" ? number[] : string[];

export type RangeDigester = <K extends DigestKind>(
  source: ByteSource,
  ranges: readonly ByteRange[],
  kind: K,
) => Promise<Digests<K>>;

/** 256 KiB stays in L2: read + CRC-32 ran at 3.8 GB/s against 3.2 GB/s with 4 MiB reads (the bench's 1 GB input). */
const CHUNK_BYTES = 256 * 1024;

/** The digest of one range, read through `buffer` (its length is the chunk size). */
export function digestRange(
  source: Pick<ByteSource, "readInto">,
  { offset, length }: ByteRange,
  buffer: Uint8Array,
  kind: DigestKind,
): number | string {
  const hash = kind === "sha256" ? codecs().sha256() : undefined;
  const crc32 = codecs().crc32;
  let crc = 0;
  for (let done = 0; done < length; done += buffer.length) {
    const chunk = source.readInto(buffer.subarray(0, Math.min(buffer.length, length - done)), offset + done);
    if (hash) hash.update(chunk);
    else crc = crc32(chunk, crc);
  }
  return hash ? hash.hex() : crc >>> 0;
}

/** A buffer for digesting `ranges`: a chunk, or less when every range is smaller (an audit reads thousands). */
export function digestBuffer(ranges: readonly ByteRange[]): Uint8Array {
  const longest = ranges.reduce((max, r) => Math.max(max, r.length), 0);
  return new Uint8Array(Math.max(1, Math.min(CHUNK_BYTES, longest)));
}

/** Digests of `ranges` on this thread, read through `source` in chunks. */
export function digestRangesPortable<K extends DigestKind>(
  source: Pick<ByteSource, "readInto">,
  ranges: readonly ByteRange[],
  kind: K,
): Digests<K> {
  const buffer = digestBuffer(ranges);
  return ranges.map((range) => digestRange(source, range, buffer, kind)) as Digests<K>;
}

let installed: RangeDigester = async (source, ranges, kind) => digestRangesPortable(source, ranges, kind);

/** Replaces the digester (Node's two-thread one); the portable one is the default. */
export function installRangeDigester(next: RangeDigester): void {
  installed = next;
}

export function digestRanges<K extends DigestKind>(
  source: ByteSource,
  ranges: readonly ByteRange[],
  kind: K,
): Promise<Digests<K>> {
  return installed(source, ranges, kind);
}
