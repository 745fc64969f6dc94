import { ReaderError } from "./errors.js";

/**
 * Random access to the bytes of one input. Every reader in ckpt goes through this, so a multi-GB checkpoint is
 * never loaded whole: callers ask for exactly the ranges they need.
 *
 * Reads are synchronous on purpose: inspecting is a sequence of small dependent reads (end records, central
 * directory, one pickle), and a 200,000-record archive must not pay a promise per record. This module is
 * portable (Node and browsers); the implementations over a platform's files live beside it: `FileSource`
 * (Node, `fileSource.ts`) and `BlobSource` (a browser worker, `web/blobSource.ts`).
 */
export interface ByteSource {
  /** Name used in error messages (the path as the user gave it). */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`, or a `ReaderError` (code `io-error`) when the range is out of bounds. */
  read(offset: number, length: number): Uint8Array;
  /** Fills `target` with the bytes at `offset` (no allocation: for streaming copies that reuse one buffer). */
  readInto(target: Uint8Array, offset: number): Uint8Array;
  /** Throws `file-changed` when the underlying file was modified since it was opened. */
  assertUnchanged(): void;
  /** Which file this is, for another thread that opens it by path (absent for in-memory sources). */
  identity?(): FileIdentity;
  close(): void;
}

/** A file as another opener can recognise it. */
export interface FileIdentity {
  readonly path: string;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Whether two identities are of one file, unchanged (what a worker checks before reading the caller's file). */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

export function outOfBounds(name: string, offset: number, length: number, size: number): ReaderError {
  return new ReaderError(
    "io-error",
    `read of ${length} bytes at offset ${offset} is outside the ${size}-byte input`,
    { offset, file: name },
  );
}

/**
 * A source whose `read` answers with fresh bytes (a copy, or memory of its own), so `readInto` is a copy and
 * there is nothing to check or close: in-memory bytes, and the browser's blob and HTTP sources.
 */
export abstract class SnapshotSource implements ByteSource {
  abstract readonly name: string;
  abstract readonly size: number;
  abstract read(offset: number, length: number): Uint8Array;

  /** Throws `outOfBounds` unless `[offset, offset + length)` lies in the source. */
  protected check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw outOfBounds(this.name, offset, length, this.size);
    }
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    target.set(this.read(offset, target.length));
    return target;
  }

  assertUnchanged(): void {}

  close(): void {}
}

/** In-memory bytes behind the same interface, for tests and for archives nested inside other files. */
export class BufferSource extends SnapshotSource {
  readonly name: string;
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, name = "<buffer>") {
    super();
    this.bytes = bytes;
    this.size = bytes.length;
    this.name = name;
  }

  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
}

/** Wraps a source and counts what is read: the proof that structure reads stay small. */
export class CountingSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  bytesRead = 0;
  readCount = 0;
  private readonly inner: ByteSource;

  constructor(inner: ByteSource) {
    this.inner = inner;
    this.name = inner.name;
    this.size = inner.size;
  }

  read(offset: number, length: number): Uint8Array {
    this.bytesRead += length;
    this.readCount += 1;
    return this.inner.read(offset, length);
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    this.bytesRead += target.length;
    this.readCount += 1;
    return this.inner.readInto(target, offset);
  }

  assertUnchanged(): void {
    this.inner.assertUnchanged();
  }

  close(): void {
    this.inner.close();
  }
}
