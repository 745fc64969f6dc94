import type { DcpCheckpoint } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { joinPath } from "../../reader/tree.js";
import type { DataFileItems } from "./fileScan.js";

/**
 * A DCP checkpoint's data files as columns of their items, each file opened: what the scan (`scan.ts`) and
 * the CRC check (`verify.ts`) walk, in offset order.
 */

/** A data file as this thread scans it: its items, and the file opened. */
export interface DataFilePlan extends DataFileItems {
  readonly source: ByteSource;
}

/** Items as `storage_data` lists them, per data file, before ordering. */
interface GatheredItems {
  readonly offsets: number[];
  readonly lengths: number[];
  readonly bytes: number[];
  readonly labels: number[];
}

/**
 * The items `storage_data` puts in each data file, gathered in one pass over the chunks (a pass per file made
 * a run of hundreds of ranks quadratic): tensor chunks first, then bytes items. Labels index `labelsOf`.
 */
function gatherItems(checkpoint: DcpCheckpoint): Map<string, GatheredItems> {
  const files = new Map<string, GatheredItems>();
  const add = (file: string, offset: number, length: number, bytes: number, label: number) => {
    let items = files.get(file);
    if (!items) {
      items = { offsets: [], lengths: [], bytes: [], labels: [] };
      files.set(file, items);
    }
    items.offsets.push(offset);
    items.lengths.push(length);
    items.bytes.push(bytes);
    items.labels.push(label);
  };
  checkpoint.tensors.forEach((tensor, t) => {
    for (const { storage } of tensor.chunks)
      if (storage) add(storage.relativePath, storage.offset, storage.length, 0, t);
  });
  const first = checkpoint.tensors.length;
  checkpoint.bytesItems.forEach((item, b) => {
    if (item.storage) add(item.storage.relativePath, item.storage.offset, item.storage.length, 1, first + b);
  });
  return files;
}

/** Every item's label: the tensors' FQNs, then the bytes items'. */
export function labelsOf(checkpoint: DcpCheckpoint): string[] {
  return [...checkpoint.tensors.map((t) => t.fqn), ...checkpoint.bytesItems.map((b) => b.fqn)];
}

/**
 * A file's items in offset order, one per offset (a bytes item over a chunk, else the first chunk there), and
 * only those that lie inside its `size` bytes.
 */
function orderItems(gathered: GatheredItems | undefined, size: number): Omit<DataFileItems, "file"> {
  const { offsets, lengths, bytes, labels } = gathered ?? { offsets: [], lengths: [], bytes: [], labels: [] };
  const count = offsets.length;
  const order = new Uint32Array(count);
  let sorted = true;
  for (let i = 0; i < count; i++) {
    order[i] = i;
    if (i > 0 && (offsets[i] as number) < (offsets[i - 1] as number)) sorted = false;
  }
  // Writers append items in plan order, which is nearly always offset order already. A typed array's sort
  // is not stable: ties go by gathering order, as a stable sort would leave them.
  if (!sorted) order.sort((a, b) => (offsets[a] as number) - (offsets[b] as number) || a - b);
  const kept = new Uint32Array(count);
  let n = 0;
  for (let k = 0; k < count; ) {
    const offset = offsets[order[k] as number] as number;
    let end = k + 1;
    while (end < count && offsets[order[end] as number] === offset) end++;
    // Gathered tensors first, bytes items after: a group's last member is its bytes item when it has one.
    const last = order[end - 1] as number;
    const chosen = bytes[last] === 1 ? last : (order[k] as number);
    if (offset + (lengths[chosen] as number) <= size) kept[n++] = chosen;
    k = end;
  }
  const columns = {
    offsets: new Float64Array(n),
    lengths: new Float64Array(n),
    bytes: new Uint8Array(n),
    labels: new Int32Array(n),
  };
  for (let j = 0; j < n; j++) {
    const i = kept[j] as number;
    columns.offsets[j] = offsets[i] as number;
    columns.lengths[j] = lengths[i] as number;
    columns.bytes[j] = bytes[i] as number;
    columns.labels[j] = labels[i] as number;
  }
  return { columns, hasBytes: bytes.includes(1) };
}

/** The data files the metadata names that the directory holds, in rank order, each opened. */
export function dataFilePlans(checkpoint: DcpCheckpoint): DataFilePlan[] {
  const gathered = gatherItems(checkpoint);
  const plans: DataFilePlan[] = [];
  try {
    for (const file of presentDataFiles(checkpoint)) {
      const source = checkpoint.tree.open(joinPath(checkpoint.dir, file));
      plans.push({ file, source, ...orderItems(gathered.get(file), source.size) });
    }
    return plans;
  } catch (error) {
    closePlans(plans);
    throw error;
  }
}

export function closePlans(plans: readonly DataFilePlan[]): void {
  for (const plan of plans) plan.source.close();
}

/** The data files the metadata names that the directory holds, in rank order. */
function presentDataFiles(checkpoint: DcpCheckpoint): string[] {
  const present = new Set(checkpoint.tree.list(checkpoint.dir)?.map((e) => e.name) ?? []);
  return checkpoint.files.filter((file) => present.has(file.name)).map((file) => file.name);
}
