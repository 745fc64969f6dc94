import { ReaderError } from "../errors.js";
import { SnapshotSource } from "../source.js";

/** Synchronous bytes of a blob slice: `FileReaderSync` in a worker (the reader is synchronous, see `source.ts`). */
export type SliceReader = (blob: Blob) => ArrayBuffer;

/** `FileReaderSync`, which only dedicated workers have. */
export function fileReaderSync(): SliceReader {
  const Reader = (globalThis as { FileReaderSync?: new () => { readAsArrayBuffer(b: Blob): ArrayBuffer } })
    .FileReaderSync;
  if (Reader === undefined) {
    throw new ReaderError("io-error", "FileReaderSync is missing: a Blob is read in a dedicated worker");
  }
  const reader = new Reader();
  return (blob) => reader.readAsArrayBuffer(blob);
}

/**
 * A `File` or `Blob` read by slices, beside Node's `FileSource`: a dropped 6 GB checkpoint is never loaded
 * whole, only the ranges the reader asks for. Nothing is cached, so memory does not grow with the file.
 */
export class BlobSource extends SnapshotSource {
  readonly name: string;
  readonly size: number;
  private readonly blob: Blob;
  private readonly readSlice: SliceReader;

  constructor(blob: Blob, name: string, readSlice: SliceReader = fileReaderSync()) {
    super();
    this.blob = blob;
    this.name = name;
    this.size = blob.size;
    this.readSlice = readSlice;
  }

  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    let bytes: ArrayBuffer;
    try {
      bytes = this.readSlice(this.blob.slice(offset, offset + length));
    } catch (error) {
      // Chromium throws NotReadableError when the file on disk changed (or went away) after it was picked.
      const name = (error as { name?: string }).name;
      if (name === "NotReadableError" || name === "NotFoundError") {
        throw new ReaderError("file-changed", `${this.name} changed or went away while being read`, {
          offset,
          file: this.name,
        });
      }
      throw new ReaderError("io-error", `cannot be read (${name ?? String(error)})`, {
        offset,
        file: this.name,
      });
    }
    if (bytes.byteLength !== length) {
      throw new ReaderError("file-changed", `${this.name} became shorter while being read`, {
        offset,
        file: this.name,
      });
    }
    return new Uint8Array(bytes);
  }

  // assertUnchanged checks nothing: a picked `File` is a snapshot, and a change on disk surfaces as
  // `file-changed` from the next read.
}
