import { type Checkpoint, hasTensors } from "../../reader/checkpoint.js";
import { codecs } from "../../reader/codecs.js";
import { ReaderError } from "../../reader/errors.js";
import { isBoxed, type PyValue, qualifiedName, type TorchTensor } from "../../reader/pickle/value.js";
import { basename } from "../../reader/posixPath.js";
import {
  type DcpCheckpoint,
  type DeepSpeedCheckpoint,
  type HfIndexCheckpoint,
  logicalTensorBytes,
  readDcpBytesItem,
  type ShardedCheckpoint,
  type ShardedFinding,
  type ShardedKind,
  shardedFileBytes,
} from "../../reader/sharded/index.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { joinPath } from "../../reader/tree.js";
import type { FindingReport, Severity } from "../findings.js";
import { findingReport } from "../findings.js";
import { CONVENTIONS, type ConventionId } from "../resume/conventions.js";
import type { Component, ComponentState, Verdict } from "../resume/verdict.js";
import { examineCandidate } from "../runs/candidates.js";
import { detectRunLayout } from "../runs/layout.js";
import { worstVerdict } from "../security/mergeScans.js";
import type { ScanVerdict } from "../security/scan.js";
import { StatsAccumulator, supportsStats, type TensorStats } from "../stats.js";
import { tensorSha256, tensorStats } from "../tensorValues.js";
import type { TreeFiles } from "../treeFiles.js";
import { findTensors, type KeyPath } from "../walk.js";
import { completenessFindings } from "./completeness.js";
import type { ShardedSecurityFile } from "./fileReports.js";
import { shardedFindingMessage } from "./findingText.js";
import { type ItemScanHelper, startShardedScans } from "./scan.js";

/**
 * `ckpt.inspect/1` for a sharded checkpoint: one logical object, whatever number of files it spans. Its
 * tensors are the consolidated state dict's (global shapes, where each piece is), its findings the
 * completeness checks, its resume verdict the run analysis's own for that directory, its security every
 * pickle of every file.
 */
export interface LogicalTensorReport {
  readonly name: string;
  readonly path: KeyPath;
  readonly dtype: string;
  readonly shape: number[];
  readonly sizeBytes: number;
  /** DCP: every chunk, where its bytes are. */
  readonly chunks?: Array<{
    readonly offsets: readonly number[];
    readonly sizes: readonly number[];
    readonly file: string | null;
    readonly offset: number | null;
    readonly length: number | null;
    readonly rank: number | null;
  }>;
  /** Hugging Face: the shard that holds it. */
  readonly shard?: string;
  /** DeepSpeed: where zero_to_fp32 takes it from (buffer, frozen, the fp32 partitions, a tied name). */
  readonly deepspeed?: Readonly<Record<string, unknown>>;
  sha256?: string;
  stats?: TensorStats;
}

export interface ShardedFindingReport {
  readonly code: ShardedFinding["code"] | FindingReport["code"];
  readonly severity: Severity;
  readonly message: string;
  readonly file?: string;
}

/** A Python value as JSON carries it: scalars and short lists of scalars as they are, anything else by type. */
export type PlainValue = null | boolean | number | string | PlainValue[] | { readonly type: string };

export interface BytesItemReport {
  readonly name: string;
  readonly file: string | null;
  readonly offset: number | null;
  readonly length: number | null;
  /** What torch.load returns for it, when it is a plain value; else its type. */
  readonly value: PlainValue;
  /** Tensors inside it (a nested state DCP pickled whole), by their path below the item. */
  readonly tensors?: ReadonlyArray<{
    readonly path: KeyPath;
    readonly dtype: string;
    readonly shape: readonly number[];
    /** With `--hash`: sha256 of its row-major bytes, as for a logical tensor. */
    readonly sha256?: string;
    readonly stats?: TensorStats;
  }>;
}

export type { ShardedSecurityFile } from "./fileReports.js";

export interface ShardedResumeReport {
  readonly verdict: Verdict | null;
  readonly status: string;
  readonly components: ComponentState[];
  readonly counter: {
    readonly name: string | null;
    readonly value: number;
    readonly source: string | null;
  } | null;
  readonly resumeAt: number | null;
  readonly missing: Component[];
}

export interface ShardedInspectReport {
  readonly schema: "ckpt.inspect/1";
  readonly file: string;
  readonly format: ShardedKind;
  readonly sizeBytes: number;
  readonly layout: Readonly<Record<string, unknown>>;
  readonly tensors: LogicalTensorReport[];
  readonly bytesItems?: BytesItemReport[];
  readonly summary: {
    readonly tensorCount: number;
    readonly elementCount: number;
    readonly tensorBytes: number;
    readonly byDtype: Record<string, { tensors: number; elements: number; bytes: number }>;
  };
  readonly findings: ShardedFindingReport[];
  readonly convention?: { readonly id: ConventionId; readonly label: string; readonly evidence: string[] };
  readonly resume?: ShardedResumeReport;
  readonly security: { readonly verdict: ScanVerdict; readonly files: ShardedSecurityFile[] };
}

