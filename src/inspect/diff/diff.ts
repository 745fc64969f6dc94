import type { TreeNode } from "../tree.js";
import type { WalkLimit } from "../walk.js";
import { findRenames, type Rename } from "./renames.js";
import type { DiffSide, SideTensor, SideValue } from "./side.js";
import { compareHere, type PairComparer, type TensorPair, type ValueOutcome } from "./values.js";

/**
 * `ckpt diff A B` as plain data (`ckpt.diff/1`): which tensors and values only one side has, the renames by a
 * prefix that explain names on both, what changed in dtype and shape, and, with `--values`, how the values
 * differ. No rendering here; the CLI words it.
 */
export interface DiffReport {
  readonly schema: "ckpt.diff/1";
  readonly a: SideReport;
  readonly b: SideReport;
  readonly filter: string | null;
  /** Whether tensor values were read (`--values`); without it only names, dtypes and shapes are compared. */
  readonly valuesCompared: boolean;
  readonly renames: Rename[];
  /** Every tensor of either side: A's in A's order (each with its partner in B), then those only B has. */
  readonly tensors: TensorDiff[];
  /** The non-tensor values that differ or are on one side only. */
  readonly values: ValueDiff[];
  readonly summary: DiffSummary;
}

/** What one side was read from; `run` when it is the checkpoint a run directory's resume plan chose. */
export interface SideReport {
  readonly input: string;
  readonly file: string;
  /** `torch-zip`, `safetensors`, ..., or the sharded layout (`dcp`, `deepspeed`, `hf-index`). */
  readonly format: string;
  readonly select: string | null;
  readonly run: { readonly dir: string; readonly convention: string; readonly choice: string } | null;
  readonly tensors: number;
  readonly values: number;
  readonly truncated: WalkLimit | null;
}

export type SideDescription = Omit<SideReport, "tensors" | "values" | "truncated">;

interface TensorShape {
  readonly dtype: string;
  readonly shape: readonly number[];
}

export type TensorStatus =
  /** Same bytes (`--values`). */
  | "identical"
  /** Same dtype and shape, values differ (`--values`). */
  | "changed"
  /** Same dtype and shape; values not read. */
  | "unchecked"
  | "dtype-changed"
  | "shape-changed"
  /** A side's values could not be read (`--values`): a sparse tensor, a missing shard. */
  | "unreadable";

export interface OneSidedTensor extends TensorShape {
  readonly status: "only-in-a" | "only-in-b";
  readonly name: string;
}

export interface PairedTensor {
  readonly status: TensorStatus;
  readonly name: string;
  /** B's name, when a rename maps A's onto it. */
  readonly nameB?: string;
  readonly a: TensorShape;
  readonly b: TensorShape;
  readonly values?: ValueOutcome;
}

export type TensorDiff = OneSidedTensor | PairedTensor;

export function isPaired(tensor: TensorDiff): tensor is PairedTensor {
  return "a" in tensor;
}

export type ValueDiff =
  | {
      readonly status: "changed";
      readonly name: string;
      readonly nameB?: string;
      readonly a: TreeNode;
      readonly b: TreeNode;
    }
  | { readonly status: "only-in-a" | "only-in-b"; readonly name: string; readonly value: TreeNode };

export interface DiffSummary {
  /** Nothing differs in what was compared: exit code 0. */
  readonly equal: boolean;
  readonly tensors: {
    readonly a: number;
    readonly b: number;
    readonly identical: number;
    readonly changed: number;
    readonly unchecked: number;
    readonly dtypeChanged: number;
    readonly shapeChanged: number;
    readonly unreadable: number;
    readonly onlyInA: number;
    readonly onlyInB: number;
    readonly renamed: number;
  };
  readonly values: {
    readonly a: number;
    readonly b: number;
    readonly changed: number;
    readonly onlyInA: number;
    readonly onlyInB: number;
  };
  /** The compared tensor with the largest relative L2 difference (a floating one before counters and masks). */
  readonly largestChange: {
    readonly name: string;
    readonly relL2: number | null;
    readonly maxAbsDiff: number | null;
  } | null;
  readonly nanAppeared: number;
  readonly infAppeared: number;
}

