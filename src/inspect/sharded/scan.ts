import { ReaderError } from "../../reader/errors.js";
import { dataFileReader } from "../../reader/sharded/dcp/dataFile.js";
import { ItemLayouts, itemLayoutOf } from "../../reader/sharded/dcp/itemLayout.js";
import {
  type DcpCheckpoint,
  joinPath,
  RangeSource,
  type ShardedCheckpoint,
} from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { looksLikeZip } from "../../reader/zip.js";
import { mergeScans } from "../security/mergeScans.js";
import { type FileScan, scanParsedPickle, scanSource, unopenedScan } from "../security/scan.js";
import { ScanMemo } from "../security/scanner.js";

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

function withSource<T>(tree: ShardedCheckpoint["tree"], path: string, use: (source: ByteSource) => T): T {
  const source = tree.open(path);
  try {
    return use(source);
  } finally {
    source.close();
  }
}

/** One item of a data file: a tensor chunk's or a bytes item's `torch.save` archive. */
interface DataFileItem {
  readonly offset: number;
  readonly length: number;
  /** The FQN, which names the item's records in the file's scan. */
  readonly label: string;
  /** A bytes item (torch.load runs it unrestricted), not a tensor chunk. */
  readonly bytes: boolean;
}

/**
 * The items `storage_data` puts in each data file, by offset (one per offset, a bytes item over a chunk):
 * gathered in one pass over the chunks, where a pass per file made a run of hundreds of ranks quadratic.
 */
function itemsByFile(checkpoint: DcpCheckpoint): Map<string, Map<number, DataFileItem>> {
  const files = new Map<string, Map<number, DataFileItem>>();
  const add = (file: string, item: DataFileItem, replace: boolean) => {
    let items = files.get(file);
    if (!items) {
      items = new Map();
      files.set(file, items);
    }
    if (replace || !items.has(item.offset)) items.set(item.offset, item);
  };
  for (const tensor of checkpoint.tensors) {
    for (const chunk of tensor.chunks) {
      const info = chunk.storage;
      if (info)
        add(
          info.relativePath,
          { offset: info.offset, length: info.length, label: tensor.fqn, bytes: false },
          false,
        );
    }
  }
  for (const item of checkpoint.bytesItems) {
    const info = item.storage;
    if (info)
      add(
        info.relativePath,
        { offset: info.offset, length: info.length, label: item.fqn, bytes: true },
        true,
      );
  }
  return files;
}

/** A file's items that lie inside its `size` bytes, in offset order, and whether it holds a bytes item. */
function dataFileItems(
  byOffset: ReadonlyMap<number, DataFileItem> | undefined,
  size: number,
): { readonly items: DataFileItem[]; readonly hasBytes: boolean } {
  const all = [...(byOffset?.values() ?? [])];
  return {
    items: all.sort((a, b) => a.offset - b.offset).filter((item) => item.offset + item.length <= size),
    hasBytes: all.some((item) => item.bytes),
  };
}

/**
 * Each item's scan, in the order of `items`, read from the data file `raw`. Items of one layout share one
 * scan object (itemLayout.ts); the others are scanned, bytes items deep.
 */
function scanDataFileItems(raw: ByteSource, items: readonly DataFileItem[]): FileScan[] {
  // Every item's archive is a dozen tiny reads: served from cached blocks, in offset order.
  const source = dataFileReader(raw, items.length);
  const memo = new ScanMemo();
  const layouts = new ItemLayouts<FileScan>();
  const tensorItemScan = (range: RangeSource): FileScan => {
    const same = layouts.find(range);
    if (same) return same;
    const scan = scanSource(range, { memo });
    const layout = itemLayoutOf(range);
    if (layout) layouts.remember(layout, scan);
    return scan;
  };
  return items.map(({ offset, length, bytes, label }) => {
    // With SerializationFormat.SAFETENSORS a tensor's offset is where the file's one safetensors blob
    // starts, and the blob runs to the end of the file.
    const blob = !bytes && !looksLikeZip(source.read(offset, Math.min(4, source.size - offset)));
    const range = new RangeSource(source, offset, blob ? source.size - offset : length);
    try {
      // Deep (every member probed as a pickle) only for bytes items, which torch.load runs unrestricted;
      // a tensor item's loader reads its data.pkl with weights_only=True and nothing else in it.
      return bytes || blob ? scanSource(range, { deep: bytes, memo }) : tensorItemScan(range);
    } catch (error) {
      // One damaged item's archive: that item is unscanned, the file's other items are still scanned.
      if (!(error instanceof ReaderError)) throw error;
      return unopenedScan(label, error.message);
    }
  });
}

