import type { ErrorReport } from "../cli/errors.js";
import type { InspectReport } from "../inspect/report.js";
import type { AuditReport } from "../inspect/runs/audit.js";
import type { ScanReport } from "../inspect/security/report.js";
import type { ShardedFinding } from "../reader/sharded/findings.js";
import type { TreeFile } from "../reader/web/fileTree.js";

/**
 * What the page and its worker say to each other. The worker reads and judges (the same `src/reader` and
 * `src/inspect` code as the CLI); the page only renders the plain-data reports it gets back.
 */

/** A file the `ckpt view` server serves: read by HTTP range requests from the page's own origin. */
export interface ServedFile {
  readonly path: string;
  readonly size: number;
  readonly url: string;
}

/** What `ckpt view` serves at `/ckpt-view.json`. */
export interface ServedListing {
  readonly name: string;
  readonly kind: "file" | "directory";
  readonly files: readonly ServedFile[];
}

export type Request =
  | { readonly kind: "open-file"; readonly file: Blob; readonly name: string }
  | { readonly kind: "open-folder"; readonly name: string; readonly files: readonly TreeFile[] }
  | { readonly kind: "open-served"; readonly listing: ServedListing }
  /** Inspect one file of the open folder. */
  | { readonly kind: "open-in-folder"; readonly path: string }
  /** sha256 of tensor `index` of the open file's report. */
  | { readonly kind: "hash"; readonly index: number };

/** How much of the file the reader read: the proof that a 6 GB file is read by slices, not whole. */
export interface BytesRead {
  readonly bytes: number;
  readonly reads: number;
}

/** A file's report: what `ckpt inspect --json` and `ckpt scan --json` say of it. */
export interface FileView {
  readonly inspect: InspectReport;
  readonly scan: ScanReport;
  readonly read: BytesRead;
}

/** One tensor of a sharded checkpoint, assembled from its shards. */
export interface ShardedTensorRow {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
}

export interface ShardedView {
  readonly kind: string;
  readonly tensors: readonly ShardedTensorRow[];
  readonly findings: readonly ShardedFinding[];
}

/** A folder's report: what `ckpt audit` says of it (every run's resume plan), its files, its shards. */
export interface FolderView {
  readonly name: string;
  readonly audit: AuditReport | null;
  /** Why there is no audit (`no-checkpoints`: a folder with no run and no checkpoint file). */
  readonly auditError: ErrorReport | null;
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number }>;
  readonly sharded: ShardedView | null;
  /** Why the folder is not one sharded checkpoint when a reader said so (it can still be a run). */
  readonly shardedError: ErrorReport | null;
}

export type Reply =
  | { readonly kind: "file"; readonly view: FileView; readonly ms: number }
  | { readonly kind: "folder"; readonly view: FolderView; readonly ms: number }
  | { readonly kind: "error"; readonly error: ErrorReport }
  | { readonly kind: "hash"; readonly index: number; readonly sha256: string; readonly ms: number }
  | { readonly kind: "hash-error"; readonly index: number; readonly error: ErrorReport };