export interface DiffOptions {
  /** Reads and compares tensor values. */
  readonly values: boolean;
  /** With `values`: each side's sha256 too. */
  readonly hash: boolean;
  /** Only names that match (either side's name, for a pair). */
  readonly filter?: { readonly glob: string; readonly test: (name: string) => boolean };
  /** How value pairs are compared (default: on this thread). */
  readonly comparer?: PairComparer;
}

function firstByName<T extends { readonly name: string }>(items: readonly T[]): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of items) if (!map.has(item.name)) map.set(item.name, item);
  return map;
}

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

function structuralStatus(a: SideTensor, b: SideTensor): TensorStatus {
  if (!sameShape(a.shape, b.shape)) return "shape-changed";
  return a.dtype === b.dtype ? "unchecked" : "dtype-changed";
}

/** The status a pair gets once its values are compared (a dtype change keeps its status, with the figures). */
function valuedStatus(structural: TensorStatus, outcome: ValueOutcome): TensorStatus {
  if (outcome.kind === "unreadable") return "unreadable";
  if (structural !== "unchecked") return structural;
  return outcome.identicalBytes ? "identical" : "changed";
}

/** Pairs A's items with B's: the first of `partners(name)` that B has. */
function match<T extends { readonly name: string }>(
  a: readonly T[],
  b: readonly T[],
  partners: (name: string) => readonly string[],
) {
  const byNameB = firstByName(b);
  const paired = new Map<string, T>();
  const taken = new Set<string>();
  for (const item of firstByName(a).values()) {
    const partner = partners(item.name)
      .map((name) => byNameB.get(name))
      .find((candidate) => candidate !== undefined && !taken.has(candidate.name));
    if (!partner) continue;
    paired.set(item.name, partner);
    taken.add(partner.name);
  }
  return { paired, onlyB: [...byNameB.values()].filter((item) => !taken.has(item.name)) };
}

function compareValues(
  a: DiffSide,
  b: DiffSide,
  renames: readonly Rename[],
  keep: (name: string) => boolean,
): ValueDiff[] {
  // Values under a renamed prefix follow the tensors' renames; others keep their names.
  const partners = (name: string) => [
    name,
    ...renames.flatMap((r) => (name.startsWith(r.from) ? [r.to + name.slice(r.from.length)] : [])),
  ];
  const { paired, onlyB } = match<SideValue>(a.values, b.values, partners);
  const out: ValueDiff[] = [];
  for (const value of firstByName(a.values).values()) {
    const partner = paired.get(value.name);
    if (!keep(value.name) && !(partner && keep(partner.name))) continue;
    if (!partner) out.push({ status: "only-in-a", name: value.name, value: value.node });
    else if (partner.fingerprint !== value.fingerprint)
      out.push({
        status: "changed",
        name: value.name,
        ...(partner.name !== value.name ? { nameB: partner.name } : {}),
        a: value.node,
        b: partner.node,
      });
  }
  for (const value of onlyB)
    if (keep(value.name)) out.push({ status: "only-in-b", name: value.name, value: value.node });
  return out;
}

/** The renames between the names only one side has, applied to tensors (values follow them). */
function tensorRenames(a: DiffSide, b: DiffSide) {
  const namesB = new Set(b.tensors.map((t) => t.name));
  const namesA = new Set(a.tensors.map((t) => t.name));
  const byNameA = firstByName(a.tensors);
  const byNameB = firstByName(b.tensors);
  return findRenames(
    [...namesA].filter((n) => !namesB.has(n)),
    [...namesB].filter((n) => !namesA.has(n)),
    (x, y) => {
      const ta = byNameA.get(x);
      const tb = byNameB.get(y);
      return ta !== undefined && tb !== undefined && ta.dtype === tb.dtype && sameShape(ta.shape, tb.shape);
    },
  );
}