export interface ShardedInspectOptions {
  readonly hash?: boolean;
  readonly stats?: boolean;
  readonly filter?: (path: KeyPath) => boolean;
  /** The tree and the checkpoint's absolute path in it, for the resume verdict (the run analysis's). */
  readonly fs: TreeFiles;
  readonly path: string;
  /** A second thread for a DCP checkpoint's item scans (the CLI's, on Node); without it they run here. */
  readonly itemScanner?: ItemScanHelper;
}

const numel = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

function dcpTensors(checkpoint: DcpCheckpoint): LogicalTensorReport[] {
  return checkpoint.tensors.map((t) => ({
    name: t.fqn,
    path: t.path ? [...t.path] : t.fqn.split("."),
    dtype: t.dtype,
    shape: [...t.shape],
    sizeBytes: numel(t.shape) * elementSize(t.dtype),
    chunks: t.chunks.map((c) => ({
      offsets: c.offsets,
      sizes: c.sizes,
      file: c.storage?.relativePath ?? null,
      offset: c.storage?.offset ?? null,
      length: c.storage?.length ?? null,
      rank: c.rank,
    })),
  }));
}

function deepSpeedTensors(checkpoint: DeepSpeedCheckpoint): LogicalTensorReport[] {
  // The reader keeps each file's path in its tree (absolute, locally); the report names it from the
  // checkpoint's directory (`global_step4/mp_rank_00_model_states.pt`), as every other file in it.
  const dir = joinPath(checkpoint.dir);
  const prefix = dir === "" ? "" : `${dir}/`;
  const relative = (file: string) =>
    prefix !== "" && file.startsWith(prefix) ? file.slice(prefix.length) : file;
  return checkpoint.tensors.map(({ name, shape, dtype, ...where }) => ({
    name,
    path: name.split("."),
    dtype,
    shape: [...shape],
    sizeBytes: numel(shape) * elementSize(dtype),
    deepspeed:
      where.source === "buffer"
        ? { ...where, file: relative(where.file) }
        : where.source === "frozen"
          ? { ...where, fragments: where.fragments.map((f) => ({ ...f, file: relative(f.file) })) }
          : where,
  }));
}

function hfTensors(checkpoint: HfIndexCheckpoint): LogicalTensorReport[] {
  return checkpoint.tensors.map((t) => ({
    name: t.name,
    path: t.name.split("."),
    dtype: t.dtype,
    shape: [...t.shape],
    sizeBytes: t.byteLength,
    shard: t.shard,
  }));
}

function tensorsOf(checkpoint: ShardedCheckpoint): LogicalTensorReport[] {
  switch (checkpoint.kind) {
    case "dcp":
      return dcpTensors(checkpoint);
    case "deepspeed":
      return deepSpeedTensors(checkpoint);
    case "hf-index":
      return hfTensors(checkpoint);
  }
}

function layoutOf(checkpoint: ShardedCheckpoint): Record<string, unknown> {
  switch (checkpoint.kind) {
    case "dcp":
      return {
        kind: "dcp",
        writer: checkpoint.writer,
        metadataFile: checkpoint.metadataFile,
        version: checkpoint.metadata?.version ?? null,
        files: checkpoint.files,
      };
    case "deepspeed": {
      const { kind, latest, tags, tag, recoveryScript, stage, worldSize, dsVersion, globalSteps } =
        checkpoint;
      const { modelFiles, optimFiles, groups } = checkpoint;
      return {
        kind,
        latest,
        tags,
        tag,
        recoveryScript,
        stage,
        worldSize,
        dsVersion,
        globalSteps,
        modelFiles,
        optimFiles,
        groups,
      };
    }
    case "hf-index": {
      const { kind, indexFile, format, totalSize, metadata, shards } = checkpoint;
      return { kind, indexFile, format, totalSize, metadata, shards };
    }
  }
}

/** A bytes item's value as JSON can carry it: plain values as they are, containers and objects by type. */
function plainValue(value: PyValue): PlainValue {
  if (value === null || typeof value !== "object")
    return typeof value === "bigint" ? value.toString() : value;
  if (isBoxed(value, "float")) return value.value;
  if (isBoxed(value, "object"))
    return { type: isBoxed(value.callable, "global") ? qualifiedName(value.callable) : "object" };
  if ((isBoxed(value, "tuple") || isBoxed(value, "list")) && value.items.length <= 16) {
    const items = value.items.map(plainValue);
    if (items.every((v) => v === null || typeof v !== "object")) return items;
  }
  return { type: value.kind };
}

