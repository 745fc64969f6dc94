import {
  isBoxed,
  type PyObject,
  type PyValue,
  qualifiedName,
  type TorchTensor,
} from "../reader/pickle/value.js";
import { elementCount } from "../reader/tensorData.js";
import { forEachChild, keySegment, MAX_WALK_DEPTH, objectFields } from "./walk.js";

/**
 * A bounded, JSON-ready outline of the loaded object. Containers full of tensors (state dicts, optimizer
 * state) collapse into one summary line; everything else is shown to a fixed depth and width, so the tree of
 * a 200,000-tensor checkpoint stays a screenful.
 */
export type TreeNode =
  | { readonly type: "none" }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "int"; readonly value: number | string }
  | { readonly type: "float"; readonly value: number | string }
  | { readonly type: "str"; readonly value: string; readonly length: number }
  | { readonly type: "bytes"; readonly length: number; readonly mutable: boolean }
  | {
      readonly type: "tensor";
      readonly dtype: string;
      readonly shape: readonly number[];
      readonly parameter: boolean;
    }
  | { readonly type: "ndarray"; readonly dtype: string; readonly shape: number[] }
  | { readonly type: "numpy-scalar"; readonly dtype: string; readonly value?: number | string }
  | ({
      readonly type: "tensors";
      readonly container: "dict" | "list" | "tuple";
      readonly className?: string;
    } & TensorSummary)
  | {
      readonly type: "dict";
      readonly className?: string;
      readonly length: number;
      readonly entries: Array<{ readonly key: string | number; readonly value: TreeNode }>;
      readonly tensors?: TensorSummary;
    }
  | {
      readonly type: "list" | "tuple";
      readonly length: number;
      readonly items: TreeNode[];
      readonly tensors?: TensorSummary;
    }
  | { readonly type: "set"; readonly length: number; readonly frozen: boolean }
  | { readonly type: "global"; readonly name: string }
  | {
      readonly type: "object";
      readonly className: string;
      readonly attributes: Array<{ readonly key: string | number; readonly value: TreeNode }>;
      readonly tensors?: TensorSummary;
    }
  | { readonly type: "storage"; readonly key: string; readonly dtype: string }
  | { readonly type: "persistent-id" }
  | { readonly type: "elided"; readonly reason: "depth" | "cycle" };

export interface TensorSummary {
  readonly tensorCount: number;
  readonly elementCount: number;
  readonly dtypes: string[];
}

const MAX_DEPTH = 6;
const MAX_ENTRIES = 40;
const MAX_STRING = 200;

/** A dict or list whose values are all tensors: a state dict, a list of buffers. */
function allTensors(values: readonly PyValue[]): values is TorchTensor[] {
  return values.length > 0 && values.every((v) => typeof v === "object" && v !== null && v.kind === "tensor");
}

/** Tensor counts below a node, memoised per object so shared subtrees are summed once per path cheaply. */
class SummaryCache {
  private readonly cache = new Map<object, TensorSummary>();
  private readonly active = new Set<object>();

  /** Below `MAX_WALK_DEPTH` nothing is counted: the walk that lists tensors stops there too. */
  of(value: PyValue, depth = 0): TensorSummary {
    if (typeof value !== "object" || value === null || depth > MAX_WALK_DEPTH) return EMPTY;
    if (value.kind === "tensor") {
      return { tensorCount: 1, elementCount: elementCount(value.shape), dtypes: [value.dtype] };
    }
    const cached = this.cache.get(value);
    if (cached) return cached;
    if (this.active.has(value)) return EMPTY;
    this.active.add(value);
    let summary = EMPTY;
    forEachChild(value, (_, child) => {
      summary = merge(summary, this.of(child, depth + 1));
    });
    this.active.delete(value);
    this.cache.set(value, summary);
    return summary;
  }
}

const EMPTY: TensorSummary = { tensorCount: 0, elementCount: 0, dtypes: [] };

function merge(a: TensorSummary, b: TensorSummary): TensorSummary {
  if (b.tensorCount === 0) return a;
  if (a.tensorCount === 0) return b;
  const dtypes = a.dtypes.concat(b.dtypes.filter((d) => !a.dtypes.includes(d)));
  return {
    tensorCount: a.tensorCount + b.tensorCount,
    elementCount: a.elementCount + b.elementCount,
    dtypes,
  };
}

function className(callable: PyValue): string {
  if (typeof callable === "object" && callable !== null && callable.kind === "global")
    return qualifiedName(callable);
  return "<dynamic class>";
}

