import { ReaderError } from "../../reader/errors.js";
import { ItemLayouts, itemLayoutOf, WHOLE_ITEM } from "../../reader/sharded/dcp/itemLayout.js";
import { ItemReader } from "../../reader/sharded/dcp/itemReader.js";
import type { ByteSource } from "../../reader/source.js";
import { mergeScans } from "../security/mergeScans.js";
import { type FileScan, scanSource, unopenedScan } from "../security/scan.js";
import { ScanMemo } from "../security/scanner.js";
import type { DataFileItems, ItemColumns, ShardedFileScan } from "./fileScan.js";

/**
 * The scan of one DCP data file from its items, the same on either thread (`scan.ts` here,
 * `itemScanWorker.ts` on a second one). Items of one layout share one scan (itemLayout.ts); the others are
 * scanned, bytes items deep. Opening 200,000 item archives is most of a large checkpoint's scan.
 */

/** Each item's scan, as the distinct scans and each item's index into them. */
interface ItemScans {
  readonly scans: FileScan[];
  /** Per item, its scan's index in `scans`, or -1: its archive did not open (`failures` says why). */
  readonly index: Int32Array;
  readonly failures: Map<number, string>;
}

function scanItems(raw: ByteSource, columns: ItemColumns): ItemScans {
  const reader = new ItemReader(raw, columns.offsets.length);
  const memo = new ScanMemo();
  const layouts = new ItemLayouts<number>();
  const scans: FileScan[] = [];
  const failures = new Map<number, string>();
  const index = new Int32Array(columns.offsets.length);
  const keep = (scan: FileScan) => scans.push(scan) - 1;
  const fullScan = (range: ByteSource): number => {
    const at = keep(scanSource(range, { memo }));
    const layout = itemLayoutOf(range);
    if (layout) layouts.remember(layout, at);
    return at;
  };
  const tensorItemScan = (offset: number, length: number): number => {
    if (length <= WHOLE_ITEM)
      return layouts.findBytes(reader.small(offset, length)) ?? fullScan(reader.copy(offset, length));
    const range = reader.range(offset, length);
    return layouts.find(range) ?? fullScan(range);
  };
  for (let i = 0; i < index.length; i++) {
    const offset = columns.offsets[i] as number;
    const length = columns.lengths[i] as number;
    const bytes = columns.bytes[i] === 1;
    try {
      // With SerializationFormat.SAFETENSORS a tensor's offset is where the file's one safetensors blob
      // starts, and the blob runs to the end of the file.
      const blob = !bytes && !reader.isArchive(offset, length);
      // Deep (every member probed as a pickle) only for bytes items, which torch.load runs unrestricted;
      // a tensor item's loader reads its data.pkl with weights_only=True and nothing else in it.
      index[i] =
        bytes || blob
          ? keep(scanSource(reader.range(offset, blob ? raw.size - offset : length), { deep: bytes, memo }))
          : tensorItemScan(offset, length);
    } catch (error) {
      // One damaged item's archive: that item is unscanned, the file's other items are still scanned.
      if (!(error instanceof ReaderError)) throw error;
      index[i] = -1;
      failures.set(i, error.message);
    }
  }
  return { scans, index, failures };
}

/** Data file `items`'s record, read from `raw`: its items' scans merged, each item's records named by its FQN. */
export function scanDataFile(
  raw: ByteSource,
  items: DataFileItems,
  labels: readonly string[],
): ShardedFileScan {
  const { columns } = items;
  const { scans, index, failures } = scanItems(raw, columns);
  const parts: Array<{ label: string; bytes: boolean; scan: FileScan }> = [];
  for (let i = 0; i < index.length; i++) {
    const label = labels[columns.labels[i] as number] as string;
    const at = index[i] as number;
    const scan = at >= 0 ? (scans[at] as FileScan) : unopenedScan(label, failures.get(i) ?? "");
    parts.push({ label, bytes: columns.bytes[i] === 1, scan });
  }
  return {
    file: items.file,
    role: "data",
    items: parts.length,
    loadedBy: items.hasBytes
      ? "dcp.load: bytes items with torch.load(weights_only=False), tensors with weights_only=True"
      : "dcp.load: tensors with torch.load(weights_only=True)",
    // The file's format is its tensors' (a torch.save archive each, or one safetensors blob).
    scan: mergeScans((parts.find((p) => !p.bytes) ?? parts[0])?.scan.format ?? "other", parts),
  };
}