type NestedTensorReport = NonNullable<BytesItemReport["tensors"]>[number];

/**
 * A bytes item's value and the tensors inside it, read through the item's own archive: its central directory
 * and pickle, whatever the item's size (a large item is a range of its data file, never read whole), and a
 * tensor's bytes only for `--hash`/`--stats`. An item that is not a readable archive shows no value; the
 * completeness findings and the security scan say why.
 */
function bytesItemsOf(checkpoint: DcpCheckpoint, options: ShardedInspectOptions): BytesItemReport[] {
  return checkpoint.bytesItems.map((item) => {
    let value: PlainValue = null;
    let tensors: NestedTensorReport[] = [];
    if (item.storage) {
      try {
        const loaded = readDcpBytesItem(checkpoint, item);
        if ("root" in loaded) {
          value = plainValue(loaded.root);
          const itemPath = item.path && item.path.length > 0 ? item.path : item.fqn.split(".");
          tensors = findTensors(loaded.root).tensors.map(({ path, tensor }) =>
            nestedTensor(loaded, tensor, path, [...itemPath, ...path], options),
          );
        }
      } catch (error) {
        // Missing, short or damaged: the completeness findings say which (item-unreadable for a damaged one).
        if (!(error instanceof ReaderError)) throw error;
      }
    }
    return {
      name: item.fqn,
      file: item.storage?.relativePath ?? null,
      offset: item.storage?.offset ?? null,
      length: item.storage?.length ?? null,
      value,
      ...(tensors.length > 0 ? { tensors } : {}),
    };
  });
}

/** A tensor inside a bytes item, hashed from the item's own archive as torch.load would build it. */
function nestedTensor(
  loaded: Checkpoint,
  tensor: TorchTensor,
  path: KeyPath,
  fullPath: KeyPath,
  options: ShardedInspectOptions,
): NestedTensorReport {
  const report: { -readonly [K in keyof NestedTensorReport]: NestedTensorReport[K] } = {
    path,
    dtype: tensor.dtype,
    shape: tensor.shape,
  };
  const wanted = !options.filter || options.filter(fullPath);
  if (!wanted || !hasTensors(loaded) || (!options.hash && !options.stats)) return report;
  try {
    if (options.hash) report.sha256 = tensorSha256(loaded, tensor);
    if (options.stats && supportsStats(tensor.dtype)) report.stats = tensorStats(loaded, tensor);
  } catch (error) {
    // Bytes cut short inside the item: the completeness findings name the item; this tensor has no values.
    if (!(error instanceof ReaderError)) throw error;
  }
  return report;
}

/** Bytes items that hold tensors: torch restores those tensors, ckpt's tensor list does not have them. */
function bytesItemFindings(items: readonly BytesItemReport[]): ShardedFindingReport[] {
  return items
    .filter((item) => (item.tensors?.length ?? 0) > 0)
    .map((item) =>
      findingReport({ code: "bytes-item-tensors", item: item.name, tensors: item.tensors?.length ?? 0 }),
    );
}

function summarize(tensors: readonly LogicalTensorReport[]): ShardedInspectReport["summary"] {
  const byDtype: Record<string, { tensors: number; elements: number; bytes: number }> = {};
  let elementCount = 0;
  let tensorBytes = 0;
  for (const t of tensors) {
    const n = numel(t.shape);
    const entry = byDtype[t.dtype] ?? { tensors: 0, elements: 0, bytes: 0 };
    byDtype[t.dtype] = entry;
    entry.tensors++;
    entry.elements += n;
    entry.bytes += t.sizeBytes;
    elementCount += n;
    tensorBytes += t.sizeBytes;
  }
  return { tensorCount: tensors.length, elementCount, tensorBytes, byDtype };
}

/** sha256 and statistics of one logical tensor, assembled from its pieces in row-major order, streamed. */
function addValues(
  checkpoint: ShardedCheckpoint,
  tensor: LogicalTensorReport,
  options: ShardedInspectOptions,
  inBulk: boolean,
): void {
  const hasher = options.hash ? codecs().sha256() : undefined;
  const stats = options.stats && supportsStats(tensor.dtype) ? new StatsAccumulator(tensor.dtype) : undefined;
  if (!hasher && !stats) return;
  try {
    for (const piece of logicalTensorBytes(checkpoint, tensor.name, { inBulk })) {
      hasher?.update(piece);
      stats?.add(piece);
    }
  } catch (error) {
    // A piece that is missing or cut short: the completeness findings say which; this tensor has no values.
    if (error instanceof ReaderError) return;
    throw error;
  }
  if (hasher) tensor.sha256 = hasher.hex();
  if (stats) tensor.stats = stats.result();
}

