import { hex } from "../bytes.js";
import { ReaderError } from "../errors.js";

/**
 * The object graph a pickle describes, as inert data. Nothing here can run: a class or function named by a
 * pickle is a `PyGlobal` (just its module and name), and calling it produces a `PyObject` that records the call.
 *
 * Python ints are JS numbers when they fit in a double exactly, `bigint` otherwise; Python floats are boxed
 * (`PyFloat`) so `1` and `1.0` stay distinguishable. Shared references stay shared: the same JS object is
 * reachable from every place the pickle's memo put it, which is how tied weights appear at two paths.
 */
export type PyValue = null | boolean | number | bigint | string | PyBoxed;

export type PyBoxed =
  | PyFloat
  | PyBytes
  | PyTuple
  | PyList
  | PyDict
  | PySet
  | PyGlobal
  | PyObject
  | PyPersistent
  | TorchStorage
  | TorchTensor;

export interface PyFloat {
  readonly kind: "float";
  readonly value: number;
}

export interface PyBytes {
  readonly kind: "bytes";
  readonly value: Uint8Array;
  /** `bytearray` rather than `bytes`. */
  readonly mutable: boolean;
}

export interface PyTuple {
  readonly kind: "tuple";
  readonly items: PyValue[];
}

export interface PyList {
  readonly kind: "list";
  readonly items: PyValue[];
}

/** A dict or dict subclass. Insertion order is kept; `index` maps hashable keys to their position. */
export interface PyDict {
  readonly kind: "dict";
  // Writable so that `dictSetPairs` can give an empty dict arrays of the exact size its first SETITEMS needs.
  keys: PyValue[];
  values: PyValue[];
  /**
   * Position of each string key, created once the dict outgrows `SMALL_DICT` keys (smaller ones are searched):
   * string keys are looked up as they are, without building a hash string.
   */
  stringIndex: Map<string, number> | undefined;
  /** Position of each other hashable key, by `hashKey`. */
  index: Map<string, number> | undefined;
  /** `collections.OrderedDict`, `collections.Counter`, ... when built from such a class. */
  className: string | undefined;
  /** State applied by BUILD (a state_dict's `_metadata` lives here). */
  attributes: PyValue | undefined;
}

export interface PySet {
  readonly kind: "set";
  readonly frozen: boolean;
  readonly items: PyValue[];
}

/** A class or function named by GLOBAL / STACK_GLOBAL / INST / OBJ. Never imported. */
export interface PyGlobal {
  readonly kind: "global";
  readonly module: string;
  readonly name: string;
  /** `module.name`, made once: every REDUCE looks its callable up by it. */
  readonly qualified: string;
}

/** What calling or instantiating something would have produced, described instead of done. */
export interface PyObject {
  readonly kind: "object";
  readonly callable: PyValue;
  readonly via: "reduce" | "newobj" | "newobj_ex" | "inst" | "obj";
  readonly args: PyValue[];
  readonly kwargs: PyDict | undefined;
  state: PyValue | undefined;
  /**
   * Items added by APPEND(S) / SETITEM(S) on an object that is not a plain list or dict. Most objects get
   * none, so both start as one shared frozen empty array; `objectListItems` / `objectDictItems` give the
   * writable array (a stray push on the shared one throws rather than leaking items between objects).
   */
  listItems: readonly PyValue[];
  dictItems: ReadonlyArray<readonly [PyValue, PyValue]>;
}

/** A persistent id nobody resolved (a pickle read without a torch layout behind it). */
export interface PyPersistent {
  readonly kind: "persistent";
  readonly id: PyValue;
}

/** One storage record as named by a persistent id. `numel` counts elements of `dtype`. */
export interface TorchStorage {
  readonly kind: "storage";
  readonly key: string;
  /** The storage class's element type; `uint8` for UntypedStorage (raw bytes). */
  readonly dtype: string;
  readonly device: string;
  readonly numel: number;
  readonly sizeBytes: number;
  /**
   * Legacy files of torch <= 0.4 could save a storage that is a view of a larger one: `key` is then the
   * view's own key (a storage of its own to torch, as it is here), `root` the key of the storage whose
   * bytes it shares, from element `offset`; `numel`/`sizeBytes` are the view's.
   */
  readonly view?: { readonly root: string; readonly offset: number };
}

export type TensorLayout =
  | "strided"
  | "sparse_coo"
  | "sparse_csr"
  | "sparse_csc"
  | "sparse_bsr"
  | "sparse_bsc";

export type Quantization =
  | {
      readonly scheme: "per_tensor_affine" | "per_tensor_symmetric";
      readonly scale: number;
      readonly zeroPoint: number;
    }
  | {
      readonly scheme: "per_channel_affine" | "per_channel_symmetric" | "per_channel_affine_float_qparams";
      readonly scales: TorchTensor;
      readonly zeroPoints: TorchTensor;
      readonly axis: number;
    };

