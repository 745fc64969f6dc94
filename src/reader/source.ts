import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import { ReaderError } from "./errors.js";

/**
 * Random access to the bytes of one input. Every reader in ckpt goes through this, so a multi-GB checkpoint is
 * never loaded whole: callers ask for exactly the ranges they need.
 *
 * Reads are synchronous on purpose: inspecting is a sequence of small dependent reads (end records, central
 * directory, one pickle), and a 200,000-record archive must not pay a promise per record.
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

function outOfBounds(name: string, offset: number, length: number, size: number): ReaderError {
  return new ReaderError(
    "io-error",
    `read of ${length} bytes at offset ${offset} is outside the ${size}-byte input`,
    { offset, file: name },
  );
}

/** A file read with positional reads; nothing is cached, so memory does not grow with the file. */
export class FileSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly fd: number;
  private readonly mtimeMs: number;

  private constructor(name: string, fd: number, size: number, mtimeMs: number) {
    this.name = name;
    this.fd = fd;
    this.size = size;
    this.mtimeMs = mtimeMs;
  }

  static open(path: string): FileSource {
    let stats: ReturnType<typeof statSync>;
    try {
      stats = statSync(path);
    } catch (error) {
      throw fileOpenError(path, error);
    }
    if (!stats.isFile()) {
      throw new ReaderError("not-a-file", "not a regular file", { file: path });
    }
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      throw fileOpenError(path, error);
    }
    return new FileSource(path, fd, stats.size, stats.mtimeMs);
  }

  read(offset: number, length: number): Uint8Array {
    return this.readInto(Buffer.allocUnsafe(length), offset);
  }

  readInto(buffer: Uint8Array, offset: number): Uint8Array {
    const length = buffer.length;
    if (offset < 0 || offset + length > this.size) {
      throw outOfBounds(this.name, offset, length, this.size);
    }
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, offset + done);
      if (n === 0) {
        // The file shrank under us: a writer is truncating or rewriting it.
        throw new ReaderError("file-changed", `${this.name} became shorter while being read`, {
          offset: offset + done,
          file: this.name,
        });
      }
      done += n;
    }
    return buffer;
  }

  identity(): FileIdentity {
    const { dev, ino, size, mtimeMs } = fstatSync(this.fd);
    return { path: this.name, dev, ino, size, mtimeMs };
  }

  assertUnchanged(): void {
    const stats = fstatSync(this.fd);
    if (stats.size !== this.size || stats.mtimeMs !== this.mtimeMs) {
      throw new ReaderError(
        "file-changed",
        `${this.name} changed while being read (size ${this.size} -> ${stats.size})`,
        { file: this.name },
      );
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

function fileOpenError(path: string, error: unknown): ReaderError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") return new ReaderError("file-not-found", "no such file", { file: path });
  if (code === "EISDIR") return new ReaderError("not-a-file", "a directory, not a file", { file: path });
  return new ReaderError("io-error", `cannot be opened (${code ?? String(error)})`, { file: path });
}

/** In-memory bytes behind the same interface, for tests and for archives nested inside other files. */
export class BufferSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, name = "<buffer>") {
    this.bytes = bytes;
    this.size = bytes.length;
    this.name = name;
  }

  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw outOfBounds(this.name, offset, length, this.size);
    }
    return this.bytes.subarray(offset, offset + length);
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    target.set(this.read(offset, target.length));
    return target;
  }

  assertUnchanged(): void {}

  close(): void {}
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
