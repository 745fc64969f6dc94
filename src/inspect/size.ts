import type { TorchStorage, TorchTensor } from "../reader/pickle/value.js";
import { elementCount } from "../reader/tensorData.js";
import { elementSize } from "../reader/torch/dtypes.js";
import type { Finding } from "./findings.js";
import { type PartName, partClassifier } from "./parts.js";
import type { ResumeVerdict } from "./resume/verdict.js";
import type { KeyPath, TensorAt } from "./walk.js";

/**
 * Why a checkpoint is as big as it is (`inspect`'s Size section, JSON `size`): storage bytes by part, the
 * storages that tensors use only a part of (a slice of a huge tensor saves the whole storage, pytorch/pytorch
 * #53419), the storages reachable under many keys, and float64 tensors in a model that trains in float32 or
 * bfloat16. torch.save writes every storage a tensor views whole, once, however many tensors view it.
 */
export interface SizeReport {
  readonly fileBytes: number;
  /** Bytes of distinct storages (what torch.save writes besides the pickle and the zip records). */
  readonly storageBytes: number;
  /** Of those, the bytes some tensor's elements reach: what `ckpt repair --compact` keeps. */
  readonly usedBytes: number;
  /** What the storages would be after every tensor is `.clone()`d: each its own elements, shared ones again. */
  readonly cloneBytes: number;
  /** Storage bytes per part, each storage counted once per part that reaches it. */
  readonly parts: PartBytes[];
  /** The optimizer's storage bytes relative to the model's, null without both. */
  readonly optimizerRelativeToModel: number | null;
  /** Storages with bytes no tensor reaches, the largest waste first. */
  readonly views: StorageView[];
  /** Storages that more than one key path reaches (tied weights, aliases). */
  readonly shared: SharedStorage[];
  /** float64 tensors in a model whose other floating tensors are float32 or bfloat16. */
  readonly float64: Float64Tensor[];
  /** The model's other floating dtypes, when `float64` is not empty. */
  readonly modelDtypes: string[];
}

export interface PartBytes {
  readonly part: PartName;
  readonly key: string | null;
  readonly bytes: number;
}

export interface StorageView {
  readonly storage: string;
  readonly storageBytes: number;
  /** Bytes some tensor viewing it reaches (the union of their extents). */
  readonly usedBytes: number;
  /** Bytes of the viewing tensors' own elements (what `.clone()` of each would save). */
  readonly tensorBytes: number;
  readonly paths: KeyPath[];
}

export interface SharedStorage {
  readonly storage: string;
  readonly storageBytes: number;
  readonly paths: KeyPath[];
}

export interface Float64Tensor {
  readonly path: KeyPath;
  readonly bytes: number;
}

/** A byte range [start, end) of a storage that a tensor's elements reach. */
type Extent = readonly [number, number];

/**
 * The bytes of its storage a strided tensor reaches: from its first element to its last (with gaps between
 * rows when it is a column slice); none for an empty tensor.
 */
export function tensorExtent(tensor: TorchTensor): Extent | undefined {
  if (tensor.layout !== "strided" || !tensor.storage) return undefined;
  if (elementCount(tensor.shape) === 0) return undefined;
  const size = elementSize(tensor.dtype);
  let last = 0;
  tensor.shape.forEach((n, i) => {
    last += (n - 1) * Math.abs(tensor.stride[i] ?? 0);
  });
  const start = tensor.offset * size;
  return [start, Math.min(start + (last + 1) * size, tensor.storage.sizeBytes)];
}

/** Sorted, merged ranges: touching ranges merge too. */
export function mergeExtents(extents: readonly Extent[]): Array<[number, number]> {
  // Nearly every storage holds one tensor: nothing to sort or merge.
  if (extents.length === 1) {
    const [start, end] = extents[0] as Extent;
    return [[start, end]];
  }
  const sorted = [...extents].sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [start, end] of sorted) {
    const last = merged[merged.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else merged.push([start, end]);
  }
  return merged;
}

interface StorageUse {
  readonly storage: TorchStorage;
  readonly paths: KeyPath[];
  /**
   * Distinct tensors: usually one, so an array searched, with a Set beside it once there are many (views of
   * one flat buffer); a Set per storage cost more than the search for 200,000 storages.
   */
  readonly tensors: TorchTensor[];
  seen: Set<TorchTensor> | undefined;
  readonly extents: Extent[];
}

function storageUses(tensors: readonly TensorAt[]): Map<string, StorageUse> {
  const uses = new Map<string, StorageUse>();
  for (const { path, tensor } of tensors) {
    const storage = tensor.storage;
    if (!storage || tensor.layout !== "strided") continue;
    let use = uses.get(storage.key);
    if (!use) {
      use = { storage, paths: [], tensors: [], seen: undefined, extents: [] };
      uses.set(storage.key, use);
    }
    use.paths.push(path);
    if (!addDistinct(use, tensor)) continue;
    const extent = tensorExtent(tensor);
    if (extent) use.extents.push(extent);
  }
  return uses;
}

const FLOATING = /^(?:float|bfloat)/;

