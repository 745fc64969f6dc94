import { existsSync, statSync } from "node:fs";
import { ReaderError } from "./errors.js";
import { NodeTree } from "./nodeTree.js";
import { readCheckpoint as readLocal } from "./open.js";
import { POSIX_PATHS } from "./pointer.js";
import { readCheckpoint } from "./read.js";
import type { Checkpoint } from "./checkpoint.js";
import { displayName, isRemotePath, objectTarget, parseRemote, type RemoteLocation } from "./remote/location.js";
import { RemoteSource, transferOf } from "./remote/remoteSource.js";
import { HfTree, HttpTree, S3Tree } from "./remote/trees.js";
import type { TreeSource } from "./tree.js";
import { FileSource } from "./fileSource.js";
import type { ByteSource } from "./source.js";

/**
 * The one place a path the user typed becomes bytes: a local file or directory, or a remote one (`https://`,
 * `s3://`, `hf://`). Everything above reads through the `ByteSource` or `TreeSource` this returns, so local and
 * remote inputs go through the same readers and give the same answers.
 */

export { isRemotePath, transferOf };

export type Opened =
  | { readonly kind: "file"; readonly source: ByteSource }
  | { readonly kind: "directory"; readonly tree: TreeSource };

function remoteTree(location: RemoteLocation, name: string): TreeSource {
  switch (location.kind) {
    case "s3":
      return new S3Tree(location, name);
    case "hf":
      return new HfTree(location, name);
    case "http":
      throw new ReaderError(
        "remote-unsupported",
        "a plain HTTP server has no listing of a directory: name a file, or the *.index.json or .metadata of a sharded checkpoint",
        { file: name },
      );
  }
}

/** Whether the location names a directory by its form alone (`s3://bucket/`, `hf://org/repo`, a URL ending in `/`). */
function namesDirectory(location: RemoteLocation): boolean {
  switch (location.kind) {
    case "http":
      return location.url.pathname.endsWith("/");
    case "s3":
      return location.key === "" || location.key.endsWith("/");
    case "hf":
      return location.path === "";
  }
}

/**
 * A file (local, or a remote object) as a `ByteSource`.
 * @throws ReaderError as `FileSource.open` does, `remote-*` codes for remote paths.
 */
export function openSource(path: string): ByteSource {
  if (!isRemotePath(path)) return FileSource.open(path);
  const location = parseRemote(path);
  if (namesDirectory(location)) {
    throw new ReaderError("not-a-file", "a remote directory, not a file", { file: path });
  }
  return RemoteSource.open(objectTarget(location), path);
}

/**
 * A file or a directory, whichever `path` is: remote paths are tried as an object first, then (on 404) as an
 * S3 prefix or Hub directory, as `aws s3 ls` and the Hub do.
 */
export function openLocation(path: string): Opened {
  if (!isRemotePath(path)) {
    let directory = false;
    try {
      directory = statSync(path).isDirectory();
    } catch {
      // Missing paths are FileSource.open's to report, with their code.
    }
    return directory ? { kind: "directory", tree: new NodeTree(path) } : { kind: "file", source: FileSource.open(path) };
  }
  const location = parseRemote(path);
  if (namesDirectory(location)) return { kind: "directory", tree: existingTree(location, path) };
  try {
    return { kind: "file", source: RemoteSource.open(objectTarget(location), path) };
  } catch (error) {
    if (!(error instanceof ReaderError) || error.code !== "remote-not-found" || location.kind === "http") throw error;
    const tree = remoteTree(location, path);
    if (!tree.list("")) throw error;
    return { kind: "directory", tree };
  }
}

function existingTree(location: RemoteLocation, path: string): TreeSource {
  const tree = remoteTree(location, path);
  if (!tree.list("")) {
    throw new ReaderError("remote-not-found", `no objects under ${displayName(location)}`, { file: path });
  }
  return tree;
}

/**
 * The directory a sharded checkpoint lives in, and the path to open in it (an index file, or `""`): for a
 * remote `*.index.json` or DCP `.metadata`, the tree of its directory; over plain HTTP, a tree that knows the
 * files the index or metadata names (`names`), since HTTP has no listing.
 */
export function shardedTreeAt(path: string, names: (tree: TreeSource, file: string) => string[] = () => []): {
  tree: TreeSource;
  path: string;
} {
  if (!isRemotePath(path)) throw new ReaderError("remote-unsupported", "not a remote path", { file: path });
  const location = parseRemote(path);
  const slash = path.replace(/\/+$/, "").lastIndexOf("/");
  const file = path.slice(slash + 1);
  const isFile = file === ".metadata" || file.endsWith(".index.json");
  if (location.kind === "http") {
    if (!isFile) return { tree: remoteTree(location, path), path: "" };
    const parent = path.slice(0, slash + 1);
    const seed = new HttpTree(parseRemote(parent), parent.replace(/\/$/, ""), [file]);
    const known = [file, ...names(seed, file)];
    const tree = new HttpTree(parseRemote(parent), parent.replace(/\/$/, ""), known);
    return { tree, path: file === ".metadata" ? "" : file };
  }
  if (!isFile) return { tree: existingTree(location, path), path: "" };
  const parent = parseRemote(path.slice(0, slash + 1));
  return { tree: remoteTree(parent, path.slice(0, slash)), path: file === ".metadata" ? "" : file };
}

/** Whether anything is at `path`: a local file or directory, a remote object or non-empty directory. */
export function pathExists(path: string): boolean {
  if (!isRemotePath(path)) return existsSync(path);
  try {
    const opened = openLocation(path);
    if (opened.kind === "file") opened.source.close();
    return true;
  } catch (error) {
    if (error instanceof ReaderError && (error.code === "remote-not-found" || error.code === "remote-unsupported"))
      return false;
    throw error;
  }
}

/**
 * The checkpoint in `source`, opened for `path`: a pointer's target is looked up where the pointer lives (the
 * file system, or the pointer's server, by the URL beside it).
 */
export function readLocated(source: ByteSource, path: string): Checkpoint {
  if (!isRemotePath(path)) return readLocal(source, path);
  return readCheckpoint(source, path, { exists: pathExists, paths: POSIX_PATHS });
}