/** Data file `file`'s record: its items' scans merged, each item's records named by its label. */
function dataFileScan(
  file: string,
  items: readonly DataFileItem[],
  hasBytes: boolean,
  scans: readonly FileScan[],
): ShardedFileScan {
  const parts = items.map((item, i) => ({
    label: item.label,
    bytes: item.bytes,
    scan: scans[i] as FileScan,
  }));
  return {
    file,
    role: "data",
    items: parts.length,
    loadedBy: hasBytes
      ? "dcp.load: bytes items with torch.load(weights_only=False), tensors with weights_only=True"
      : "dcp.load: tensors with torch.load(weights_only=True)",
    // The file's format is its tensors' (a torch.save archive each, or one safetensors blob).
    scan: mergeScans((parts.find((p) => !p.bytes) ?? parts[0])?.scan.format ?? "other", parts),
  };
}

function dcpDataScan(
  checkpoint: DcpCheckpoint,
  file: string,
  byOffset: ReadonlyMap<number, DataFileItem> | undefined,
): ShardedFileScan {
  return withSource(checkpoint.tree, joinPath(checkpoint.dir, file), (raw) => {
    const { items, hasBytes } = dataFileItems(byOffset, raw.size);
    return dataFileScan(file, items, hasBytes, scanDataFileItems(raw, items));
  });
}

/** `.metadata`'s record, when the checkpoint has one. */
function dcpMetadataScan(checkpoint: DcpCheckpoint): ShardedFileScan | undefined {
  if (checkpoint.metadataFile === null) return undefined;
  // Opening decoded `.metadata` already; its parse is adopted unless readers could disagree about it.
  const parsed = checkpoint.metadata === null ? undefined : scanParsedPickle(checkpoint.metadata.parse);
  const scan =
    parsed ??
    withSource(checkpoint.tree, joinPath(checkpoint.dir, checkpoint.metadataFile), (s) => scanSource(s));
  return {
    file: checkpoint.metadataFile,
    role: "metadata",
    items: 1,
    loadedBy: "dcp.load: pickle.load",
    scan,
  };
}

/** The data files the metadata names that the directory holds, in rank order. */
function presentDataFiles(checkpoint: DcpCheckpoint): string[] {
  const present = new Set(checkpoint.tree.list(checkpoint.dir)?.map((e) => e.name) ?? []);
  return checkpoint.files.filter((file) => present.has(file.name)).map((file) => file.name);
}

function dcpScans(checkpoint: DcpCheckpoint): ShardedFileScan[] {
  const metadata = dcpMetadataScan(checkpoint);
  const files = itemsByFile(checkpoint);
  const data = presentDataFiles(checkpoint).map((file) => dcpDataScan(checkpoint, file, files.get(file)));
  return metadata ? [metadata, ...data] : data;
}

function wholeFileScan(
  checkpoint: ShardedCheckpoint,
  dir: string,
  file: string,
  role: ShardedFileRole,
  loadedBy: string,
): ShardedFileScan {
  const scan = withSource(checkpoint.tree, joinPath(dir, file), (s) => scanSource(s, { deep: true }));
  return { file, role, items: 1, loadedBy, scan };
}

export function scanSharded(checkpoint: ShardedCheckpoint): ShardedFileScan[] {
  switch (checkpoint.kind) {
    case "dcp":
      return dcpScans(checkpoint);
    case "deepspeed": {
      const tagDir = checkpoint.tag === null ? checkpoint.dir : joinPath(checkpoint.dir, checkpoint.tag);
      const present = new Set(checkpoint.tree.list(tagDir)?.map((e) => e.name) ?? []);
      return [...checkpoint.modelFiles, ...checkpoint.optimFiles]
        .filter((f) => present.has(f.name))
        .map((f) => wholeFileScan(checkpoint, tagDir, f.name, f.role, "engine.load_checkpoint: torch.load"));
    }
    case "hf-index":
      return checkpoint.shards
        .filter((s) => s.present)
        .map((s) =>
          wholeFileScan(
            checkpoint,
            checkpoint.dir,
            s.file,
            "shard",
            checkpoint.format === "torch"
              ? "from_pretrained: torch.load(weights_only=True)"
              : "from_pretrained: safetensors",
          ),
        );
  }
}
