import { InflateError, type Inflater, installCodecs } from "./codecs.js";
import { nodeCrypto as crypto, nodeStream as stream, nodeZlib as zlibLoaded } from "./nodeBuiltins.js";
import { crc32Portable } from "./zip/crc32Portable.js";

/**
 * Node's native zlib as the reader's codecs (see `codecs.ts`): imported for its effect by `FileSource`, so
 * any Node program that opens a file inflates and checks CRCs at native speed. zlib itself loads on first use
 * (it is not in Node's start-up snapshot: a few ms of every command that never inflates), and so do crypto
 * (for sha256) and stream (for streamed inflation), 13 ms of a small inspect's start-up together; CRCs of the
 * small records every inspect checks (data.pkl of a small file) take the portable table until a record is
 * large.
 */
/** Below this many bytes the table CRC is as fast as loading zlib would make it. */
const NATIVE_CRC_MIN_BYTES = 4 * 1024;
let nativeCrc: ((data: Uint8Array, value?: number) => number) | undefined;
function crc32(data: Uint8Array, value = 0): number {
  if (nativeCrc === undefined && data.length < NATIVE_CRC_MIN_BYTES) return crc32Portable(data, value);
  // A namespace lookup: zlib.crc32 is missing on older Node 20 releases.
  nativeCrc ??= typeof zlibLoaded().crc32 === "function" ? zlibLoaded().crc32 : crc32Portable;
  return nativeCrc(data, value);
}

function failure(error: unknown): InflateError {
  const tooLarge = (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
  return new InflateError(error instanceof Error ? error.message : String(error), tooLarge);
}

async function* inflateStream(input: Iterable<Uint8Array>, chunkSize: number): AsyncGenerator<Uint8Array> {
  const zlib = zlibLoaded();
  const inflate = zlib.createInflateRaw({ chunkSize: Math.max(64, Math.min(chunkSize, 1024 * 1024)) });
  // Errors of either stream destroy the other and surface from the iteration below.
  const { pipeline, Readable } = stream();
  pipeline(Readable.from(input), inflate, () => undefined);
  try {
    for await (const piece of inflate as AsyncIterable<Buffer>) yield piece;
  } catch (error) {
    throw failure(error);
  } finally {
    inflate.destroy();
  }
}

const zlibInflater: Inflater = {
  inflate(data, maxOutput) {
    const zlib = zlibLoaded();
    try {
      // maxOutputLength must be >= 1; callers compare the length with what they expected.
      return zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, maxOutput) });
    } catch (error) {
      throw failure(error);
    }
  },
  inflatePrefix(data, maxOutput) {
    const zlib = zlibLoaded();
    try {
      return zlib.inflateRawSync(data, {
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        maxOutputLength: Math.max(1, maxOutput),
      });
    } catch (error) {
      throw failure(error);
    }
  },
  stream: inflateStream,
};

installCodecs({
  crc32,
  inflater: zlibInflater,
  sha256: () => {
    const hash = crypto().createHash("sha256");
    return { update: (bytes) => hash.update(bytes), hex: () => hash.digest("hex") };
  },
});
