import type { TorchTensor } from "../reader/pickle/value.js";
import { elementCount } from "../reader/tensorData.js";
import { elementSize } from "../reader/torch/dtypes.js";
import type { ResumeVerdict } from "./resume/verdict.js";
import type { KeyPath, TensorAt } from "./walk.js";

/**
 * Which part of the training state each tensor belongs to, and how big each part is: "parameters" means the
 * model's parameters, not every number in the file (an AdamW checkpoint holds about three times as many).
 * The parts follow the keys the convention names for the model, its EMA copy and the optimizer.
 */
export type PartName = "model" | "ema" | "optimizer" | "other";

export interface PartSummary {
  readonly part: PartName;
  /** The key path that holds the part (`model_state_dict`, `trainer._trainer.optimizer`), null for "other". */
  readonly key: string | null;
  readonly tensors: number;
  /** Elements of distinct tensors. */
  readonly elements: number;
  /** Bytes of those elements (a view counts its own elements, not its whole storage). */
  readonly bytes: number;
  /**
   * Model and EMA: elements of floating-point tensors that are not BatchNorm statistics or other buffers. A
   * saved module knows which are buffers (`_buffers`); a state dict does not, so its known buffer names are
   * excluded and every other floating tensor counts.
   */
  readonly parameters?: number;
  /** Optimizer and EMA: `bytes` relative to the model's bytes. */
  readonly relativeToModel?: number;
}

/** Buffers a state dict carries next to parameters: BatchNorm running statistics. */
const BUFFER_NAMES = /(?:^|\.)(?:running_mean|running_var|num_batches_tracked)$/;

function isParameterLike(path: KeyPath, tensor: TorchTensor): boolean {
  if (tensor.parameter) return true;
  if (path.includes("_buffers")) return false;
  const last = path[path.length - 1];
  if (typeof last === "string" && BUFFER_NAMES.test(last)) return false;
  return /^(?:float|bfloat|complex|q)/.test(tensor.dtype);
}

const startsWith = (path: KeyPath, prefix: readonly string[]) =>
  prefix.length <= path.length && prefix.every((segment, i) => path[i] === segment);

interface PartKey {
  readonly part: PartName;
  readonly key: string;
  readonly prefix: readonly string[];
}

/** The key paths the verdict found for model, EMA and optimizer; the whole file is the model when none is. */
function partKeys(verdict: ResumeVerdict | undefined): PartKey[] {
  const keys: PartKey[] = [];
  for (const state of verdict?.components ?? []) {
    if (state.status !== "present") continue;
    if (state.component !== "model" && state.component !== "ema" && state.component !== "optimizer") continue;
    const prefix = state.key === "(root)" ? [] : state.key.split(".");
    // Ultralytics keeps the weights in `ema`: one part, named model.
    if (keys.some((k) => k.key === state.key)) continue;
    keys.push({ part: state.component, key: state.key, prefix });
  }
  return keys;
}

/** Tells which part a tensor at a key path belongs to, by the keys the verdict found. */
export function partClassifier(
  verdict: ResumeVerdict | undefined,
): (path: KeyPath) => { part: PartName; key: string | null } {
  // Longest prefix first, so the first match is the owner (a stable sort keeps ties in the verdict's order).
  const keys = partKeys(verdict).sort((a, b) => b.prefix.length - a.prefix.length);
  const wholeFileIsModel = !keys.some((k) => k.part === "model");
  // One answer object per part key, shared by every tensor under it (200,000 calls make no garbage).
  const answers = keys.map((k) => ({ prefix: k.prefix, answer: { part: k.part, key: k.key } }));
  const fallback: { part: PartName; key: string | null } = wholeFileIsModel
    ? { part: "model", key: "(root)" }
    : { part: "other", key: null };
  return (path) => {
    for (const k of answers) if (startsWith(path, k.prefix)) return k.answer;
    return fallback;
  };
}

/** 1 where an entry is the first one of its tensor, 0 where the same tensor came earlier (tied weights). */
export function firstOccurrences(tensors: readonly TensorAt[]): Uint8Array {
  const first = new Uint8Array(tensors.length);
  const seen = new Set<TorchTensor>();
  for (let i = 0; i < tensors.length; i++) {
    const { tensor } = tensors[i] as TensorAt;
    if (seen.has(tensor)) continue;
    seen.add(tensor);
    first[i] = 1;
  }
  return first;
}

/** `firstAt` as `firstOccurrences(tensors)` makes it, when the caller has it already. */
export function summarizeParts(
  tensors: readonly TensorAt[],
  verdict: ResumeVerdict | undefined,
  firstAt: Uint8Array = firstOccurrences(tensors),
): PartSummary[] {
  const classify = partClassifier(verdict);
  const totals = new Map<
    PartName,
    { key: string | null; tensors: number; elements: number; bytes: number; parameters: number }
  >();
  for (let i = 0; i < tensors.length; i++) {
    const { path, tensor } = tensors[i] as TensorAt;
    const { part, key } = classify(path);
    const total = totals.get(part) ?? { key, tensors: 0, elements: 0, bytes: 0, parameters: 0 };
    totals.set(part, total);
    total.tensors++;
    if (firstAt[i] !== 1) continue;
    const n = elementCount(tensor.shape);
    total.elements += n;
    total.bytes += n * elementSize(tensor.dtype);
    if (isParameterLike(path, tensor)) total.parameters += n;
  }
  const modelBytes = totals.get("model")?.bytes ?? 0;
  const order: PartName[] = ["model", "ema", "optimizer", "other"];
  return order.flatMap((part) => {
    const total = totals.get(part);
    if (!total) return [];
    const summary: PartSummary = {
      part,
      key: total.key,
      tensors: total.tensors,
      elements: total.elements,
      bytes: total.bytes,
      ...(part === "model" || part === "ema" ? { parameters: total.parameters } : {}),
      ...((part === "optimizer" || part === "ema") && modelBytes > 0
        ? { relativeToModel: total.bytes / modelBytes }
        : {}),
    };
    return [summary];
  });
}