export interface TorchTensor {
  readonly kind: "tensor";
  /** torch's dtype name without `torch.`. */
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  /** Storage offset in elements of `dtype`. */
  readonly offset: number;
  /** `null` for tensors saved without data (meta device, wrapper subclasses) and for sparse tensors. */
  readonly storage: TorchStorage | null;
  requiresGrad: boolean;
  parameter: boolean;
  readonly layout: TensorLayout;
  readonly quantization?: Quantization | undefined;
  /** Sparse COO: the indices and values tensors. */
  readonly sparse?: { readonly indices: TorchTensor; readonly values: TorchTensor } | undefined;
  /** The rebuild function torch would call, e.g. `torch._utils._rebuild_tensor_v2`. */
  readonly rebuild: string;
  /** Python-level state attached to the tensor (Parameter subclasses, tensor subclasses). */
  pythonState?: PyValue | undefined;
  /** The Python class when the tensor is a subclass (`torch._tensor._rebuild_from_type_v2`). */
  subclass?: string | undefined;
}

export function pyFloat(value: number): PyFloat {
  return { kind: "float", value };
}

export function pyTuple(items: PyValue[]): PyTuple {
  return { kind: "tuple", items };
}

export function pyList(items: PyValue[]): PyList {
  return { kind: "list", items };
}

/**
 * Python's empty tuple is one shared object, and so is this one: a state dict's metadata builds hundreds of
 * thousands (every `NEWOBJ` of a dataclass takes `()`), and each would otherwise be two allocations kept alive.
 */
export const EMPTY_TUPLE: PyTuple = Object.freeze({
  kind: "tuple",
  items: Object.freeze([]) as unknown as PyValue[],
});

const NO_ITEMS: readonly never[] = Object.freeze([]);

/** What calling or instantiating `callable` would produce, recorded. */
export function pyObject(
  callable: PyValue,
  via: PyObject["via"],
  args: PyValue[],
  kwargs: PyDict | undefined,
): PyObject {
  return {
    kind: "object",
    callable,
    via,
    args,
    kwargs,
    state: undefined,
    listItems: NO_ITEMS,
    dictItems: NO_ITEMS,
  };
}

/** The object's APPEND items, made writable on the first one. */
export function objectListItems(object: PyObject): PyValue[] {
  if (object.listItems === NO_ITEMS) object.listItems = [];
  return object.listItems as PyValue[];
}

/** The object's SETITEM pairs, made writable on the first one. */
export function objectDictItems(object: PyObject): Array<[PyValue, PyValue]> {
  if (object.dictItems === NO_ITEMS) object.dictItems = [];
  return object.dictItems as Array<[PyValue, PyValue]>;
}

export function pyDict(className?: string): PyDict {
  return {
    kind: "dict",
    keys: [],
    values: [],
    stringIndex: undefined,
    index: undefined,
    className,
    attributes: undefined,
  };
}

export function isBoxed<K extends PyBoxed["kind"]>(
  value: PyValue | undefined,
  kind: K,
): value is Extract<PyBoxed, { kind: K }> {
  return typeof value === "object" && value !== null && value.kind === kind;
}

/**
 * A string identity for hashable keys, equal exactly when Python's `==` would be (so `1`, `True` and `1.0`
 * collide, as they do in a Python dict). `undefined` for values we do not hash (they never collide).
 */
export function hashKey(value: PyValue, depth = 0): string | undefined {
  if (value === null) return "N";
  switch (typeof value) {
    case "string":
      return `s${value}`;
    case "boolean":
      return value ? "n1" : "n0";
    case "number":
      return `n${value}`;
    case "bigint":
      return `n${value.toString()}`;
    default:
      break;
  }
  switch (value.kind) {
    case "float":
      return Number.isInteger(value.value) ? `n${BigInt(value.value).toString()}` : `f${value.value}`;
    case "bytes":
      return value.mutable ? undefined : `b${hex(value.value)}`;
    case "tuple": {
      checkKeyDepth(depth);
      const parts: string[] = [];
      for (const item of value.items) {
        const key = hashKey(item, depth + 1);
        if (key === undefined) return undefined;
        parts.push(key);
      }
      return `t(${parts.join(",")})`;
    }
    case "global":
      return `g${value.module}.${value.name}`;
    default:
      return undefined;
  }
}

/**
 * Below this many keys a string key is found by comparing keys, not through `stringIndex`: the dicts of a
 * checkpoint's objects (a dataclass's `__dict__`, a param group) hold a handful of keys, and a Map for each
 * was most of what reading a DCP `.metadata` of 200,000 chunks allocated.
 */
const SMALL_DICT = 8;

/** Position of string `key` among the dict's keys, by comparison; -1 when absent. */
function smallStringPosition(dict: PyDict, key: string): number {
  const keys = dict.keys;
  for (let i = 0; i < keys.length; i++) if (keys[i] === key) return i;
  return -1;
}

