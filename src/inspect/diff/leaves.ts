import { codecs } from "../../reader/codecs.js";
import { isBoxed, type PyObject, type PyValue, qualifiedName } from "../../reader/pickle/value.js";
import { buildTree, describeNumpy, type TreeNode } from "../tree.js";
import { type KeyPath, objectFields, type WalkLimit, walkPaths } from "../walk.js";

/**
 * The non-tensor values of a checkpoint as `ckpt diff` compares them: every leaf below the root (a number, a
 * string, None, bytes, a numpy array, an object without attributes, an empty container) by its key path,
 * with the node the structure tree shows for it and a fingerprint that is equal exactly when the values are.
 * Containers are not leaves: their entries are (a list that grew has entries only on one side).
 */
export interface Leaf {
  readonly path: KeyPath;
  readonly node: TreeNode;
  readonly fingerprint: string;
}

export interface LeafWalk {
  readonly leaves: Leaf[];
  readonly truncated: WalkLimit | undefined;
}

const MAX_CANONICAL_ITEMS = 64;
const MAX_CANONICAL_DEPTH = 4;

function digest(bytes: Uint8Array): string {
  const hash = codecs().sha256();
  hash.update(bytes);
  return hash.hex();
}

/**
 * A string equal for equal values: type and value of scalars (so `1`, `1.0` and `True` differ, as their
 * types do), content hashes of bytes and numpy data, class and arguments of objects (bounded).
 */
function canonical(value: PyValue, depth = 0): string {
  if (value === null) return "None";
  switch (typeof value) {
    case "boolean":
      return value ? "True" : "False";
    case "number":
    case "bigint":
      return `int:${value}`;
    case "string":
      return `str:${JSON.stringify(value)}`;
    default:
      break;
  }
  if (depth > MAX_CANONICAL_DEPTH) return `<${value.kind}>`;
  const items = (list: readonly PyValue[]) =>
    list
      .slice(0, MAX_CANONICAL_ITEMS)
      .map((item) => canonical(item, depth + 1))
      .join(",") + (list.length > MAX_CANONICAL_ITEMS ? `,...${list.length}` : "");
  switch (value.kind) {
    case "float":
      return `float:${Number.isNaN(value.value) ? "nan" : Object.is(value.value, -0) ? "-0" : value.value}`;
    case "bytes":
      return `${value.mutable ? "bytearray" : "bytes"}:${value.value.length}:${digest(value.value)}`;
    case "tuple":
    case "list":
      return `${value.kind}(${items(value.items)})`;
    case "set":
      return `${value.frozen ? "frozenset" : "set"}(${items(value.items)})`;
    case "dict":
      return `dict(${value.keys.length}:${items(value.keys)}:${items(value.values)})`;
    case "global":
      return `global:${qualifiedName(value)}`;
    case "storage":
      return `storage:${value.key}:${value.dtype}`;
    case "persistent":
      return `persistent:${canonical(value.id, depth + 1)}`;
    case "tensor":
      return `tensor:${value.dtype}:${value.shape.join("x")}`;
    case "object":
      return objectCanonical(value, depth);
  }
}

function objectCanonical(value: PyObject, depth: number): string {
  const callable = isBoxed(value.callable, "global") ? qualifiedName(value.callable) : "<dynamic>";
  const state = value.state === undefined ? "" : canonical(value.state, depth + 1);
  const args = value.args.map((arg) => canonical(arg, depth + 1)).join(",");
  return `object:${callable}(${args}):${state}`;
}

/** Whether a value is compared whole (a leaf) rather than through the entries below it. */
function leafNode(value: PyValue): TreeNode | undefined {
  if (typeof value !== "object" || value === null) return buildTree(value);
  switch (value.kind) {
    case "dict":
      return value.keys.length === 0 ? buildTree(value) : undefined;
    case "list":
    case "tuple":
      return value.items.length === 0 ? buildTree(value) : undefined;
    case "object": {
      const numpy = describeNumpy(value);
      if (numpy) return numpy;
      const empty =
        objectFields(value).length === 0 && value.listItems.length === 0 && value.dictItems.length === 0;
      return empty ? buildTree(value) : undefined;
    }
    case "tensor":
      return undefined;
    default:
      return buildTree(value);
  }
}

/** Every leaf below `root` with its key path, in the order the walk meets them (tensors are skipped). */
export function findLeaves(root: PyValue): LeafWalk {
  const leaves: Leaf[] = [];
  const truncated = walkPaths(root, (path, value) => {
    if (isBoxed(value, "tensor")) return false;
    const node = leafNode(value);
    if (!node) return true;
    leaves.push({ path: [...path], node, fingerprint: canonical(value) });
    return false;
  });
  return { leaves, truncated };
}
