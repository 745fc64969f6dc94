import { ReaderError } from "./errors.js";
import { type ByteSource, CountingSource } from "./source.js";

/**
 * A directory tree, read by POSIX paths below its root (`""` is the root, `"step-10/.metadata"` a file below
 * it; a leading `/` is the root too, so a tree rooted at the file system's `/` takes absolute paths as they
 * are). Every reader of directories goes through this and nothing else (sharded checkpoints, run layouts,
 * pointers, the audit walk), so the same code runs over the file system (`NodeTree`, beside `FileSource`), an
 * in-memory tree in a test, an object store's prefix, or a folder dropped on a web page.
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
  /**
   * The text of a symbolic link at `path` (not followed), or `undefined` when `path` is not one. Trees without
   * links (object stores, dropped folders) leave this out.
   */
  readlink?(path: string): string | undefined;
  /** A name for `path` that is the same for every route to it (links resolved): walks use it to stop loops. */
  realpath?(path: string): string;
}

export type TreeEntryKind = "file" | "directory" | "other";

export interface TreeStat {
  readonly kind: TreeEntryKind;
  /** Bytes, for files; 0 otherwise. */
  readonly size: number;
  /** Last modification, in ms since the epoch, where the tree knows it. */
  readonly mtimeMs?: number;
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

/** Reads a small text file (a pointer, a YAML config, `trainer_state.json`), or `undefined` when unreadable. */
export function readTreeText(tree: TreeSource, path: string, maxBytes = 1 << 20): string | undefined {
  const stats = tree.stat(path);
  if (stats?.kind !== "file" || stats.size > maxBytes) return undefined;
  let source: ByteSource | undefined;
  try {
    source = tree.open(path);
    return new TextDecoder().decode(source.read(0, source.size));
  } catch {
    return undefined;
  } finally {
    source?.close();
  }
}

/** Whether something is at `path` (following links: a dangling link is nothing). */
export function existsInTree(tree: TreeSource, path: string): boolean {
  return tree.stat(path) !== undefined;
}

/** The sorted names in a directory; empty when it is none. */
export function listNames(tree: TreeSource, dir: string): string[] {
  return (tree.list(dir) ?? []).map((e) => e.name);
}

/**
 * `use` of the file at `path`, opened for it and closed after: when `use` answers a promise, once that
 * settles (a CRC check streams the file asynchronously).
 */
export function withOpened<T>(tree: TreeSource, path: string, use: (source: ByteSource) => T): T {
  const source = tree.open(path);
  let result: T;
  try {
    result = use(source);
  } catch (error) {
    source.close();
    throw error;
  }
  if (result instanceof Promise) return result.finally(() => source.close()) as T;
  source.close();
  return result;
}