export async function diffSides(
  description: { readonly a: SideDescription; readonly b: SideDescription },
  a: DiffSide,
  b: DiffSide,
  options: DiffOptions,
): Promise<DiffReport> {
  const keep = options.filter?.test ?? (() => true);
  const { renames, pairs: renamed } = tensorRenames(a, b);
  const { paired, onlyB } = match(a.tensors, b.tensors, (name) => [renamed.get(name) ?? name]);

  const tensors: TensorDiff[] = [];
  const toCompare: Array<{ index: number; pair: TensorPair; status: TensorStatus }> = [];
  for (const tensor of firstByName(a.tensors).values()) {
    const partner = paired.get(tensor.name);
    if (!keep(tensor.name) && !(partner && keep(partner.name))) continue;
    if (!partner) {
      tensors.push({ status: "only-in-a", name: tensor.name, dtype: tensor.dtype, shape: tensor.shape });
      continue;
    }
    const status = structuralStatus(tensor, partner);
    if (options.values && status !== "shape-changed")
      toCompare.push({ index: tensors.length, pair: { a: tensor, b: partner }, status });
    tensors.push({
      status,
      name: tensor.name,
      ...(partner.name !== tensor.name ? { nameB: partner.name } : {}),
      a: { dtype: tensor.dtype, shape: tensor.shape },
      b: { dtype: partner.dtype, shape: partner.shape },
    });
  }
  for (const tensor of onlyB)
    if (keep(tensor.name))
      tensors.push({ status: "only-in-b", name: tensor.name, dtype: tensor.dtype, shape: tensor.shape });

  const outcomes = await (options.comparer ?? compareHere)(
    toCompare.map((c) => c.pair),
    { hash: options.hash },
  );
  toCompare.forEach(({ index, status }, i) => {
    const entry = tensors[index];
    const outcome = outcomes[i];
    if (entry && outcome && isPaired(entry))
      tensors[index] = { ...entry, status: valuedStatus(status, outcome), values: outcome };
  });

  const values = compareValues(a, b, renames, keep);
  const side = (d: SideDescription, s: DiffSide): SideReport => ({
    ...d,
    tensors: s.tensors.length,
    values: s.values.length,
    truncated: s.truncated ?? null,
  });
  return {
    schema: "ckpt.diff/1",
    a: side(description.a, a),
    b: side(description.b, b),
    filter: options.filter?.glob ?? null,
    valuesCompared: options.values,
    renames,
    tensors,
    values,
    summary: summarize(tensors, values, renames, a, b),
  };
}

const isFloating = (dtype: string) => /^(float|bfloat|complex)/.test(dtype);

function summarize(
  tensors: readonly TensorDiff[],
  values: readonly ValueDiff[],
  renames: readonly Rename[],
  a: DiffSide,
  b: DiffSide,
): DiffSummary {
  const count = (status: TensorDiff["status"]) => tensors.filter((t) => t.status === status).length;
  let largest: DiffSummary["largestChange"] = null;
  let largestFloating = false;
  let nanAppeared = 0;
  let infAppeared = 0;
  for (const t of tensors) {
    if (!isPaired(t) || t.values?.kind !== "compared") continue;
    nanAppeared += t.values.nanAppeared;
    infAppeared += t.values.infAppeared;
    if (t.values.identicalBytes) continue;
    const relL2 = t.values.relL2;
    const floating = isFloating(t.a.dtype);
    // Weights before counters: a BatchNorm's num_batches_tracked going 5 -> 10 is rel. L2 1.0, and no news.
    const better =
      !largest ||
      (floating !== largestFloating
        ? floating
        : relL2 === null
          ? largest.relL2 !== null
          : largest.relL2 !== null && relL2 > largest.relL2);
    if (better) {
      largest = { name: t.name, relL2, maxAbsDiff: t.values.maxAbsDiff };
      largestFloating = floating;
    }
  }
  const summary = {
    tensors: {
      a: a.tensors.length,
      b: b.tensors.length,
      identical: count("identical"),
      changed: count("changed"),
      unchecked: count("unchecked"),
      dtypeChanged: count("dtype-changed"),
      shapeChanged: count("shape-changed"),
      unreadable: count("unreadable"),
      onlyInA: count("only-in-a"),
      onlyInB: count("only-in-b"),
      renamed: tensors.filter((t) => "nameB" in t && t.nameB !== undefined).length,
    },
    values: {
      a: a.values.length,
      b: b.values.length,
      changed: values.filter((v) => v.status === "changed").length,
      onlyInA: values.filter((v) => v.status === "only-in-a").length,
      onlyInB: values.filter((v) => v.status === "only-in-b").length,
    },
    largestChange: largest,
    nanAppeared,
    infAppeared,
  };
  const t = summary.tensors;
  const differs =
    renames.length > 0 ||
    t.changed + t.dtypeChanged + t.shapeChanged + t.unreadable + t.onlyInA + t.onlyInB > 0 ||
    values.length > 0;
  return { equal: !differs, ...summary };
}
