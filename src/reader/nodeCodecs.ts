import { createHash } from "node:crypto";
import { pipeline, Readable } from "node:stream";
import * as zlib from "node:zlib";
import { InflateError, type Inflater, installCodecs } from "./codecs.js";
import { crc32Portable } from "./zip/crc32Portable.js";

/**
 * Node's native zlib as the reader's codecs (see `codecs.ts`): imported for its effect by `FileSource`, so
 * any Node program that opens a file inflates and checks CRCs at native speed.
 */

function failure(error: unknown): InflateError {
  const tooLarge = (error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE";
  return new InflateError(error instanceof Error ? error.message : String(error), tooLarge);
}

async function* inflateStream(input: Iterable<Uint8Array>, chunkSize: number): AsyncGenerator<Uint8Array> {
  const inflate = zlib.createInflateRaw({ chunkSize: Math.max(64, Math.min(chunkSize, 1024 * 1024)) });
  // Errors of either stream destroy the other and surface from the iteration below.
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
    try {
      // maxOutputLength must be >= 1; callers compare the length with what they expected.
      return zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, maxOutput) });
    } catch (error) {
      throw failure(error);
    }
  },
  inflatePrefix(data, maxOutput) {
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

// A namespace import: a named import of a missing export would fail at link time on older Node 20 releases.
installCodecs({
  crc32: typeof zlib.crc32 === "function" ? zlib.crc32 : crc32Portable,
  inflater: zlibInflater,
  sha256: () => {
    const hash = createHash("sha256");
    return { update: (bytes) => hash.update(bytes), hex: () => hash.digest("hex") };
  },
});
