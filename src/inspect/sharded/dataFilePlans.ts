import type { DcpStorageInfo } from "../../reader/sharded/dcp/metadata.js";
import type { DcpCheckpoint } from "../../reader/sharded/index.js";
import { joinPath } from "../../reader/tree.js";
import type { DataFileItems } from "./fileScan.js";

/**
 * A DCP checkpoint's data files as columns of their items, in offset order: what the scan (`scan.ts`) and the
 * CRC check (`runs/shardedIntegrity.ts`) walk. No file is held open: each is opened while it is read (`withOpened`),
 * so a run of hundreds of ranks never has hundreds of descriptors open.
 */

/** A data file's items and its path in the checkpoint's tree. */
export interface DataFilePlan extends DataFileItems {
  readonly path: string;
}

/** Items as `storage_data` lists them, per data file, before ordering. */
interface GatheredItems {
  readonly offsets: number[];
  readonly lengths: number[];
  readonly bytes: number[];
  readonly labels: number[];
  readonly transformed: number[];
}

/**
 * The items `storage_data` puts in each data file, gathered in one pass over the chunks (a pass per file made
 * a run of hundreds of ranks quadratic): tensor chunks first, then bytes items. Labels index `labelsOf`.
 */
function gatherItems(checkpoint: DcpCheckpoint): Map<string, GatheredItems> {
  const files = new Map<string, GatheredItems>();
  const add = (info: DcpStorageInfo, bytes: number, label: number) => {
    let items = files.get(info.relativePath);
    if (!items) {
      items = { offsets: [], lengths: [], bytes: [], labels: [], transformed: [] };
      files.set(info.relativePath, items);
    }
    items.offsets.push(info.offset);
    items.lengths.push(info.length);
    items.bytes.push(bytes);
    items.labels.push(label);
    items.transformed.push((info.transformDescriptors?.length ?? 0) > 0 ? 1 : 0);
  };
  checkpoint.tensors.forEach((tensor, t) => {
    for (const { storage } of tensor.chunks) if (storage) add(storage, 0, t);
  });
  const first = checkpoint.tensors.length;
  checkpoint.bytesItems.forEach((item, b) => {
    if (item.storage) add(item.storage, 1, first + b);
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
  const { offsets, lengths, bytes, labels, transformed } = gathered ?? {
    offsets: [],
    lengths: [],
    bytes: [],
    labels: [],
    transformed: [],
  };
  const count = offsets.length;
  const order = new Uint32Array(count);
  let sorted = true;
  for (let i = 0; i < count; i++) {
    order[i] = i;
    if (i > 0 && (offsets[i] as number) < (offsets[i - 1] as number)) sorted = false;
  }
  // Writers append items in plan order, which is nearly always offset order already; ties keep the order
  // they were gathered in (tensor chunks first), which the choice below relies on.
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
    transformed: new Uint8Array(n),
  };
  for (let j = 0; j < n; j++) {
    const i = kept[j] as number;
    columns.offsets[j] = offsets[i] as number;
    columns.lengths[j] = lengths[i] as number;
    columns.bytes[j] = bytes[i] as number;
    columns.labels[j] = labels[i] as number;
    columns.transformed[j] = transformed[i] as number;
  }
  return { columns, hasBytes: bytes.includes(1) };
}

/** The data files the metadata names that the directory holds, in rank order, sized by the listing. */
export function dataFilePlans(checkpoint: DcpCheckpoint): DataFilePlan[] {
  const gathered = gatherItems(checkpoint);
  const sizes = new Map<string, number>();
  for (const entry of checkpoint.tree.list(checkpoint.dir) ?? [])
    if (entry.kind === "file") sizes.set(entry.name, entry.size);
  return checkpoint.files.flatMap(({ name }) => {
    const size = sizes.get(name);
    if (size === undefined) return [];
    const path = joinPath(checkpoint.dir, name);
    return [{ file: name, path, ...orderItems(gathered.get(name), size) }];
  });
}
