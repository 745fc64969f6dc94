import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";
import "./nodeCodecs.js";
import { ReaderError } from "./errors.js";
import { type ByteSource, type FileIdentity, outOfBounds } from "./source.js";

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
