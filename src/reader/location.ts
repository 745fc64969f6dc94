import { existsSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import type { Checkpoint } from "./checkpoint.js";
import { ReaderError } from "./errors.js";
import { FileSource } from "./fileSource.js";
import { NodeTree } from "./nodeTree.js";
import { readCheckpoint as readLocal } from "./open.js";
import { POSIX_PATHS } from "./pointer.js";
import { readCheckpoint } from "./read.js";
import { awsSettings } from "./remote/awsConfig.js";
import { digestRemote } from "./remote/digest.js";
import {
  displayName,
  isRemotePath,
  objectTarget,
  parseRemote,
  type RemoteLocation,
} from "./remote/location.js";
import { nodeChannel } from "./remote/nodeChannel.js";
import type { Transfer } from "./remote/protocol.js";
import { type RemoteContext, RemoteSource, remoteSettings, transferOf } from "./remote/remoteSource.js";
import { HfTree, HttpTree, S3Tree } from "./remote/trees.js";
import type { ByteSource } from "./source.js";
import type { TreeSource } from "./tree.js";

/**
 * The one place in Node where a path the user typed becomes bytes: a local file or directory, or a remote one
 * (`https://`, `s3://`, `hf://`). Everything above reads through the `ByteSource` or `TreeSource` this returns,
 * so local and remote inputs go through the same readers and give the same answers. The remote sources are
 * portable (`remote/`); this file gives them Node's worker, environment and `~/.aws` files.
 */

export { isRemotePath, transferOf };

export type Opened =
  | { readonly kind: "file"; readonly source: ByteSource }
  | { readonly kind: "directory"; readonly tree: TreeSource };

/** A remote tree, with what it moved and a close that makes that final. */
export type RemoteTreeSource = TreeSource & { totals(): Transfer; close(): void };

/** Settings are read from the environment at each open (a library caller may change them between opens). */
function remoteContext(): RemoteContext {
  return { channel: nodeChannel, settings: remoteSettings(process.env), digest: digestRemote };
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Read at each s3:// path, like `remoteContext`: the environment is the caller's to change. */
function locate(path: string): RemoteLocation {
  return parseRemote(path, process.env, () => awsSettings(process.env, readText, homedir()));
}

function remoteTree(location: RemoteLocation, name: string): RemoteTreeSource {
  switch (location.kind) {
    case "s3":
      return new S3Tree(location, name, remoteContext());
    case "hf":
      return new HfTree(location, name, remoteContext());
    case "http":
      throw new ReaderError(
        "remote-unsupported",
        "a plain HTTP server has no listing of a directory: name a file on it",
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
  const location = locate(path);
  if (namesDirectory(location)) {
    throw new ReaderError("not-a-file", "a remote directory, not a file", { file: path });
  }
  return RemoteSource.open(objectTarget(location), path, remoteContext());
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
    return directory
      ? { kind: "directory", tree: new NodeTree(path) }
      : { kind: "file", source: FileSource.open(path) };
  }
  const location = locate(path);
  if (namesDirectory(location)) return { kind: "directory", tree: existingTree(location, path) };
  try {
    return { kind: "file", source: RemoteSource.open(objectTarget(location), path, remoteContext()) };
  } catch (error) {
    if (!(error instanceof ReaderError) || error.code !== "remote-not-found" || location.kind === "http")
      throw error;
    const tree = remoteTree(location, path);
    if (!tree.list("")) throw error;
    return { kind: "directory", tree };
  }
}

function existingTree(location: RemoteLocation, path: string): RemoteTreeSource {
  const tree = remoteTree(location, path);
  if (!tree.list("")) {
    throw new ReaderError("remote-not-found", `no objects under ${displayName(location)}`, { file: path });
  }
  return tree;
}

/** Whether anything is at `path`: a local file or directory, a remote object or non-empty directory. */
export function pathExists(path: string): boolean {
  if (!isRemotePath(path)) return existsSync(path);
  try {
    const opened = openLocation(path);
    if (opened.kind === "file") opened.source.close();
    return true;
  } catch (error) {
    if (
      error instanceof ReaderError &&
      (error.code === "remote-not-found" || error.code === "remote-unsupported")
    )
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

/**
 * The directory a remote file sits in, for looking up the files its framework saves beside it (AllenNLP's
 * `model_state_*.th`): an S3 prefix or Hub directory lists itself (one request, made only when asked); a
 * plain HTTP directory probes each name asked for. `file` is the remote file's name in that tree.
 */
export function remoteNeighbours(path: string): { tree: RemoteTreeSource; file: string } {
  const slash = path.lastIndexOf("/");
  const parent = path.slice(0, slash + 1);
  const location = locate(parent);
  const name = parent.replace(/\/+$/, "");
  const tree =
    location.kind === "http" ? new HttpTree(location, name, [], remoteContext()) : remoteTree(location, name);
  return { tree, file: path.slice(slash + 1) };
}
