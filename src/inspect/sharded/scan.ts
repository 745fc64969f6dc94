import { type DcpCheckpoint, joinPath, type ShardedCheckpoint } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { scanParsedPickle, scanSource } from "../security/scan.js";
import { sharedControl, takeShared } from "../takeShared.js";
import { closePlans, type DataFilePlan, dataFilePlans, labelsOf } from "./dataFilePlans.js";
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
