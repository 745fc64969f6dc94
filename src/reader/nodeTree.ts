import { lstatSync, readdirSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ReaderError } from "./errors.js";
import { FileSource } from "./fileSource.js";
import { openSharded, type ShardedCheckpoint } from "./sharded/open.js";
import type { ByteSource } from "./source.js";
import { joinPath, type TreeEntry, type TreeEntryKind, type TreeSource, type TreeStat } from "./tree.js";

/** A directory on the file system as a `TreeSource`: files open as `FileSource`s (positional reads, no cache). */
export class NodeTree implements TreeSource {
  readonly name: string;
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.name = root;
  }

  list(dir: string): TreeEntry[] | undefined {
    const path = this.resolve(dir);
    let names: string[];
    try {
      if (!statSync(path).isDirectory()) return undefined;
      names = readdirSync(path);
    } catch {
      return undefined;
    }
    names.sort();
    return names.map((name) => {
      const { missing: _, ...stats } = statOf(join(path, name));
      return { name, ...stats };
    });
  }

  stat(path: string): TreeStat | undefined {
    const stats = statOf(this.resolve(path));
    if (stats.kind === "other" && stats.missing) return undefined;
    return {
      kind: stats.kind,
      size: stats.size,
      ...(stats.mtimeMs !== undefined ? { mtimeMs: stats.mtimeMs } : {}),
    };
  }

  open(path: string): ByteSource {
    return FileSource.open(this.resolve(path));
  }

  readlink(path: string): string | undefined {
    const full = this.resolve(path);
    try {
      return lstatSync(full).isSymbolicLink() ? readlinkSync(full) : undefined;
    } catch {
      return undefined;
    }
  }

  realpath(path: string): string {
    const full = this.resolve(path);
    try {
      return realpathSync(full);
    } catch {
      return full;
    }
  }

  private resolve(path: string): string {
    const relative = joinPath(path);
    return relative === "" ? this.root : join(this.root, relative);
  }
}

/**
 * Opens a sharded checkpoint on the file system: a DCP or DeepSpeed directory, a Hugging Face directory, or an
 * `*.index.json` file (its directory becomes the tree). Close it with `closeSharded`.
 */
export function openShardedPath(path: string): ShardedCheckpoint {
  const stats = statOf(path);
  if (stats.kind === "file") return openSharded(new NodeTree(dirname(path)), basename(path));
  if (stats.missing) throw new ReaderError("file-not-found", "no such file or directory", { file: path });
  return openSharded(new NodeTree(path));
}

function statOf(path: string): { kind: TreeEntryKind; size: number; mtimeMs?: number; missing?: boolean } {
  try {
    const stats = statSync(path);
    const kind: TreeEntryKind = stats.isFile() ? "file" : stats.isDirectory() ? "directory" : "other";
    return { kind, size: stats.isFile() ? stats.size : 0, mtimeMs: stats.mtimeMs };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "other", size: 0, missing: true };
    // A dangling link or a file we may not stat: present, but not readable as a file.
    if (code === "ELOOP" || code === "EACCES") return { kind: "other", size: 0 };
    throw new ReaderError("io-error", `cannot be examined (${code ?? String(error)})`, { file: path });
  }
}
