import { ReaderError } from "../errors.js";
import { type ByteSource, CountingSource } from "../source.js";

/**
 * A directory tree, read by relative POSIX paths (`""` is the root, `"step-10/.metadata"` a file below it).
 * Sharded checkpoints are directories of many files; every reader in `sharded/` goes through this and nothing
 * else, so the same code runs over the file system (`NodeTree`, beside `FileSource`), an in-memory tree in a
 * test, or a browser's directory handle.
 */
export interface TreeSource {
  /** Name of the root for messages (the path as the user gave it). */
  readonly name: string;
  /** The entries of a directory, sorted by name; `undefined` when `dir` is not a directory. */
  list(dir: string): TreeEntry[] | undefined;
  /** What is at `path`, following symbolic links; `undefined` when nothing is. */
  stat(path: string): TreeStat | undefined;
  /**
   * The file's bytes. The caller closes the source.
   * @throws ReaderError `file-not-found`, `not-a-file`, `io-error`
   */
  open(path: string): ByteSource;
}

export type TreeEntryKind = "file" | "directory" | "other";

export interface TreeStat {
  readonly kind: TreeEntryKind;
  /** Bytes, for files; 0 otherwise. */
  readonly size: number;
}

export interface TreeEntry extends TreeStat {
  readonly name: string;
}

/**
 * A relative path from parts, normalised (`.` and empty segments dropped, `a/../b` is `b`).
 * @throws ReaderError `not-a-file` when the path climbs above the root: names read from a checkpoint (an
 * index's shard names, DCP's `relative_path`) must not lead a reader out of the checkpoint's directory.
 */
export function joinPath(...parts: string[]): string {
  const out: string[] = [];
  for (const part of parts) {
    for (const segment of part.split("/")) {
      if (segment === "" || segment === ".") continue;
      if (segment === "..") {
        if (out.length === 0) {
          throw new ReaderError("not-a-file", `the path ${parts.join("/")} leads outside the tree`);
        }
        out.pop();
      } else out.push(segment);
    }
  }
  return out.join("/");
}

/** Whether `name` is one plain file name: no separator, not `.` or `..` (what an index or metadata should name). */
export function isPlainName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\\");
}

export function baseName(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? path : path.slice(at + 1);
}

export function parentPath(path: string): string {
  const at = path.lastIndexOf("/");
  return at < 0 ? "" : path.slice(0, at);
}

/**
 * Wraps a tree and counts what is read through it, per file: the proof that reading a sharded checkpoint's
 * structure touches only its metadata, indexes and headers.
 */
export class CountingTree implements TreeSource {
  readonly name: string;
  private readonly inner: TreeSource;
  private readonly sources: Array<{ readonly path: string; readonly source: CountingSource }> = [];

  constructor(inner: TreeSource) {
    this.inner = inner;
    this.name = inner.name;
  }

  list(dir: string): TreeEntry[] | undefined {
    return this.inner.list(dir);
  }

  stat(path: string): TreeStat | undefined {
    return this.inner.stat(path);
  }

  open(path: string): ByteSource {
    const source = new CountingSource(this.inner.open(path));
    this.sources.push({ path: joinPath(path), source });
    return source;
  }

  /** Bytes read through every source this tree opened. */
  get bytesRead(): number {
    return this.sources.reduce((sum, s) => sum + s.source.bytesRead, 0);
  }

  get readCount(): number {
    return this.sources.reduce((sum, s) => sum + s.source.readCount, 0);
  }

  /** Bytes read, per file path (a file opened twice counts once, with both openings' reads). */
  bytesByFile(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { path, source } of this.sources) out.set(path, (out.get(path) ?? 0) + source.bytesRead);
    return out;
  }
}
