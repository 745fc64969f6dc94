import { readTreeText, type TreeSource } from "../reader/tree.js";

/**
 * The few questions run analysis asks of a directory tree, over any `TreeSource` (the file system, an object
 * store's prefix, a dropped folder). Paths are absolute POSIX paths in the tree's own namespace; nothing here
 * throws for a path that is not there.
 */
export interface TreeFiles {
  readonly tree: TreeSource;
  isFile(path: string): boolean;
  isDirectory(path: string): boolean;
  exists(path: string): boolean;
  /** Sorted names; empty when `dir` is no directory. */
  list(dir: string): string[];
  readText(path: string, maxBytes?: number): string | undefined;
  /** The text of a symbolic link, or undefined when `path` is none (or the tree has no links). */
  readlink(path: string): string | undefined;
  /** Present as a file, a directory or a link (even a dangling one). */
  present(path: string): boolean;
  mtimeMs(path: string): number;
  size(path: string): number;
  realpath(path: string): string;
}

export function treeFiles(tree: TreeSource): TreeFiles {
  const stat = (path: string) => tree.stat(path);
  const readlink = (path: string) => tree.readlink?.(path);
  return {
    tree,
    isFile: (path) => stat(path)?.kind === "file",
    isDirectory: (path) => stat(path)?.kind === "directory",
    exists: (path) => stat(path) !== undefined,
    list: (dir) => (tree.list(dir) ?? []).map((e) => e.name),
    readText: (path, maxBytes = 64 << 20) => readTreeText(tree, path, maxBytes),
    readlink,
    present: (path) => stat(path) !== undefined || readlink(path) !== undefined,
    mtimeMs: (path) => stat(path)?.mtimeMs ?? 0,
    size: (path) => stat(path)?.size ?? 0,
    realpath: (path) => tree.realpath?.(path) ?? path,
  };
}
