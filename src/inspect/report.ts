import { type Checkpoint, hasTensors, type TensorCheckpoint } from "../reader/checkpoint.js";
import type { TorchTensor } from "../reader/pickle/value.js";
import { elementCount, smallTensorValues } from "../reader/tensorData.js";
import { elementSize } from "../reader/torch/dtypes.js";
import { type Finding, type FindingReport, findingReport } from "./findings.js";
import { ItemList } from "./itemList.js";
import { firstOccurrences, type PartSummary, summarizeParts } from "./parts.js";
import { CONVENTIONS, type ConventionId } from "./resume/conventions.js";
import { judgeFile } from "./resume/judgeFile.js";
import { sanityFindings } from "./resume/sanity.js";
import type { Component, ComponentState, CounterValue, ResumeVerdict, Verdict } from "./resume/verdict.js";
import { securityFindings } from "./security/report.js";
import { type ScanVerdict, scanCheckpoint } from "./security/scan.js";
import { judgeWeightsOnly, type WeightsOnlyVerdict } from "./security/weightsOnly.js";
import { type SizeReport, sizeFindings, sizeReport } from "./size.js";
import { supportsStats, type TensorStats } from "./stats.js";
import { tensorSha256, tensorStats } from "./tensorValues.js";
import { buildTree, type TreeNode } from "./tree.js";
import type { TreeFiles } from "./treeFiles.js";
import { findTensors, type KeyPath, type TensorAt } from "./walk.js";

/** The `ckpt.inspect/1` contract. Later versions add fields; these are never renamed. */
export interface InspectReport {
  readonly schema: "ckpt.inspect/1";
  readonly file: string;
  readonly sizeBytes: number;
  readonly format: Checkpoint["format"];
  readonly container: ContainerReport;
  readonly tensors: TensorReport[];
  readonly summary: SummaryReport;
  readonly tree: TreeNode | null;
  readonly findings: FindingReport[];
  readonly pointer?: { readonly content: string; readonly target: string; readonly targetExists: boolean };
  readonly convention?: { readonly id: ConventionId; readonly label: string; readonly evidence: string[] };
  readonly security?: { readonly verdict: ScanVerdict; readonly weightsOnly: WeightsOnlyVerdict };
  readonly resume?: ResumeReport;
  /** Why the file is as big as it is: storage bytes by part, views of larger storages, sharing, float64. */
  readonly size?: SizeReport;
}

/** The resume verdict of one file, as `ckpt.inspect/1` carries it. */
export interface ResumeReport {
  readonly verdict: Verdict;
  readonly components: ComponentState[];
  readonly counter: CounterValue | null;
  readonly resumeAt: number | null;
  readonly resets: Component[];
  readonly missing: Component[];
}

