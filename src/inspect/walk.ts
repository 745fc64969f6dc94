import { isBoxed, type PyObject, type PyValue, type TorchTensor } from "../reader/pickle/value.js";
import { stateFieldNames } from "../reader/torch/stateFields.js";

/** A key path into the loaded object: dict keys (strings, or numbers for int keys), indices, attribute names. */
export type KeyPath = Array<string | number>;

export interface TensorAt {
  readonly path: KeyPath;
  readonly tensor: TorchTensor;
}

/** How many nodes a walk may visit: a pickle's memo can make a tiny file describe an exponential tree. */
export const MAX_WALK_VISITS = 2_000_000;

/**
 * How deep a walk descends. Unpickling is iterative, so a 400 KB pickle can nest lists 200,000 deep; walking
 * that recursively would overflow the stack. Python's own recursion limit is 1,000; no checkpoint nests
 * anywhere near it.
 */
export const MAX_WALK_DEPTH = 1_000;

/** Which limit stopped a walk, if one did. */
export type WalkLimit = "visits" | "depth";

export interface WalkResult {
  readonly tensors: TensorAt[];
  /** Set when the walk stopped at `MAX_WALK_VISITS` nodes or skipped what lies below `MAX_WALK_DEPTH`. */
  readonly truncated: WalkLimit | undefined;
}

/**
 * The path segment Python would use for a dict key: strings as is, ints as numbers, anything else by a
 * Python-like repr (a tuple key `(1, 2)` becomes `"(1, 2)"`).
 */
export function keySegment(key: PyValue): string | number {
  if (typeof key === "string") return key;
  if (typeof key === "number") return key;
  if (typeof key === "bigint") return key.toString();
  if (typeof key === "boolean") return key ? "True" : "False";
  return reprShort(key);
}

export function reprShort(value: PyValue): string {
  if (value === null) return "None";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "True" : "False";
    default:
      break;
  }
  switch (value.kind) {
    case "float":
      return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
    case "tuple":
      return `(${value.items.map(reprShort).join(", ")}${value.items.length === 1 ? "," : ""})`;
    case "global":
      return `${value.module}.${value.name}`;
    default:
      return `<${value.kind}>`;
  }
}

const isDictOrNone = (value: PyValue | undefined) => value === null || isBoxed(value, "dict");

/**
 * An object's state and the class that state belongs to. A pickled TorchScript custom-class object (a
 * `torch.ScriptObject`, such as quantized packed parameters) carries `(state, "__torch__.<its class>")`.
 */
function scriptObjectState(object: PyObject): { state: PyValue | undefined; className: string | undefined } {
  const callable = isBoxed(object.callable, "global") ? object.callable.qualified : undefined;
  const state = object.state;
  if (callable === "torch.ScriptObject" && isBoxed(state, "tuple") && state.items.length === 2) {
    const [inner, name] = state.items;
    if (typeof name === "string") return { state: inner, className: name };
  }
  return { state, className: callable };
}

/**
 * What an object's BUILD state holds, by name where it has names: the attributes `vars(obj)` would show (a
 * state dict, or Python's `(dict, slotstate)` pair), or the positions of a tuple state, named where the class
 * is known (quantized modules pickle `(in_channels, ..., weight, bias, scale, ...)`) and by index otherwise.
 */
export function objectFields(object: PyObject): Array<[string | number, PyValue]> {
  const out: Array<[string | number, PyValue]> = [];
  const addDict = (dict: PyValue | undefined) => {
    if (!isBoxed(dict, "dict")) return;
    dict.keys.forEach((key, i) => {
      if (typeof key === "string") out.push([key, dict.values[i] as PyValue]);
    });
  };
  const { state, className } = scriptObjectState(object);
  const sequence = isBoxed(state, "tuple") || isBoxed(state, "list") ? state.items : undefined;
  const names = className === undefined ? undefined : stateFieldNames(className);
  if (sequence && names) {
    sequence.forEach((item, i) => {
      out.push([names[i] ?? i, item]);
    });
  } else if (sequence && sequence.length === 2 && sequence.every(isDictOrNone)) {
    addDict(sequence[0]);
    addDict(sequence[1]);
  } else if (sequence) {
    sequence.forEach((item, i) => {
      out.push([i, item]);
    });
  } else {
    addDict(state);
  }
  return out;
}

/**
 * Calls `visit` with each value directly below `value` and the path segment that leads to it: a dict's
 * values by key, a list's or tuple's items by index, an object's attributes (its BUILD state) by name and
 * the items APPEND/SETITEM added to it. Sets are skipped (unordered, and torch never puts tensors there).
 * Every walk that follows key paths goes through here, so they all agree on what lies below what.
 */
export function forEachChild(
  value: PyValue,
  visit: (segment: string | number, child: PyValue) => void,
): void {
  if (typeof value !== "object" || value === null) return;
  switch (value.kind) {
    case "dict":
      value.keys.forEach((key, i) => {
        visit(keySegment(key), value.values[i] as PyValue);
      });
      return;
    case "list":
    case "tuple":
      value.items.forEach((item, i) => {
        visit(i, item);
      });
      return;
    case "object":
      for (const [name, attribute] of objectFields(value)) visit(name, attribute);
      value.listItems.forEach((item, i) => {
        visit(i, item);
      });
      for (const [key, item] of value.dictItems) visit(keySegment(key), item);
      return;
    default:
      return;
  }
}

/**
 * Every tensor reachable from `root`, depth first in insertion order, once per path: a tensor shared by two
 * keys (tied weights, memo references) is listed at both. Sets are skipped (unordered, and torch never puts
 * tensors there); a reference back to an ancestor (a cycle) is not followed.
 */
export function findTensors(root: PyValue): WalkResult {
  const tensors: TensorAt[] = [];
  const truncated = walkPaths(root, (path, value) => {
    if (!isBoxed(value, "tensor")) return true;
    tensors.push({ path: [...path], tensor: value });
    return false;
  });
  return { tensors, truncated };
}

/**
 * Visits every value below `root` (itself included), depth first in insertion order, once per path, with the
 * path that leads to it (the array is reused: copy it to keep it). `visit` returns whether to descend into
 * the value's children. Only containers and objects count towards `MAX_WALK_VISITS`; a reference back to an
 * ancestor is not followed. Returns the limit that stopped the walk, if one did.
 */
export function walkPaths(
  root: PyValue,
  visit: (path: KeyPath, value: PyValue) => boolean,
): WalkLimit | undefined {
  const ancestors = new Set<object>();
  const path: KeyPath = [];
  let visits = 0;
  let truncated: WalkLimit | undefined;

  const step = (value: PyValue): void => {
    if (truncated === "visits") return;
    if (typeof value !== "object" || value === null) {
      visit(path, value);
      return;
    }
    if (++visits > MAX_WALK_VISITS) {
      truncated = "visits";
      return;
    }
    if (path.length > MAX_WALK_DEPTH) {
      truncated = "depth";
      return;
    }
    if (!visit(path, value) || ancestors.has(value)) return;
    ancestors.add(value);
    forEachChild(value, (segment, child) => {
      path.push(segment);
      step(child);
      path.pop();
    });
    ancestors.delete(value);
  };

  step(root);
  return truncated;
}

/** A key path as people write it: `model.backbone.conv1.weight`, `param_groups[0].lr`. */
export function formatKeyPath(path: ReadonlyArray<string | number>): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out === "" ? "(root)" : out;
}
