import type { TorchStorage, TorchTensor } from "../reader/pickle/value.js";
import { elementCount } from "../reader/tensorData.js";
import { elementSize } from "../reader/torch/dtypes.js";
import { IdMap } from "../reader/torch/idMap.js";
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

const PART_ORDER: readonly PartName[] = ["model", "ema", "optimizer", "other"];
const PART_BIT: Record<PartName, number> = { model: 1, ema: 2, optimizer: 4, other: 8 };

/**
 * The storages the tensors use, one slot each in the order they are first met. Nearly every storage of a
 * large state dict is reached by one key path, so a slot keeps only the index of its first strided tensor;
 * a `StorageUse` with arrays is made for the few a second path reaches (a 200,000-tensor state dict made
 * 200,000 of them, with four arrays each, and the report's peak memory noticed).
 */
class StorageSlots {
  readonly slotOf = new IdMap<number>();
  readonly storages: TorchStorage[] = [];
  /** Per slot: the index in `tensors` of its first strided tensor, -1 while none. */
  readonly first: Int32Array;
  /** Per slot: the parts (`PART_BIT`) whose bytes count it already. */
  readonly parts: Uint8Array;
  readonly multiple = new Map<number, StorageUse>();

  constructor(readonly tensors: readonly TensorAt[]) {
    this.first = new Int32Array(tensors.length);
    this.parts = new Uint8Array(tensors.length);
  }

  slot(storage: TorchStorage): number {
    const known = this.slotOf.get(storage.key);
    if (known !== undefined) return known;
    const slot = this.storages.length;
    this.slotOf.add(storage.key, slot);
    this.storages.push(storage);
    this.first[slot] = -1;
    return slot;
  }

  /** Records that the strided tensor at `index` uses the storage of `slot`. */
  use(slot: number, index: number): void {
    const first = this.first[slot] as number;
    if (first < 0) {
      this.first[slot] = index;
      return;
    }
    let use = this.multiple.get(slot);
    if (!use) {
      const { path, tensor } = this.tensors[first] as TensorAt;
      use = {
        storage: tensor.storage as TorchStorage,
        paths: [path],
        tensors: [tensor],
        seen: undefined,
        extents: [],
      };
      const extent = tensorExtent(tensor);
      if (extent) use.extents.push(extent);
      this.multiple.set(slot, use);
    }
    const { path, tensor } = this.tensors[index] as TensorAt;
    use.paths.push(path);
    if (!addDistinct(use, tensor)) return;
    const extent = tensorExtent(tensor);
    if (extent) use.extents.push(extent);
  }

  /** The slot's use as one shape, made on demand for a storage one tensor uses. */
  useOf(slot: number): StorageUse | undefined {
    const multiple = this.multiple.get(slot);
    if (multiple) return multiple;
    const first = this.first[slot] as number;
    if (first < 0) return undefined;
    const { path, tensor } = this.tensors[first] as TensorAt;
    const extent = tensorExtent(tensor);
    return {
      storage: this.storages[slot] as TorchStorage,
      paths: [path],
      tensors: [tensor],
      seen: undefined,
      extents: extent ? [extent] : [],
    };
  }
}

const FLOATING = /^(?:float|bfloat)/;

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

/** Bytes of the storage's range [start, end) that a tensor reaches; 0 when it reaches none. */
function reachedBytes(tensor: TorchTensor): number {
  const extent = tensorExtent(tensor);
  return extent ? extent[1] - extent[0] : 0;
}

