import { type DcpCheckpoint, joinPath, type ShardedCheckpoint } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { withOpened } from "../../reader/tree.js";
import { scanParsedPickle, scanSource } from "../security/scan.js";
import { sharedControl, stopShared, takeShared } from "../takeShared.js";
import { type DataFilePlan, dataFilePlans, labelsOf } from "./dataFilePlans.js";
import { FILE_REPORTS, type FileReport, type FileReportKind } from "./fileReports.js";
import type { ShardedFileRole, ShardedFileScan } from "./fileScan.js";
import { scanDataFile } from "./itemScans.js";

export type { ShardedFileRole, ShardedFileScan } from "./fileScan.js";

/** `.metadata`'s record, when the checkpoint has one. */
function dcpMetadataScan(checkpoint: DcpCheckpoint): ShardedFileScan | undefined {
  if (checkpoint.metadataFile === null) return undefined;
  // Opening decoded `.metadata` already; its parse is adopted unless readers could disagree about it.
  const parsed = checkpoint.metadata === null ? undefined : scanParsedPickle(checkpoint.metadata.parse);
  const scan =
    parsed ??
    withOpened(checkpoint.tree, joinPath(checkpoint.dir, checkpoint.metadataFile), (s) => scanSource(s));
  return {
    file: checkpoint.metadataFile,
    role: "metadata",
    items: 1,
    loadedBy: "dcp.load: pickle.load",
    scan,
  };
}

/** What a second thread is given: the data files, what to report of each, and how to open each here. */
export interface ItemScanJob {
  readonly files: readonly DataFilePlan[];
  readonly labels: readonly string[];
  readonly report: FileReportKind;
  /** The files, taken one at a time by either thread (`takeShared`). */
  readonly control: Int32Array;
  /** Data file `f` opened on this thread (the caller closes it): what a helper takes its identity from. */
  readonly open: (f: number) => ByteSource;
}

/**
 * A second thread for a DCP checkpoint's data files (Node: `parallelScans.ts`). It takes files from
 * `job.control` as this thread does, reading each by its identity, and resolves with the report of each file
 * it took; it rejects only when a file is not the one this thread saw. Undefined: no second thread.
 */
export interface ItemScanHelper {
  start<K extends FileReportKind>(
    job: ItemScanJob & { readonly report: K },
  ): Promise<ReadonlyMap<number, FileReport<K>>> | undefined;
}

/** Scans in progress: `finish` joins in and gives every file's report, `abandon` stops the sharing. */
export interface PendingScans<R> {
  finish(): Promise<R[]>;
  abandon(): void;
}

/**
 * One run of a DCP checkpoint's scans, each file's record kept as `reportOf` makes it: `here` scans data file
 * `f` on this thread, `complete` takes what another thread answered, scans what is still missing, and gives
 * `.metadata`'s report first, then the data files' in rank order.
 */
function dcpRun<R>(checkpoint: DcpCheckpoint, reportOf: (s: ShardedFileScan) => R) {
  const metadata = dcpMetadataScan(checkpoint);
  const plans = dataFilePlans(checkpoint);
  const labels = labelsOf(checkpoint);
  const reports: Array<R | undefined> = plans.map(() => undefined);
  const here = (f: number) => {
    const plan = plans[f] as DataFilePlan;
    reports[f] = reportOf(
      withOpened(checkpoint.tree, plan.path, (source) => scanDataFile(source, plan, labels)),
    );
  };
  const complete = (theirs: ReadonlyMap<number, R> | undefined): R[] => {
    for (const [f, done] of theirs ?? []) reports[f] = done;
    // What a failed helper took and did not answer for, this thread scans.
    reports.forEach((done, f) => {
      if (done === undefined) here(f);
    });
    const data = reports as R[];
    return metadata ? [reportOf(metadata), ...data] : data;
  };
  return { plans, labels, here, complete };
}

/** A DCP checkpoint's scans, reported as `report` says, on a second thread too when `helper` starts one. */
function startDcpScans<K extends FileReportKind>(
  checkpoint: DcpCheckpoint,
  report: K,
  helper: ItemScanHelper | undefined,
): PendingScans<FileReport<K>> {
  const run = dcpRun(checkpoint, FILE_REPORTS[report] as (s: ShardedFileScan) => FileReport<K>);
  const control = sharedControl();
  const open = (f: number) => checkpoint.tree.open((run.plans[f] as DataFilePlan).path);
  const helped = helper?.start({ files: run.plans, labels: run.labels, report, control, open });
  // Whoever waits for it, a helper's failure is never an unhandled rejection.
  helped?.catch(() => {});
  return {
    async finish() {
      takeShared(control, run.plans.length, run.here);
      return run.complete(await helped);
    },
    abandon() {
      stopShared(control, run.plans.length);
    },
  };
}

/** Every file's record, scanned on this thread. */
function dcpScans(checkpoint: DcpCheckpoint): ShardedFileScan[] {
  return dcpRun(checkpoint, (s) => s).complete(undefined);
}

function wholeFileScan(
  checkpoint: ShardedCheckpoint,
  dir: string,
  file: string,
  role: ShardedFileRole,
  loadedBy: string,
): ShardedFileScan {
  const scan = withOpened(checkpoint.tree, joinPath(dir, file), (s) => scanSource(s, { deep: true }));
  return { file, role, items: 1, loadedBy, scan };
}

/** A HuggingFaceStorageWriter save: safetensors shards, which hold no pickle, each scanned whole. */
function hfWriterScans(checkpoint: DcpCheckpoint): ShardedFileScan[] {
  return checkpoint.files.map((f) =>
    wholeFileScan(
      checkpoint,
      checkpoint.dir,
      f.name,
      "data",
      "dcp.load(HuggingFaceStorageReader): safetensors",
    ),
  );
}

export function scanSharded(checkpoint: ShardedCheckpoint): ShardedFileScan[] {
  switch (checkpoint.kind) {
    case "dcp":
      return checkpoint.writer === "huggingface" ? hfWriterScans(checkpoint) : dcpScans(checkpoint);
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
  if (checkpoint.kind === "dcp" && checkpoint.writer === "filesystem")
    return startDcpScans(checkpoint, report, helper);
  const reportOf = FILE_REPORTS[report] as (s: ShardedFileScan) => FileReport<K>;
  return { finish: async () => scanSharded(checkpoint).map(reportOf), abandon() {} };
}
