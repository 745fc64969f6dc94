import type {
  DcpChunkMetadata,
  DcpItemMetadata,
  DcpMetadataIndex,
  DcpStorageInfo,
  DcpTensorProperties,
} from "../metadataTypes.js";

// ---- values on the lane's stack (`metadataLane.ts`), and what each global it meets is to it

// ---- values on the lane's stack

/** A tuple is a plain array (never written after it is made), so a chunk's offsets are its tuple's items. */
export type Tuple = readonly Value[];
export type Value = null | boolean | number | string | Tuple | List | Dict | Global | Instance | Call;

export class List {
  readonly items: Value[] = [];
}

/**
 * A dict of str or object keys, with `dictSet`'s semantics (an equal str key keeps its place). Keys and values
 * alternate in one array: a dataclass's state is one SETITEMS into an empty dict, which then takes its items
 * in one exact-size copy.
 */
export class Dict {
  entries: Value[] = [];
  /** Where each str key is in `entries`, once the dict outgrows `SMALL_DICT` keys. */
  private index: Map<string, number> | undefined;

  /** SETITEMS of `stack[from, to)`, keys and values alternating. */
  setPairs(stack: readonly Value[], from: number, to: number): void {
    if (this.entries.length === 0 && to - from <= 2 * SMALL_DICT && distinctStrings(stack, from, to)) {
      this.entries = stack.slice(from, to);
      return;
    }
    for (let i = from; i < to; i += 2) this.set(stack[i] as Value, stack[i + 1] as Value);
  }

  set(key: Value, value: Value): void {
    const entries = this.entries;
    if (typeof key === "string") {
      const at = this.position(key);
      if (at >= 0) {
        entries[at + 1] = value;
        return;
      }
      this.index?.set(key, entries.length);
    } else if (!(key instanceof Instance || key instanceof Call)) {
      // Ints, tuples, globals would need Python's equality across types (`1 == True`): not in a `.metadata`.
      throw DECLINE;
    }
    // Objects hash by identity, so an object key is always a new entry, as in the graph.
    entries.push(key, value);
  }

  get(key: string): Value | undefined {
    const at = this.position(key);
    return at >= 0 ? this.entries[at + 1] : undefined;
  }

  private position(key: string): number {
    if (this.index !== undefined) return this.index.get(key) ?? -1;
    const entries = this.entries;
    for (let i = 0; i < entries.length; i += 2) if (entries[i] === key) return i;
    if (entries.length >= 2 * SMALL_DICT) {
      const index = new Map<string, number>();
      for (let i = 0; i < entries.length; i += 2) {
        const k = entries[i];
        if (typeof k === "string") index.set(k, i);
      }
      this.index = index;
    }
    return -1;
  }
}

/** Whether the keys of `items[from, to)` (keys and values alternating) are str and distinct. */
function distinctStrings(items: readonly Value[], from: number, to: number): boolean {
  for (let i = from; i < to; i += 2) {
    const key = items[i];
    if (typeof key !== "string") return false;
    for (let j = from; j < i; j += 2) if (items[j] === key) return false;
  }
  return true;
}

const SMALL_DICT = 8;

export class Global {
  readonly qualified: string;
  /** The class's own name, as `classNameOf` reads it: after the last dot of `module.name`. */
  readonly shortName: string;
  /** What NEWOBJ or REDUCE of it makes, decided once per global rather than at each of 650,000 calls. */
  readonly role: GlobalRole;
  constructor(
    readonly module: string,
    readonly name: string,
  ) {
    this.qualified = `${module}.${name}`;
    this.shortName = this.qualified.slice(this.qualified.lastIndexOf(".") + 1);
    this.role = roleOf(module, name);
  }
}

/**
 * `class`: one of DCP's dataclasses (NEWOBJ); `size`, `layout`: torch.Size and `_get_layout`, which torch's
 * hooks model as their argument; `call`: kept as a call (Enum members, getattr, paths); `other`: declined.
 */
type GlobalRole = "class" | "size" | "layout" | "call" | "other";

function roleOf(module: string, name: string): GlobalRole {
  if (DCP_MODULES.has(module) && DCP_CLASSES.has(name)) return "class";
  if (module === "torch" && name === "Size") return "size";
  if (module === "torch.serialization" && name === "_get_layout") return "layout";
  if (
    (module === "builtins" && name === "getattr") ||
    (DCP_MODULES.has(module) && ENUMS.has(name)) ||
    (PATHS.has(module) && PATH_CLASSES.has(name))
  )
    return "call";
  return "other";
}

/** `cls.__new__(cls)` from NEWOBJ, then BUILD; the hot classes are decoded at their BUILD. */
export class Instance {
  state: Value | undefined = undefined;
  built = false;
  /** What BUILD decoded, by the class's own name (see `decodeAtBuild`). */
  decoded:
    | DcpChunkMetadata
    | DcpTensorProperties
    | DcpItemMetadata
    | StorageIndex
    | DcpStorageInfo
    | undefined;
  constructor(readonly cls: Global) {}
}

/** A REDUCE the lane keeps as a call: an Enum member (`cls(value)`, `getattr(cls, name)`), a path. */
export class Call {
  constructor(
    readonly callable: Global,
    readonly args: Tuple,
  ) {}
}

export type StorageIndex = DcpMetadataIndex;

/** Thrown inside the lane to give the stream to the general machine. */
export const DECLINE: unique symbol = Symbol("decline");
/** A memo entry the lane will not hand out again (a container or an object: mutable, or decoded once). */
export const UNREADABLE: unique symbol = Symbol("unreadable");

export const EMPTY: Tuple = Object.freeze([]);

/** DCP's modules across torch versions (1.13's `_shard` ones and today's). */
const DCP_MODULES = new Set([
  "torch.distributed.checkpoint.metadata",
  "torch.distributed.checkpoint.filesystem",
  "torch.distributed._shard.checkpoint.metadata",
  "torch.distributed._shard.checkpoint.filesystem",
  "torch.distributed._shard.sharded_tensor.metadata",
]);
const DCP_CLASSES = new Set([
  "Metadata",
  "TensorStorageMetadata",
  "BytesStorageMetadata",
  "ChunkStorageMetadata",
  "TensorProperties",
  "MetadataIndex",
  "_StorageInfo",
  "StorageMeta",
]);
const ENUMS = new Set(["_MEM_FORMAT_ENCODING", "MEM_FORMAT_ENCODING"]);
const PATHS = new Set(["pathlib", "pathlib._local"]);
const PATH_CLASSES = new Set(["PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath", "Path"]);
