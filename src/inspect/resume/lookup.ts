import { dictGet, isBoxed, type PyValue } from "../../reader/pickle/value.js";
import { objectFields } from "../walk.js";

/** A path of string keys into dicts and object attributes, e.g. `["trainer", "_trainer", "optimizer"]`. */
export type KeyPathSpec = readonly string[];

/**
 * The value at `path` below `root`, through dicts (string keys), described objects' attributes and lists or
 * tuples (an index, `-1` for the last item: fairseq keeps its counter in `optimizer_history[-1]`).
 */
export function lookup(root: PyValue | undefined, path: KeyPathSpec): PyValue | undefined {
  let node = root;
  for (const key of path) {
    if (isBoxed(node, "dict")) node = dictGet(node, key);
    else if (isBoxed(node, "object")) node = objectFields(node).find(([name]) => name === key)?.[1];
    else if ((isBoxed(node, "list") || isBoxed(node, "tuple")) && /^-?\d+$/.test(key)) {
      const index = Number(key);
      node = node.items[index < 0 ? node.items.length + index : index];
    } else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Saved and meaningful: not absent, not None, not an empty dict or list (detectron2 saves `{}` for no scheduler). */
export function isPresent(value: PyValue | undefined): boolean {
  if (value === undefined || value === null) return false;
  if (isBoxed(value, "dict")) return value.keys.length > 0;
  if (isBoxed(value, "list") || isBoxed(value, "tuple")) return value.items.length > 0;
  return true;
}

/** An int counter value (Python int, or a float holding one, or a 0-d tensor is not read here). */
export function intValue(value: PyValue | undefined): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "bigint") return Number(value);
  if (isBoxed(value, "float") && Number.isInteger(value.value)) return value.value;
  return undefined;
}

/** A dict root's string keys, as convention fingerprints ask about them. */
export interface TopLevelKeys extends Iterable<string> {
  has(key: string): boolean;
  readonly size: number;
}

/**
 * The string keys of a dict root, for convention fingerprints: asked of the dict's own index, since a plain
 * state dict's keys are its 200,000 tensor names, which a Set of them would hash again.
 */
export function topLevelKeys(root: PyValue): TopLevelKeys {
  if (!isBoxed(root, "dict")) return new Set<string>();
  let size = 0;
  for (const key of root.keys) if (typeof key === "string") size++;
  return {
    has: (key) => dictGet(root, key) !== undefined,
    size,
    [Symbol.iterator]: () => root.keys.filter((k): k is string => typeof k === "string")[Symbol.iterator](),
  };
}
