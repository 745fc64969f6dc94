import { errorReport } from "../cli/errors.js";
import { inspectCheckpoint } from "../inspect/report.js";
import { auditTree } from "../inspect/runs/audit.js";
import { scanReportOf } from "../inspect/security/report.js";
import { scanCheckpoint } from "../inspect/security/scan.js";
import { completenessFindings } from "../inspect/sharded/completeness.js";
import { tensorSha256 } from "../inspect/tensorValues.js";
import { treeFiles } from "../inspect/treeFiles.js";
import { findTensors } from "../inspect/walk.js";
import { type Checkpoint, hasTensors } from "../reader/checkpoint.js";
import { ReaderError } from "../reader/errors.js";
import type { TorchTensor } from "../reader/pickle/value.js";
import { POSIX_PATHS } from "../reader/pointer.js";
import { type ReadContext, readCheckpoint } from "../reader/read.js";
import { closeSharded, openSharded, shardedTensors } from "../reader/sharded/open.js";
import { type ByteSource, CountingSource } from "../reader/source.js";
import { joinPath, type TreeSource } from "../reader/tree.js";
import { BlobSource } from "../reader/web/blobSource.js";
import { FileTree } from "../reader/web/fileTree.js";
import { HttpTree } from "./httpSource.js";
import type { FolderView, Reply, Request } from "./protocol.js";

/**
 * The page's worker: all reading and judging happens here, off the page's thread, because the reader is
 * synchronous (`FileReaderSync`, synchronous range requests) and a hash of a large tensor takes seconds.
 */

interface Open {
  readonly checkpoint: Checkpoint;
  /** In the order of the report's `tensors`, for hashing by index. */
  readonly tensors: readonly TorchTensor[];
}

let open: Open | undefined;
let tree: (TreeSource & { files(): string[] }) | undefined;

/**
 * Replies go as JSON text: a report of 200,000 tensors is one string to copy, where structured cloning walks
 * millions of small objects (measured on 200,000 tensors in Chromium, on a loaded machine: 4.8 s for stringify, copy and parse, against 6.9 s for the clone).
 */
function post(reply: Reply): void {
  (globalThis as unknown as { postMessage(message: string): void }).postMessage(JSON.stringify(reply));
}

function close(): void {
  open?.checkpoint.source.close();
  open = undefined;
}

/** Pointer files in a folder resolve against the folder; a single file has nothing beside it. */
function contextOf(source: TreeSource | undefined): ReadContext | undefined {
  if (!source) return undefined;
  return { exists: (path) => source.stat(path) !== undefined, paths: POSIX_PATHS };
}

/**
 * `ckpt inspect` and `ckpt scan` of one file, as the CLI makes them (`inspectCheckpoint`, `scanCheckpoint`:
 * the pickles read while loading are scanned, nothing is read twice). `path`: where the file is in the open
 * folder, for the companions its framework loads beside it.
 */
function inspectSource(bytes: ByteSource, name: string, path?: string): void {
  const started = performance.now();
  close();
  const source = new CountingSource(bytes);
  let checkpoint: Checkpoint;
  try {
    checkpoint = readCheckpoint(source, name, contextOf(path === undefined ? undefined : tree));
  } catch (error) {
    source.close();
    if (error instanceof ReaderError) error.file ??= name;
    throw error;
  }
  const inspect = inspectCheckpoint(
    checkpoint,
    name,
    tree && path !== undefined ? { neighbours: { fs: treeFiles(tree), path: `/${joinPath(path)}` } } : {},
  );
  const scan = scanReportOf(name, scanCheckpoint(checkpoint));
  const tensors = hasTensors(checkpoint) ? findTensors(checkpoint.root).tensors.map((t) => t.tensor) : [];
  open = { checkpoint, tensors };
  const read = { bytes: source.bytesRead, reads: source.readCount };
  post({ kind: "file", view: { inspect, scan, read }, ms: performance.now() - started });
}

/** `ckpt audit` of the folder: every run in it planned as `resume-plan` plans it, and its loose files. */
async function auditOf(source: TreeSource): Promise<Pick<FolderView, "audit" | "auditError">> {
  try {
    const audit = await auditTree(["/"], { verify: "chosen", jobs: 1, fs: treeFiles(source) });
    return { audit, auditError: null };
  } catch (error) {
    return { audit: null, auditError: errorReport(source.name, error) };
  }
}

async function openFolder(source: TreeSource & { files(): string[] }): Promise<void> {
  const started = performance.now();
  close();
  tree = source;
  const audited = await auditOf(source);
  const files = source.files().map((path) => ({ path, size: source.stat(path)?.size ?? 0 }));
  let sharded: FolderView["sharded"] = null;
  let shardedError: FolderView["shardedError"] = null;
  try {
    const checkpoint = openSharded(source);
    try {
      sharded = {
        kind: checkpoint.kind,
        tensors: shardedTensors(checkpoint).map(({ name, dtype, shape }) => ({ name, dtype, shape })),
        findings: [...completenessFindings(checkpoint)],
      };
    } finally {
      closeSharded(checkpoint);
    }
  } catch (error) {
    const report = errorReport(source.name, error);
    // A folder that is no sharded checkpoint is still a folder of files: that is no error worth showing.
    if (report.code !== "not-a-checkpoint") shardedError = report;
  }
  post({
    kind: "folder",
    view: { name: source.name, ...audited, files, sharded, shardedError },
    ms: performance.now() - started,
  });
}

function hash(index: number): void {
  const started = performance.now();
  const tensor = open?.tensors[index];
  const checkpoint = open?.checkpoint;
  if (!tensor || !checkpoint || !hasTensors(checkpoint)) {
    throw new ReaderError("io-error", `no tensor ${index} in the open file`);
  }
  if (!tensor.storage) {
    const error = {
      schema: "ckpt.error/1",
      file: checkpoint.source.name,
      code: "no-data",
      message: "this tensor has no data to hash",
    } as const;
    post({ kind: "hash-error", index, error });
    return;
  }
  const sha256 = tensorSha256(checkpoint, tensor);
  post({ kind: "hash", index, sha256, ms: performance.now() - started });
}

async function handle(request: Request): Promise<void> {
  switch (request.kind) {
    case "open-file":
      tree = undefined;
      inspectSource(new BlobSource(request.file, request.name), request.name);
      break;
    case "open-folder":
      await openFolder(new FileTree(request.name, request.files));
      break;
    case "open-served": {
      const { listing } = request;
      const served = new HttpTree(listing);
      if (listing.kind === "directory") {
        await openFolder(served);
        break;
      }
      tree = undefined;
      const only = listing.files[0];
      if (!only) throw new ReaderError("file-not-found", "the server lists no file");
      inspectSource(served.open(only.path), listing.name);
      break;
    }
    case "open-in-folder":
      if (!tree) throw new ReaderError("file-not-found", "no folder is open");
      inspectSource(tree.open(request.path), request.path, request.path);
      break;
    case "hash":
      hash(request.index);
      break;
  }
}

(globalThis as unknown as { onmessage: (event: { data: Request }) => void }).onmessage = (event) => {
  const request = event.data;
  handle(request).catch((error: unknown) => {
    const name =
      request.kind === "open-file" ? request.name : request.kind === "open-in-folder" ? request.path : "";
    const report = errorReport(error instanceof ReaderError ? (error.file ?? name) : name, error);
    post(
      request.kind === "hash"
        ? { kind: "hash-error", index: request.index, error: report }
        : { kind: "error", error: report },
    );
  });
};