/** Python `d[key] = value`: replaces the value of an equal key, else appends. */
export function dictSet(dict: PyDict, key: PyValue, value: PyValue): void {
  // A str never equals a non-str in Python, so string keys can live in an index of their own.
  const isString = typeof key === "string";
  if (isString && dict.stringIndex === undefined) {
    const at = smallStringPosition(dict, key);
    if (at >= 0) {
      dict.values[at] = value;
      return;
    }
    if (dict.keys.length < SMALL_DICT) {
      dict.keys.push(key);
      dict.values.push(value);
      return;
    }
    const index = new Map<string, number>();
    dict.keys.forEach((k, i) => {
      if (typeof k === "string") index.set(k, i);
    });
    dict.stringIndex = index;
  }
  const hash = isString ? key : hashKey(key);
  if (hash !== undefined) {
    if (!isString) dict.index ??= new Map();
    const index = (isString ? dict.stringIndex : dict.index) as Map<string, number>;
    const at = index.get(hash);
    if (at !== undefined) {
      dict.values[at] = value;
      return;
    }
    index.set(hash, dict.keys.length);
  }
  dict.keys.push(key);
  dict.values.push(value);
}

/**
 * `d[k1] = v1; d[k2] = v2; ...` for alternating keys and values. The usual case, SETITEMS filling a new
 * dict with a few distinct string keys (an object's `__dict__`), gets arrays of exactly that size: growing
 * from empty by pushes reserves 17 slots in each, which for a `.metadata` of 200,000 chunks was most of its
 * heap.
 */
export function dictSetPairs(dict: PyDict, items: readonly PyValue[]): void {
  const count = items.length >> 1;
  if (dict.keys.length === 0 && count > 0 && count <= SMALL_DICT && distinctStrings(items, count)) {
    const keys = new Array<PyValue>(count);
    const values = new Array<PyValue>(count);
    for (let i = 0; i < count; i++) {
      keys[i] = items[2 * i] as PyValue;
      values[i] = items[2 * i + 1] as PyValue;
    }
    dict.keys = keys;
    dict.values = values;
    return;
  }
  for (let i = 0; i + 1 < items.length; i += 2) dictSet(dict, items[i] as PyValue, items[i + 1] as PyValue);
}

/** The `count` keys at even positions of `items` are strings, none repeated. */
function distinctStrings(items: readonly PyValue[], count: number): boolean {
  for (let i = 0; i < count; i++) {
    const key = items[2 * i];
    if (typeof key !== "string") return false;
    for (let j = 0; j < i; j++) if (items[2 * j] === key) return false;
  }
  return true;
}

/** The value at a string key, or `undefined`. */
export function dictGet(dict: PyDict, key: string): PyValue | undefined {
  const at =
    dict.stringIndex === undefined ? smallStringPosition(dict, key) : (dict.stringIndex.get(key) ?? -1);
  return at < 0 ? undefined : dict.values[at];
}

/** `module.name` of a global, for lookups in tables of known callables. */
export function qualifiedName(value: PyGlobal): string {
  return value.qualified;
}

export function pyGlobal(module: string, name: string): PyGlobal {
  return { kind: "global", module, name, qualified: `${module}.${name}` };
}

/**
 * `target.push(...items)` without the spread: a spread passes every item as an argument, and a few hundred
 * thousand arguments overflow the call stack (a state dict's values, a hostile pickle's MARK frame).
 */
export function appendAll<T>(target: T[], items: readonly T[]): void {
  for (const item of items) target.push(item);
}

/**
 * How deeply tuples used as dict keys or set items may nest. Unpickling builds any depth without recursion,
 * but hashing one recurses (in CPython too); a hostile 400 KB pickle can nest 200,000 deep.
 */
const MAX_KEY_DEPTH = 1_000;

function checkKeyDepth(depth: number): void {
  if (depth > MAX_KEY_DEPTH) {
    throw new ReaderError(
      "pickle-limit",
      `a dict key or set item nests tuples more than ${MAX_KEY_DEPTH} deep`,
    );
  }
}

/** Values Python refuses as dict keys or set items. */
export function isUnhashable(value: PyValue, depth = 0): boolean {
  if (typeof value !== "object" || value === null) return false;
  switch (value.kind) {
    case "list":
    case "dict":
      return true;
    case "set":
      return !value.frozen;
    case "bytes":
      return value.mutable;
    case "tuple":
      checkKeyDepth(depth);
      return value.items.some((item) => isUnhashable(item, depth + 1));
    default:
      return false;
  }
}

/** Set semantics: equal hashable items kept once (the first), in order. */
export function uniqueItems(items: PyValue[], existing: PyValue[] = []): PyValue[] {
  const seen = new Set<string>();
  for (const item of existing) {
    const key = hashKey(item);
    if (key !== undefined) seen.add(key);
  }
  const out: PyValue[] = [];
  for (const item of items) {
    const key = hashKey(item);
    if (key !== undefined) {
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.push(item);
  }
  return out;
}
