import { type DcpCheckpoint, joinPath, type ShardedCheckpoint } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { scanParsedPickle, scanSource } from "../security/scan.js";
import { sharedControl, takeShared } from "../takeShared.js";
import { FILE_REPORTS, type FileReport, type FileReportKind } from "./fileReports.js";
import type { DataFileItems, ShardedFileRole, ShardedFileScan } from "./fileScan.js";
import { scanDataFile } from "./itemScans.js";

export type { ShardedFileRole, ShardedFileScan } from "./fileScan.js";

function withSource<T>(tree: ShardedCheckpoint["tree"], path: string, use: (source: ByteSource) => T): T {
  const source = tree.open(path);
  try {
    return use(source);
  } finally {
    source.close();
  }
}

/** A data file as this thread scans it: its items, and the file opened. */
interface DataFilePlan extends DataFileItems {
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
function labelsOf(checkpoint: DcpCheckpoint): string[] {
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
function dataFilePlans(checkpoint: DcpCheckpoint): DataFilePlan[] {
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

function closePlans(plans: readonly DataFilePlan[]): void {
  for (const plan of plans) plan.source.close();
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

/** What a second thread is given: the data files, each by its open source here, and what to report of each. */
export interface ItemScanJob {
  readonly files: ReadonlyArray<DataFileItems & { readonly source: ByteSource }>;
  readonly labels: readonly string[];
  readonly report: FileReportKind;
  /** The files, taken one at a time by either thread (`takeShared`). */
  readonly control: Int32Array;
}

/**
 * A second thread for a DCP checkpoint's data files (Node: `parallelScans.ts`). It takes files from
 * `job.control` as this thread does, reading each by its identity, and resolves with the report of each file
 * it took; it rejects only when a file is not the one this thread has open. Undefined: no second thread.
 */
export interface ItemScanHelper {
  start<K extends FileReportKind>(
    job: ItemScanJob & { readonly report: K },
  ): Promise<ReadonlyMap<number, FileReport<K>>> | undefined;
}

/** Scans in progress: `finish` joins in and gives every file's report, `abandon` stops and lets go. */
export interface PendingScans<R> {
  finish(): Promise<R[]>;
  abandon(): void;
}

/**
 * A DCP checkpoint's scans, reported as `report` says: `.metadata` here, and the data files taken one at a
 * time by this thread and, when `helper` starts one, a second.
 */
function startDcpScans<K extends FileReportKind>(
  checkpoint: DcpCheckpoint,
  report: K,
  helper: ItemScanHelper | undefined,
): PendingScans<FileReport<K>> {
  const reportOf = FILE_REPORTS[report] as (s: ShardedFileScan) => FileReport<K>;
  const metadata = dcpMetadataScan(checkpoint);
  const plans = dataFilePlans(checkpoint);
  const labels = labelsOf(checkpoint);
  const control = sharedControl(plans.length);
  let helped: Promise<ReadonlyMap<number, FileReport<K>>> | undefined;
  try {
    helped = helper?.start({ files: plans, labels, report, control });
  } catch (error) {
    closePlans(plans);
    throw error;
  }
  const reports: Array<FileReport<K> | undefined> = plans.map(() => undefined);
  const here = (f: number) => {
    const plan = plans[f] as DataFilePlan;
    reports[f] = reportOf(scanDataFile(plan.source, plan, labels));
  };
  return {
    async finish() {
      try {
        takeShared(control, plans.length, 1, here);
        for (const [f, done] of (await helped) ?? []) reports[f] = done;
        // What a failed helper took and did not answer for, this thread scans.
        reports.forEach((done, f) => {
          if (done === undefined) here(f);
        });
        const data = reports as FileReport<K>[];
        return metadata ? [reportOf(metadata), ...data] : data;
      } finally {
        closePlans(plans);
      }
    },
    abandon() {
      Atomics.store(control, 0, plans.length);
      helped?.catch(() => {});
      closePlans(plans);
    },
  };
}

/** Every file's record, scanned on this thread. */
function dcpScans(checkpoint: DcpCheckpoint): ShardedFileScan[] {
  const metadata = dcpMetadataScan(checkpoint);
  const plans = dataFilePlans(checkpoint);
  try {
    const labels = labelsOf(checkpoint);
    const data = plans.map((plan) => scanDataFile(plan.source, plan, labels));
    return metadata ? [metadata, ...data] : data;
  } finally {
    closePlans(plans);
  }
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

/**
 * Every file's report (`FILE_REPORTS[report]` of each `scanSharded` record), started: a DCP checkpoint's data
 * files are shared with the thread `helper` starts, when it starts one, while the caller does other work.
 */
export function startShardedScans<K extends FileReportKind>(
  checkpoint: ShardedCheckpoint,
  report: K,
  helper?: ItemScanHelper,
): PendingScans<FileReport<K>> {
  if (checkpoint.kind === "dcp") return startDcpScans(checkpoint, report, helper);
  const reportOf = FILE_REPORTS[report] as (s: ShardedFileScan) => FileReport<K>;
  return { finish: async () => scanSharded(checkpoint).map(reportOf), abandon() {} };
}