function float64InModel(
  tensors: readonly TensorAt[],
  classify: ReturnType<typeof partClassifier>,
): Pick<SizeReport, "float64" | "modelDtypes"> {
  const model = tensors.filter(({ path }) => classify(path).part === "model");
  const others = new Set(
    model.map(({ tensor }) => tensor.dtype).filter((d) => FLOATING.test(d) && d !== "float64"),
  );
  if (!others.has("float32") && !others.has("bfloat16")) return { float64: [], modelDtypes: [] };
  const float64 = model
    .filter(({ tensor }) => tensor.dtype === "float64")
    .map(({ path, tensor }) => ({ path, bytes: elementCount(tensor.shape) * 8 }));
  return { float64, modelDtypes: float64.length > 0 ? [...others].sort() : [] };
}

const SEARCHED_TENSORS = 8;

/** Adds `tensor` to the storage's distinct tensors; false when it is there already. */
function addDistinct(use: StorageUse, tensor: TorchTensor): boolean {
  if (use.seen !== undefined) {
    if (use.seen.has(tensor)) return false;
    use.seen.add(tensor);
  } else if (use.tensors.includes(tensor)) return false;
  else if (use.tensors.length >= SEARCHED_TENSORS) use.seen = new Set([...use.tensors, tensor]);
  use.tensors.push(tensor);
  return true;
}

export function sizeReport(
  tensors: readonly TensorAt[],
  verdict: ResumeVerdict | undefined,
  fileBytes: number,
): SizeReport {
  const uses = storageUses(tensors);
  const classify = partClassifier(verdict);
  let storageBytes = 0;
  let usedBytes = 0;
  let cloneBytes = 0;
  const views: StorageView[] = [];
  const shared: SharedStorage[] = [];
  for (const [key, use] of uses) {
    const bytes = use.storage.sizeBytes;
    const used = mergeExtents(use.extents).reduce((sum, [start, end]) => sum + end - start, 0);
    let own = 0;
    for (const tensor of use.tensors) own += elementCount(tensor.shape) * elementSize(tensor.dtype);
    // A clone per key path: tied weights cloned under two keys are saved twice.
    const perPath = use.paths.length / Math.max(1, use.tensors.length);
    storageBytes += bytes;
    usedBytes += used;
    cloneBytes += Math.round(own * perPath);
    if (used < bytes)
      views.push({ storage: key, storageBytes: bytes, usedBytes: used, tensorBytes: own, paths: use.paths });
    if (use.paths.length > 1) shared.push({ storage: key, storageBytes: bytes, paths: use.paths });
  }
  views.sort((a, b) => b.storageBytes - b.usedBytes - (a.storageBytes - a.usedBytes));
  shared.sort((a, b) => b.storageBytes - a.storageBytes);

  const parts = new Map<PartName, { key: string | null; storages: Map<string, number> }>();
  for (const { path, tensor } of tensors) {
    if (!tensor.storage) continue;
    const { part, key } = classify(path);
    const entry = parts.get(part) ?? { key, storages: new Map() };
    parts.set(part, entry);
    entry.storages.set(tensor.storage.key, tensor.storage.sizeBytes);
  }
  const order: PartName[] = ["model", "ema", "optimizer", "other"];
  const partBytes = order.flatMap((part) => {
    const entry = parts.get(part);
    if (!entry) return [];
    let bytes = 0;
    for (const b of entry.storages.values()) bytes += b;
    return [{ part, key: entry.key, bytes }];
  });
  const modelBytes = partBytes.find((p) => p.part === "model")?.bytes ?? 0;
  const optimizerBytes = partBytes.find((p) => p.part === "optimizer")?.bytes;
  return {
    fileBytes,
    storageBytes,
    usedBytes,
    cloneBytes,
    parts: partBytes,
    optimizerRelativeToModel:
      optimizerBytes !== undefined && modelBytes > 0 ? optimizerBytes / modelBytes : null,
    views,
    shared,
    ...float64InModel(tensors, classify),
  };
}

/** Findings worth a line each, at most this many of a kind (the JSON `size` lists every one). */
const MAX_FINDINGS = 10;

/** The size facts as findings: unused storage, shared storage, float64 in a lower-precision model. */
export function sizeFindings(size: SizeReport): Finding[] {
  const findings: Finding[] = [];
  for (const view of size.views.slice(0, MAX_FINDINGS)) {
    findings.push({
      code: "storage-mostly-unused",
      path: view.paths[0] ?? [],
      keys: view.paths.length,
      storageBytes: view.storageBytes,
      usedBytes: view.usedBytes,
      tensorBytes: view.tensorBytes,
      share: size.fileBytes > 0 ? (view.storageBytes - view.usedBytes) / size.fileBytes : 0,
    });
  }
  for (const s of size.shared.slice(0, MAX_FINDINGS)) {
    findings.push({
      code: "storage-shared",
      path: s.paths[0] ?? [],
      keys: s.paths.length,
      storageBytes: s.storageBytes,
    });
  }
  for (const t of size.float64.slice(0, MAX_FINDINGS)) {
    findings.push({ code: "float64-in-model", path: t.path, bytes: t.bytes, modelDtypes: size.modelDtypes });
  }
  return findings;
}