async function resumeOf(
  options: ShardedInspectOptions,
  checkpoint: ShardedCheckpoint,
): Promise<Pick<ShardedInspectReport, "convention" | "resume">> {
  const layout = detectRunLayout(options.path, options.fs);
  const tag = checkpoint.kind === "deepspeed" ? checkpoint.tag : null;
  const ref =
    layout.candidates.find((c) => c.rel === ".") ??
    layout.candidates.find((c) => tag !== null && basename(c.path) === tag);
  if (!ref) return {};
  const examined = await examineCandidate(ref, {
    verify: false,
    runConvention: layout.convention,
    fs: options.fs,
    // The checkpoint in hand, when it is the candidate: judged without decoding its metadata again.
    ...(checkpoint.dir === ref.path ? { opened: { path: ref.path, checkpoint } } : {}),
  });
  const id = examined.convention ?? layout.convention;
  return {
    convention: { id, label: CONVENTIONS[id].label, evidence: [layout.evidence] },
    resume: {
      verdict: examined.verdict,
      status: examined.status,
      components: examined.components,
      counter:
        examined.counter === null
          ? null
          : { name: examined.counterName, value: examined.counter, source: examined.counterSource },
      resumeAt: examined.resumeAt,
      missing: examined.missing,
    },
  };
}

export async function inspectSharded(
  checkpoint: ShardedCheckpoint,
  file: string,
  options: ShardedInspectOptions,
): Promise<ShardedInspectReport> {
  // Started first and joined last: a DCP checkpoint's item scans can run on a second thread meanwhile.
  const pending = startShardedScans(checkpoint, "inspect", options.itemScanner);
  let rest: ReportWithoutScans;
  let scans: ShardedSecurityFile[];
  try {
    rest = await reportWithoutScans(checkpoint, file, options);
    scans = await pending.finish();
  } catch (error) {
    pending.abandon();
    throw error;
  }
  const scanFindings = scans.flatMap((s) =>
    s.findings
      .filter((f) => f.code !== "weights-only-blocked" || s.role !== "metadata")
      .map((f) => ({ ...f, file: s.file })),
  );
  const { report, completeness, later } = rest;
  const { convention, resume, ...before } = report;
  return {
    ...before,
    // Completeness first, then what the scans found, then the bytes items and the resume verdict.
    findings: [...completeness, ...scanFindings, ...later],
    ...(convention ? { convention } : {}),
    ...(resume ? { resume } : {}),
    security: { verdict: worstVerdict(scans.map((s) => s.verdict)), files: scans },
  };
}

interface ReportWithoutScans {
  readonly report: Omit<ShardedInspectReport, "security" | "findings">;
  readonly completeness: ShardedFindingReport[];
  /** The bytes items' and the resume verdict's findings, which follow the scans'. */
  readonly later: ShardedFindingReport[];
}

/** The report but its security section, and its findings but the scans'. */
async function reportWithoutScans(
  checkpoint: ShardedCheckpoint,
  file: string,
  options: ShardedInspectOptions,
): Promise<ReportWithoutScans> {
  const all = tensorsOf(checkpoint);
  const tensors = options.filter ? all.filter((t) => options.filter?.(t.path)) : all;
  // Every tensor, or many: their chunks are read in file order, in large blocks where items are small.
  const inBulk = tensors.length > 1;
  for (const tensor of tensors) addValues(checkpoint, tensor, options, inBulk);
  const completeness: ShardedFindingReport[] = completenessFindings(checkpoint).map((f) => ({
    code: f.code,
    severity: f.severity,
    message: shardedFindingMessage(f),
  }));
  const bytesItems = checkpoint.kind === "dcp" ? bytesItemsOf(checkpoint, options) : undefined;
  const findings = bytesItemFindings(bytesItems ?? []);
  const resume = await resumeOf(options, checkpoint);
  const verdict = resume.resume?.verdict;
  if (verdict && verdict !== "resumable" && resume.convention) {
    findings.push({
      ...findingReport({
        code: "resume-verdict",
        verdict,
        missing: resume.resume?.missing ?? [],
        label: resume.convention.label,
      }),
    });
  }
  const report = {
    schema: "ckpt.inspect/1",
    file,
    format: checkpoint.kind,
    sizeBytes: shardedFileBytes(checkpoint),
    layout: layoutOf(checkpoint),
    tensors,
    ...(bytesItems ? { bytesItems } : {}),
    summary: summarize(all),
    ...resume,
  } as const;
  return { report, completeness, later: findings };
}
