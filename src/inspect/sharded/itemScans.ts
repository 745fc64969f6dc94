import { ReaderError } from "../../reader/errors.js";
import { dataFileReader } from "../../reader/sharded/dcp/dataFile.js";
import { ItemLayouts, itemLayoutOf, WHOLE_ITEM } from "../../reader/sharded/dcp/itemLayout.js";
import { ItemWindow } from "../../reader/sharded/dcp/itemWindow.js";
import { RangeSource } from "../../reader/sharded/index.js";
import { BufferSource, type ByteSource } from "../../reader/source.js";
import { looksLikeZip } from "../../reader/zip.js";
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
  const window = new ItemWindow(raw);
  // Large items are read by their headers only, through small cached blocks.
  let large: ByteSource | undefined;
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
    if (length <= WHOLE_ITEM) {
      const item = window.view(offset, length);
      const same = layouts.findBytes(item);
      if (same !== undefined) return same;
      // A copy of its own: what the scan keeps (a pickle's bytes values) must outlive the window.
      return fullScan(new BufferSource(item.slice(), `${raw.name}[${offset}..${offset + length}]`));
    }
    large ??= dataFileReader(raw, columns.offsets.length);
    const range = new RangeSource(large, offset, length);
    const same = layouts.find(range);
    return same !== undefined ? same : fullScan(range);
  };
  for (let i = 0; i < index.length; i++) {
    const offset = columns.offsets[i] as number;
    const bytes = columns.bytes[i] === 1;
    try {
      // With SerializationFormat.SAFETENSORS a tensor's offset is where the file's one safetensors blob
      // starts, and the blob runs to the end of the file.
      const blob = !bytes && !looksLikeZip(window.view(offset, Math.min(4, raw.size - offset)));
      if (bytes || blob) {
        // Deep (every member probed as a pickle) only for bytes items, which torch.load runs unrestricted;
        // a tensor item's loader reads its data.pkl with weights_only=True and nothing else in it.
        large ??= dataFileReader(raw, columns.offsets.length);
        const length = blob ? raw.size - offset : (columns.lengths[i] as number);
        index[i] = keep(scanSource(new RangeSource(large, offset, length), { deep: bytes, memo }));
      } else index[i] = tensorItemScan(offset, columns.lengths[i] as number);
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