export interface ContainerReport {
  /** Who wrote the file, as far as its records tell. */
  readonly producer: string;
  readonly pickleProtocol?: number;
  readonly archivePrefix?: string;
  readonly records?: number;
  readonly textRecords?: Readonly<Record<string, string>>;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface TensorDescription {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly offset: number;
  readonly storage: { readonly key: string; readonly device: string; readonly sizeBytes: number } | null;
  sha256?: string;
}

export interface TensorReport extends TensorDescription {
  readonly path: KeyPath;
  readonly requiresGrad: boolean;
  readonly parameter: boolean;
  readonly layout: TorchTensor["layout"];
  readonly quantization?: QuantizationReport;
  readonly sparse?: { readonly indices: TensorDescription; readonly values: TensorDescription };
  readonly subclass?: string;
  stats?: TensorStats;
}

export type QuantizationReport =
  | { readonly scheme: string; readonly scale: number; readonly zeroPoint: number }
  | {
      readonly scheme: string;
      readonly axis: number;
      readonly scales: number[] | TensorDescription;
      readonly zeroPoints: number[] | TensorDescription;
    };

export interface SummaryReport {
  /** Entries in `tensors` before filtering: a tensor reachable at two paths counts twice. */
  readonly tensorCount: number;
  /** Elements of distinct tensors (tied weights count once), like `sum(p.numel() for p in model.parameters())`. */
  readonly elementCount: number;
  /** Bytes of distinct storages. */
  readonly storageBytes: number;
  readonly byDtype: Record<string, { tensors: number; elements: number; bytes: number }>;
  /** The model's parameters (see `PartSummary.parameters`), null when the file holds no model part. */
  readonly parameters: number | null;
  /** Model, EMA, optimizer state and the rest, by the keys the convention names. */
  readonly parts: PartSummary[];
}

export interface InspectOptions {
  /** Adds sha256 of each listed tensor's row-major bytes (streams tensor data). */
  readonly hash?: boolean;
  /** Adds min/max/mean/NaN/Inf per floating tensor (streams tensor data). */
  readonly stats?: boolean;
  /** Keeps only tensors whose dotted key path matches. */
  readonly filter?: (path: KeyPath) => boolean;
  /** sha256 already computed for some tensors (`tensorSha256s`); the others are hashed here. */
  readonly sha256?: ReadonlyMap<TorchTensor, string>;
  /**
   * The tree the file lives in and its path there, where the companion files its framework loads beside it
   * are looked for (AllenNLP's model_state beside training_state); without it none are.
   */
  readonly neighbours?: { readonly fs: TreeFiles; readonly path: string };
}

function storageDescription(tensor: TorchTensor): TensorDescription["storage"] {
  const { storage } = tensor;
  return storage ? { key: storage.key, device: storage.device, sizeBytes: storage.sizeBytes } : null;
}

function describeTensor(tensor: TorchTensor): TensorDescription {
  return {
    dtype: tensor.dtype,
    shape: tensor.shape,
    stride: tensor.stride,
    offset: tensor.offset,
    storage: storageDescription(tensor),
  };
}

function sha256Of(
  checkpoint: TensorCheckpoint,
  tensor: TorchTensor,
  known: InspectOptions["sha256"],
): string {
  const precomputed = known?.get(tensor);
  if (precomputed !== undefined) return precomputed;
  return tensorSha256(checkpoint, tensor);
}

/** A tensor's quantization when it is per tensor (a scale and a zero point in the pickle): nothing to read. */
function perTensorQuantization(tensor: TorchTensor): QuantizationReport | undefined {
  const q = tensor.quantization;
  return q && "scale" in q ? { scheme: q.scheme, scale: q.scale, zeroPoint: q.zeroPoint } : undefined;
}

/** Its quantization; per channel, the scales and zero points are read when they are small. */
function quantizationReport(
  checkpoint: TensorCheckpoint,
  tensor: TorchTensor,
): QuantizationReport | undefined {
  const q = tensor.quantization;
  if (!q || "scale" in q) return perTensorQuantization(tensor);
  return {
    scheme: q.scheme,
    axis: q.axis,
    scales: smallTensorValues(checkpoint, q.scales) ?? describeTensor(q.scales),
    zeroPoints: smallTensorValues(checkpoint, q.zeroPoints) ?? describeTensor(q.zeroPoints),
  };
}

/** What the tree says of a tensor, nothing read from the file; `quantization` as the caller read it. */
function describedTensorReport(
  path: KeyPath,
  tensor: TorchTensor,
  quantization = perTensorQuantization(tensor),
): { -readonly [K in keyof TensorReport]: TensorReport[K] } {
  // Built field by field rather than by spreading: a state dict can list hundreds of thousands of tensors.
  const report: { -readonly [K in keyof TensorReport]: TensorReport[K] } = {
    path,
    dtype: tensor.dtype,
    shape: tensor.shape,
    stride: tensor.stride,
    offset: tensor.offset,
    storage: storageDescription(tensor),
    requiresGrad: tensor.requiresGrad,
    parameter: tensor.parameter,
    layout: tensor.layout,
  };
  if (quantization) report.quantization = quantization;
  if (tensor.sparse)
    report.sparse = {
      indices: describeTensor(tensor.sparse.indices),
      values: describeTensor(tensor.sparse.values),
    };
  if (tensor.subclass) report.subclass = tensor.subclass;
  return report;
}

function tensorReport(
  checkpoint: TensorCheckpoint,
  path: KeyPath,
  tensor: TorchTensor,
  options: InspectOptions,
): TensorReport {
  const report = describedTensorReport(path, tensor, quantizationReport(checkpoint, tensor));
  if (options.hash) {
    if (tensor.sparse && report.sparse) {
      report.sparse.indices.sha256 = sha256Of(checkpoint, tensor.sparse.indices, options.sha256);
      report.sparse.values.sha256 = sha256Of(checkpoint, tensor.sparse.values, options.sha256);
    } else if (tensor.storage) {
      report.sha256 = sha256Of(checkpoint, tensor, options.sha256);
    }
  }
  if (options.stats && tensor.storage && supportsStats(tensor.dtype))
    report.stats = tensorStats(checkpoint, tensor);
  return report;
}

function tensorReports(
  checkpoint: TensorCheckpoint,
  listed: readonly TensorAt[],
  options: InspectOptions,
): ItemList<TensorReport> {
  const readsBytes =
    options.hash || options.stats || listed.some(({ tensor }) => quantizedPerChannel(tensor));
  if (!readsBytes) return treeTensorReports(listed);
  return ItemList.of(listed.map(({ path, tensor }) => tensorReport(checkpoint, path, tensor, options)));
}

/**
 * Reports made from the tree as they are asked for. A function of its own so that the list holds the
 * tensors and not the checkpoint (its root, its zip directory): `inspect --json DIR` keeps every file's list
 * until it writes them.
 */
function treeTensorReports(listed: readonly TensorAt[]): ItemList<TensorReport> {
  return new ItemList(listed.length, (index) => {
    const { path, tensor } = listed[index] as TensorAt;
    return describedTensorReport(path, tensor);
  });
}

function quantizedPerChannel(tensor: TorchTensor): boolean {
  return tensor.quantization !== undefined && "scales" in tensor.quantization;
}

function summarize(tensors: readonly TensorAt[], verdict?: ResumeVerdict): SummaryReport {
  const firstAt = firstOccurrences(tensors);
  const seenStorages = new Set<object>();
  let elements = 0;
  let storageBytes = 0;
  const byDtype: SummaryReport["byDtype"] = {};
  for (let i = 0; i < tensors.length; i++) {
    const { tensor } = tensors[i] as TensorAt;
    const entry = byDtype[tensor.dtype] ?? { tensors: 0, elements: 0, bytes: 0 };
    byDtype[tensor.dtype] = entry;
    entry.tensors++;
    if (firstAt[i] !== 1) continue;
    const n = elementCount(tensor.shape);
    elements += n;
    entry.elements += n;
    entry.bytes += n * elementSize(tensor.dtype);
    if (tensor.storage && !seenStorages.has(tensor.storage)) {
      seenStorages.add(tensor.storage);
      storageBytes += tensor.storage.sizeBytes;
    }
  }
  const parts = summarizeParts(tensors, verdict, firstAt);
  const parameters = parts.find((p) => p.part === "model")?.parameters ?? null;
  return { tensorCount: tensors.length, elementCount: elements, storageBytes, byDtype, parameters, parts };
}

function producerOf(checkpoint: Checkpoint): string {
  switch (checkpoint.format) {
    case "torch-zip": {
      const r = checkpoint.records;
      if (r[".format_version"] !== undefined) return "torch.save, torch >= 2.7";
      if (r[".data/serialization_id"] !== undefined || r.byteorder !== undefined)
        return "torch.save, torch 2.1 - 2.6";
      return "torch.save, torch 1.6 - 2.0";
    }
    case "torchscript":
      return `torch.jit.save (file format version ${checkpoint.records.version ?? checkpoint.records[".data/version"] ?? "?"})`;
    case "torch-legacy":
      return "torch.save legacy format (torch < 1.6, or _use_new_zipfile_serialization=False)";
    case "safetensors":
      return checkpoint.header.metadata?.get("format") === "pt"
        ? "safetensors (from PyTorch)"
        : "safetensors";
    case "pointer":
      return `pointer file (${checkpoint.pointer.style})`;
    case "pickle":
      return "a bare pickle";
  }
}

function containerReport(checkpoint: Checkpoint): ContainerReport {
  const producer = producerOf(checkpoint);
  switch (checkpoint.format) {
    case "torch-zip":
    case "torchscript":
      return {
        producer,
        pickleProtocol: checkpoint.pickle.protocol,
        archivePrefix: checkpoint.archive.prefix,
        records: checkpoint.archive.entryCount,
        textRecords: checkpoint.records,
      };
    case "torch-legacy":
    case "pickle":
      return { producer, pickleProtocol: checkpoint.pickle.protocol };
    case "safetensors":
      return {
        producer,
        ...(checkpoint.header.metadata ? { metadata: Object.fromEntries(checkpoint.header.metadata) } : {}),
      };
    case "pointer":
      return { producer };
  }
}

/** Turns a read checkpoint into the report: plain data, no rendering. */
export function inspectCheckpoint(
  checkpoint: Checkpoint,
  file: string,
  options: InspectOptions = {},
): InspectReport {
  const report = inspectCheckpointLazily(checkpoint, file, options);
  return { ...report, tensors: report.tensors.toJSON() };
}

/** An inspect report whose tensors are made as they are asked for (`ItemList`). */
export type LazyInspectReport = Omit<InspectReport, "tensors"> & { readonly tensors: ItemList<TensorReport> };

/**
 * The report of `inspectCheckpoint`, its tensors' reports made when they are asked for, from the tree alone:
 * they read no byte of the file, which may be closed by then. With `hash` or `stats`, or a tensor quantized
 * per channel (its scales are read), they are made here, while the file is open.
 */
export function inspectCheckpointLazily(
  checkpoint: Checkpoint,
  file: string,
  options: InspectOptions = {},
): LazyInspectReport {
  const findings: Finding[] = [...checkpoint.notes];
  const base = {
    schema: "ckpt.inspect/1" as const,
    file,
    sizeBytes: checkpoint.source.size,
    format: checkpoint.format,
    container: containerReport(checkpoint),
  };
  if (checkpoint.format === "pointer") {
    findings.push({ code: "pointer-file", target: checkpoint.target, exists: checkpoint.targetExists });
    return {
      ...base,
      tensors: ItemList.of([]),
      summary: summarize([]),
      tree: null,
      findings: findings.map(findingReport),
      pointer: {
        content: checkpoint.pointer.content,
        target: checkpoint.target,
        targetExists: checkpoint.targetExists,
      },
    };
  }

  const walk = findTensors(checkpoint.root);
  if (walk.truncated) findings.push({ code: "walk-truncated", limit: walk.truncated });
  const scan = scanCheckpoint(checkpoint);
  const weightsOnly = judgeWeightsOnly(scan);
  findings.push(...securityFindings(scan, weightsOnly));
  for (const { path, tensor } of walk.tensors) {
    if (!tensor.storage && tensor.layout === "strided") {
      findings.push({ code: "tensor-without-data", path, rebuild: tensor.rebuild });
    }
  }

  const judged = options.neighbours
    ? judgeFile(checkpoint, options.neighbours.path, options.neighbours.fs)
    : judgeFile(checkpoint, file, undefined);
  if (judged) {
    const { verdict } = judged;
    if (verdict.verdict !== "resumable") {
      findings.push({
        code: "resume-verdict",
        verdict: verdict.verdict,
        missing: verdict.missing,
        label: verdict.conventionLabel,
        ...(judged.missingCompanions.length > 0 ? { partner: judged.missingCompanions.join(", ") } : {}),
      });
    }
    findings.push(...sanityFindings(checkpoint.root, verdict, file));
  }

  const size = hasTensors(checkpoint)
    ? sizeReport(walk.tensors, judged?.verdict, checkpoint.source.size)
    : undefined;
  if (size) findings.push(...sizeFindings(size));

  const listed = options.filter ? walk.tensors.filter(({ path }) => options.filter?.(path)) : walk.tensors;
  const tensors = hasTensors(checkpoint) ? tensorReports(checkpoint, listed, options) : ItemList.of([]);
  return {
    ...base,
    tensors,
    summary: summarize(walk.tensors, judged?.verdict),
    tree: buildTree(checkpoint.root),
    findings: findings.map(findingReport),
    ...(judged ? resumeFields(judged.verdict) : {}),
    security: { verdict: scan.verdict, weightsOnly },
    ...(size ? { size } : {}),
  };
}

function resumeFields(verdict: ResumeVerdict): Pick<InspectReport, "convention" | "resume"> {
  return {
    convention: {
      id: verdict.convention,
      label: CONVENTIONS[verdict.convention].label,
      evidence: verdict.evidence,
    },
    resume: {
      verdict: verdict.verdict,
      components: verdict.components,
      counter: verdict.counter ?? null,
      resumeAt: verdict.resumeAt ?? null,
      resets: verdict.resets,
      missing: verdict.missing,
    },
  };
}

/** `model.*.weight`-style globs over dotted key paths: `*` matches anything, `?` one character. */
export function globFilter(glob: string): (path: KeyPath) => boolean {
  const pattern = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  const regex = new RegExp(`^${pattern}$`);
  return (path) => regex.test(path.join("."));
}