/** One pass over the tensors: storage slots, bytes per part, and the model's floating dtypes. */
function gather(tensors: readonly TensorAt[], classify: ReturnType<typeof partClassifier>) {
  const slots = new StorageSlots(tensors);
  const partBytes = new Map<PartName, { key: string | null; bytes: number }>();
  const modelFloating = new Set<string>();
  const modelFloat64: Float64Tensor[] = [];
  tensors.forEach(({ path, tensor }, index) => {
    const { part, key } = classify(path);
    if (part === "model") {
      if (tensor.dtype === "float64") modelFloat64.push({ path, bytes: elementCount(tensor.shape) * 8 });
      else if (FLOATING.test(tensor.dtype)) modelFloating.add(tensor.dtype);
    }
    const storage = tensor.storage;
    if (!storage) return;
    const slot = slots.slot(storage);
    const bit = PART_BIT[part];
    if (((slots.parts[slot] as number) & bit) === 0) {
      slots.parts[slot] = (slots.parts[slot] as number) | bit;
      const entry = partBytes.get(part) ?? { key, bytes: 0 };
      partBytes.set(part, entry);
      entry.bytes += storage.sizeBytes;
    }
    if (tensor.layout === "strided") slots.use(slot, index);
  });
  return { slots, partBytes, modelFloating, modelFloat64 };
}

export function sizeReport(
  tensors: readonly TensorAt[],
  verdict: ResumeVerdict | undefined,
  fileBytes: number,
): SizeReport {
  const { slots, partBytes, modelFloating, modelFloat64 } = gather(tensors, partClassifier(verdict));
  let storageBytes = 0;
  let usedBytes = 0;
  let cloneBytes = 0;
  const views: StorageView[] = [];
  const shared: SharedStorage[] = [];
  slots.storages.forEach((storage, slot) => {
    const first = slots.first[slot] as number;
    if (first < 0) return;
    const bytes = storage.sizeBytes;
    const multiple = slots.multiple.get(slot);
    if (!multiple) {
      // One tensor under one path: its own bytes and reach, without arrays.
      const { tensor } = tensors[first] as TensorAt;
      const used = reachedBytes(tensor);
      const own = elementCount(tensor.shape) * elementSize(tensor.dtype);
      storageBytes += bytes;
      usedBytes += used;
      cloneBytes += own;
      if (used < bytes) views.push(storageView(slots.useOf(slot) as StorageUse, used, own));
      return;
    }
    const used = mergeExtents(multiple.extents).reduce((sum, [start, end]) => sum + end - start, 0);
    let own = 0;
    for (const tensor of multiple.tensors) own += elementCount(tensor.shape) * elementSize(tensor.dtype);
    // A clone per key path: tied weights cloned under two keys are saved twice.
    const perPath = multiple.paths.length / Math.max(1, multiple.tensors.length);
    storageBytes += bytes;
    usedBytes += used;
    cloneBytes += Math.round(own * perPath);
    if (used < bytes) views.push(storageView(multiple, used, own));
    if (multiple.paths.length > 1)
      shared.push({ storage: storage.key, storageBytes: bytes, paths: multiple.paths });
  });
  views.sort((a, b) => b.storageBytes - b.usedBytes - (a.storageBytes - a.usedBytes));
  shared.sort((a, b) => b.storageBytes - a.storageBytes);

  const parts = PART_ORDER.flatMap((part) => {
    const entry = partBytes.get(part);
    return entry ? [{ part, key: entry.key, bytes: entry.bytes }] : [];
  });
  const modelBytes = partBytes.get("model")?.bytes ?? 0;
  const optimizerBytes = partBytes.get("optimizer")?.bytes;
  const lowerPrecision = modelFloating.has("float32") || modelFloating.has("bfloat16");
  return {
    fileBytes,
    storageBytes,
    usedBytes,
    cloneBytes,
    parts,
    optimizerRelativeToModel:
      optimizerBytes !== undefined && modelBytes > 0 ? optimizerBytes / modelBytes : null,
    views,
    shared,
    float64: lowerPrecision ? modelFloat64 : [],
    modelDtypes: lowerPrecision && modelFloat64.length > 0 ? [...modelFloating].sort() : [],
  };
}

function storageView(use: StorageUse, usedBytes: number, tensorBytes: number): StorageView {
  return {
    storage: use.storage.key,
    storageBytes: use.storage.sizeBytes,
    usedBytes,
    tensorBytes,
    paths: use.paths,
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
