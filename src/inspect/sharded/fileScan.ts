import type { FileScan } from "../security/scan.js";

/**
 * Every pickle of a sharded checkpoint, file by file, scanned as the framework's load would meet it. A DCP
 * data file is a run of `torch.save` archives, one per item, so each item is scanned on its own bytes (a
 * zip reader looking at the whole file would see only the last one); `.metadata` is a bare pickle that
 * `FileSystemReader.read_metadata` hands to `pickle.load`, and bytes items go to `torch.load(weights_only=False)`
 * (`DefaultLoadPlanner.load_bytes`), so what they name runs on `dcp.load`; tensor items load with
 * `weights_only=True`.
 */
export type ShardedFileRole = "metadata" | "data" | "model-states" | "optim-states" | "shard";

export interface ShardedFileScan {
  /** Relative to the checkpoint's directory. */
  readonly file: string;
  readonly role: ShardedFileRole;
  /** Items scanned in it (DCP data files), else 1. */
  readonly items: number;
  /** How the framework loads it, which decides what its globals can do. */
  readonly loadedBy: string;
  readonly scan: FileScan;
}

/**
 * The items of one DCP data file that lie inside it, in offset order, as columns of numbers: a worker thread
 * is sent them without a copy of the checkpoint.
 */
export interface ItemColumns {
  readonly offsets: Float64Array;
  readonly lengths: Float64Array;
  /** 1 for a bytes item (torch.load runs it unrestricted), 0 for a tensor chunk. */
  readonly bytes: Uint8Array;
  /** Each item's FQN (which names its records in the file's scan), as an index into the job's labels. */
  readonly labels: Int32Array;
  /** 1 for an item written through storage transforms (`transform_descriptors`: compressed, say). */
  readonly transformed: Uint8Array;
}

/** A data file as its scan takes it. */
export interface DataFileItems {
  /** Relative to the checkpoint's directory. */
  readonly file: string;
  readonly columns: ItemColumns;
  /** It holds a bytes item (the file's loader then runs torch.load unrestricted on some of it). */
  readonly hasBytes: boolean;
}
