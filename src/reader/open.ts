import { existsSync } from "node:fs";
import { basename, dirname, sep } from "node:path";
import type { Checkpoint } from "./checkpoint.js";
import { ReaderError } from "./errors.js";
import { FileSource } from "./fileSource.js";
import { type ReadContext, readCheckpoint as readFrom } from "./read.js";
import type { ByteSource } from "./source.js";

/**
 * The reader's Node entry: checkpoints by path, with pointer targets looked up on the file system. The
 * portable reader is `read.ts`; only Node code imports this file.
 */

export { contiguousStride } from "./read.js";

const FILE_SYSTEM: ReadContext = { exists: existsSync, paths: { dirname, basename, sep } };

/** `read.ts`'s `readCheckpoint`, with pointer targets looked up on this machine's file system. */
export function readCheckpoint(source: ByteSource, path?: string): Checkpoint {
  return readFrom(source, path, FILE_SYSTEM);
}

/**
 * Opens a checkpoint file and reads its structure (never its tensor bytes). The caller owns the returned
 * checkpoint's `source` and closes it when done.
 */
export function openCheckpoint(path: string): Checkpoint {
  return readOpenedCheckpoint(FileSource.open(path), path);
}

/**
 * Reads a checkpoint from a source just opened for `path` (from any tree): the source is closed when reading
 * fails, and the error names the file.
 */
export function readOpenedCheckpoint(source: ByteSource, path: string): Checkpoint {
  try {
    return readCheckpoint(source, path);
  } catch (error) {
    source.close();
    if (error instanceof ReaderError) error.file ??= path;
    throw error;
  }
}