export function buildTree(root: PyValue): TreeNode {
  const summaries = new SummaryCache();
  const ancestors = new Set<object>();

  const withTensors = (value: PyValue): { tensors?: TensorSummary } => {
    const summary = summaries.of(value);
    return summary.tensorCount > 0 ? { tensors: summary } : {};
  };

  const node = (value: PyValue, depth: number): TreeNode => {
    if (value === null) return { type: "none" };
    switch (typeof value) {
      case "boolean":
        return { type: "bool", value };
      case "number":
        return { type: "int", value };
      case "bigint":
        return { type: "int", value: value.toString() };
      case "string":
        return { type: "str", value: value.slice(0, MAX_STRING), length: value.length };
      default:
        break;
    }
    switch (value.kind) {
      case "float":
        return { type: "float", value: pythonFloat(value.value) };
      case "bytes":
        return { type: "bytes", length: value.value.length, mutable: value.mutable };
      case "tensor":
        return { type: "tensor", dtype: value.dtype, shape: value.shape, parameter: value.parameter };
      case "set":
        return { type: "set", length: value.items.length, frozen: value.frozen };
      case "global":
        return { type: "global", name: qualifiedName(value) };
      case "storage":
        return { type: "storage", key: value.key, dtype: value.dtype };
      case "persistent":
        return { type: "persistent-id" };
      default:
        break;
    }
    if (ancestors.has(value)) return { type: "elided", reason: "cycle" };
    const numpy = value.kind === "object" ? describeNumpy(value) : undefined;
    if (numpy) return numpy;
    if (value.kind === "dict" && allTensors(value.values)) {
      return {
        type: "tensors",
        container: "dict",
        ...(value.className ? { className: value.className } : {}),
        ...summaries.of(value),
      };
    }
    if ((value.kind === "list" || value.kind === "tuple") && allTensors(value.items)) {
      return { type: "tensors", container: value.kind, ...summaries.of(value) };
    }
    if (depth >= MAX_DEPTH) return { type: "elided", reason: "depth" };
    ancestors.add(value);
    let result: TreeNode;
    switch (value.kind) {
      case "dict":
        result = {
          type: "dict",
          ...(value.className ? { className: value.className } : {}),
          length: value.keys.length,
          entries: value.keys.slice(0, MAX_ENTRIES).map((key, i) => ({
            key: keySegment(key),
            value: node(value.values[i] as PyValue, depth + 1),
          })),
          ...withTensors(value),
        };
        break;
      case "list":
      case "tuple":
        result = {
          type: value.kind,
          length: value.items.length,
          items: value.items.slice(0, MAX_ENTRIES).map((item) => node(item, depth + 1)),
          ...withTensors(value),
        };
        break;
      default: {
        const attributes = objectFields(value).map(([key, v]) => ({
          key,
          value: node(v, depth + 1),
        }));
        value.dictItems.forEach(([key, v]) => {
          attributes.push({ key: String(keySegment(key)), value: node(v, depth + 1) });
        });
        result = {
          type: "object",
          className: className(value.callable),
          attributes: attributes.slice(0, MAX_ENTRIES),
          ...withTensors(value),
        };
      }
    }
    ancestors.delete(value);
    return result;
  };

  return node(root, 0);
}

/** Python's spelling of a float: `5.0`, `nan`, `-inf` (JSON has no NaN, so those become strings). */
export function pythonFloat(value: number): number | string {
  if (Number.isNaN(value)) return "nan";
  if (!Number.isFinite(value)) return value > 0 ? "inf" : "-inf";
  return value;
}

const NUMPY_MODULES = new Set(["numpy.core.multiarray", "numpy._core.multiarray"]);

/** numpy's dtype strings as torch-style names: `f4` -> float32, `<i8` -> int64. */
function numpyDtypeName(dtype: PyValue | undefined): string {
  const code = isBoxed(dtype, "object") && typeof dtype.args[0] === "string" ? dtype.args[0] : "?";
  const match = /^[<>=|]?([a-zA-Z])(\d*)$/.exec(code);
  if (!match) return code;
  const bits = Number(match[2] || "0") * 8;
  const kind: Record<string, string> = { f: "float", i: "int", u: "uint", c: "complex", b: "bool" };
  const base = kind[match[1] as string];
  if (base === "bool") return "bool";
  return base ? `${base}${bits}` : code;
}

/**
 * numpy arrays and scalars as a person thinks of them. Arrays pickle as `_reconstruct(ndarray, (0,), b"b")`
 * plus a BUILD state `(version, shape, dtype, is_fortran, data)`; scalars as `scalar(dtype, raw bytes)`.
 */
export function describeNumpy(value: PyObject): TreeNode | undefined {
  const callable = value.callable;
  if (!isBoxed(callable, "global") || !NUMPY_MODULES.has(callable.module)) return undefined;
  if (callable.name === "_reconstruct" && isBoxed(value.state, "tuple")) {
    const [, shape, dtype] = value.state.items;
    const dims = isBoxed(shape, "tuple") ? shape.items.filter((d): d is number => typeof d === "number") : [];
    return { type: "ndarray", dtype: numpyDtypeName(dtype), shape: dims };
  }
  if (callable.name === "scalar") {
    const dtype = numpyDtypeName(value.args[0]);
    const raw = value.args[1];
    if (!isBoxed(raw, "bytes")) return { type: "numpy-scalar", dtype };
    const view = new DataView(raw.value.buffer, raw.value.byteOffset, raw.value.byteLength);
    const decoded =
      dtype === "float64" && raw.value.length === 8
        ? pythonFloat(view.getFloat64(0, true))
        : dtype === "float32" && raw.value.length === 4
          ? pythonFloat(view.getFloat32(0, true))
          : dtype === "int64" && raw.value.length === 8
            ? view.getBigInt64(0, true).toString()
            : dtype === "int32" && raw.value.length === 4
              ? view.getInt32(0, true)
              : undefined;
    return decoded === undefined
      ? { type: "numpy-scalar", dtype }
      : { type: "numpy-scalar", dtype, value: decoded };
  }
  return undefined;
}
