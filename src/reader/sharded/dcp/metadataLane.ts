import { ReaderError } from "../../errors.js";
import { isPython2Only } from "../../pickle/compatNames.js";
import { decodeLong } from "../../pickle/ints.js";
import { DEFAULT_PICKLE_LIMITS, type GlobalReference } from "../../pickle/machine.js";
import { findMemoReads, type MemoReads } from "../../pickle/memoReads.js";
import { decodeUtf8Range } from "../../pickle/text.js";
import { dtypeFromGlobal } from "../../torch/dtypes.js";
import { asInt } from "../../torch/rebuild.js";
import {
  type DcpChunkMetadata,
  type DcpItemMetadata,
  type DcpMetadata,
  type DcpMetadataIndex,
  type DcpStorageInfo,
  type DcpStorageMeta,
  type DcpTensorProperties,
  layoutName,
  memoryFormatOf,
  pathText,
  plannerPath,
} from "./metadataTypes.js";

/**
 * The fast lane for DCP's `.metadata`: a pickle reader for exactly the streams `pickle.dump(Metadata)` writes,
 * which decodes each chunk, storage entry and tensor as its BUILD completes, instead of building the pickle
 * machine's general object graph and walking it afterwards. A 50,000-tensor, 4-rank `.metadata` (37 MB, 15.8
 * million opcodes) is most of what inspecting such a checkpoint costs, and the general graph of it (~430 MB,
 * half the parse spent in the garbage collector) is exactly what this lane never makes.
 *
 * It executes nothing and it is never the last word: it declines (`undefined`) at the first thing it does not
 * model (an opcode outside the protocol-4 subset the pickler uses for these dataclasses, a FRAME the bytes do
 * not honour, a class outside DCP's modules, a call other than torch.Size / _get_layout / an Enum member /
 * a path, a memo read of a container or an object, any shape the graph decoder would reject), and the caller
 * then runs the pickle machine and `decodeDcpMetadataGraph`. Where it answers, the answer equals that
 * decoder's, field for field, along with what the security scan needs of the parse (protocol, every global
 * with its offset, the opcodes used, where STOP ended); `test/dcp-metadata-lane.test.ts` holds it to that on
 * every real `.metadata` and on mutated ones.
 */

/** The decoded fields plus what the parse itself saw; `metadata.ts` adds the graph on demand. */
export interface LaneResult {
  readonly fields: Omit<DcpMetadata, "parse" | "pickleProtocol">;
  readonly protocol: number;
  readonly globals: GlobalReference[];
  readonly opcodes: Uint8Array;
  /** Just past STOP. */
  readonly end: number;
}

// ---- values on the lane's stack

/** A tuple is a plain array (never written after it is made), so a chunk's offsets are its tuple's items. */
type Tuple = readonly Value[];
type Value = null | boolean | number | string | Tuple | List | Dict | Global | Instance | Call;

class List {
  readonly items: Value[] = [];
}

/**
 * A dict of str or object keys, with `dictSet`'s semantics (an equal str key keeps its place). Keys and values
 * alternate in one array: a dataclass's state is one SETITEMS into an empty dict, which then takes its items
 * in one exact-size copy.
 */
class Dict {
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

class Global {
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
class Instance {
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
class Call {
  constructor(
    readonly callable: Global,
    readonly args: Tuple,
  ) {}
}

type StorageIndex = DcpMetadataIndex;

/** Thrown inside the lane to give the stream to the general machine. */
const DECLINE: unique symbol = Symbol("decline");
/** A memo entry the lane will not hand out again (a container or an object: mutable, or decoded once). */
const UNREADABLE: unique symbol = Symbol("unreadable");

const EMPTY: Tuple = Object.freeze([]);

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

/**
 * Decodes `.metadata` bytes, or `undefined` when the lane declines them. Never throws for bad input: a stream
 * the lane cannot read is one it declines, and the general machine then says what is wrong with it.
 */
export function readMetadataLane(bytes: Uint8Array): LaneResult | undefined {
  const reads = findMemoReads(bytes, 0, true);
  if (reads === undefined) return undefined;
  try {
    return new Lane(bytes, reads).run();
  } catch (error) {
    if (error === DECLINE || error instanceof ReaderError) return undefined;
    throw error;
  }
}

class Lane {
  private readonly view: DataView;
  private pos = 0;
  private opStart = 0;
  private frameEnd = -1;
  private readonly stack: Value[] = [];
  private fence = 0;
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, Value | typeof UNREADABLE>();
  private memoCount = 0;
  private protocol = 0;
  private readonly opcodes = new Uint8Array(256);
  private readonly globals: GlobalReference[] = [];
  private readonly interned = new Map<string, Global>();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly reads: MemoReads,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * The loop reads the opcodes that make up nearly all of a `.metadata` (memo, strings, small ints and
   * tuples: three in four of 15.8 million at 50,000 tensors) with a local read position; the rest go through
   * `step`. Every read checks the end of the data; a FRAME's end is checked once per opcode.
   */
  run(): LaneResult {
    const { bytes, stack, memo, opcodes, reads } = this;
    const length = bytes.length;
    const maxOps = DEFAULT_PICKLE_LIMITS.maxOps;
    const maxMemo = DEFAULT_PICKLE_LIMITS.maxMemo;
    let count = 0;
    let pos = 0;
    for (;;) {
      if (pos >= length || ++count > maxOps) throw DECLINE;
      const start = pos;
      const frameEnd = this.frameEnd;
      const op = bytes[pos++] as number;
      opcodes[op] = 1;
      switch (op) {
        case MEMOIZE: {
          const index = this.memoCount++;
          if (index >= maxMemo || stack.length <= this.fence) throw DECLINE;
          if (reads(index)) this.store(index);
          break;
        }
        case BINGET: {
          if (pos >= length) throw DECLINE;
          const value = memo.get(bytes[pos++] as number);
          if (value === undefined || value === UNREADABLE) throw DECLINE;
          stack.push(value);
          break;
        }
        case LONG_BINGET: {
          if (pos + 4 > length) throw DECLINE;
          const index =
            ((bytes[pos] as number) |
              ((bytes[pos + 1] as number) << 8) |
              ((bytes[pos + 2] as number) << 16) |
              ((bytes[pos + 3] as number) << 24)) >>>
            0;
          pos += 4;
          const value = memo.get(index);
          if (value === undefined || value === UNREADABLE) throw DECLINE;
          stack.push(value);
          break;
        }
        case SHORT_BINUNICODE: {
          if (pos >= length) throw DECLINE;
          const at = pos + 1;
          pos = at + (bytes[pos] as number);
          if (pos > length) throw DECLINE;
          stack.push(decodeUtf8Range(bytes, at, pos));
          break;
        }
        case BININT1:
          if (pos >= length) throw DECLINE;
          stack.push(bytes[pos++] as number);
          break;
        case EMPTY_TUPLE:
          stack.push(EMPTY);
          break;
        case TUPLE1:
          if (stack.length <= this.fence) throw DECLINE;
          stack.push([stack.pop() as Value]);
          break;
        case TUPLE2: {
          if (stack.length < this.fence + 2) throw DECLINE;
          const b = stack.pop() as Value;
          stack.push([stack.pop() as Value, b]);
          break;
        }
        case NEWFALSE:
          stack.push(false);
          break;
        default:
          this.pos = pos;
          this.opStart = start;
          if (op === STOP) return this.finish(this.pop());
          this.step(op);
          pos = this.pos;
      }
      // An operand that crosses the current frame's end: the CPython readers part ways there.
      if (start < frameEnd && pos > frameEnd) throw DECLINE;
    }
  }

  private step(op: number): void {
    const stack = this.stack;
    switch (op) {
      case BINPUT:
        this.put(this.u8());
        return;
      case LONG_BINPUT:
        this.put(this.u32());
        return;
      case BINUNICODE:
        this.text(this.u32());
        return;
      case BINUNICODE8:
        this.text(this.u64());
        return;
      case BININT2:
        stack.push(this.u16());
        return;
      case BININT:
        stack.push(this.i32());
        return;
      case LONG1:
        this.long1();
        return;
      case NONE:
        stack.push(null);
        return;
      case NEWTRUE:
        stack.push(true);
        return;
      case TUPLE3: {
        const c = this.pop();
        const b = this.pop();
        stack.push([this.pop(), b, c]);
        return;
      }
      case TUPLE:
        stack.push(this.popMark());
        return;
      case EMPTY_LIST:
        stack.push(new List());
        return;
      case EMPTY_DICT:
        stack.push(new Dict());
        return;
      case MARK:
        this.mark();
        return;
      case APPEND:
        this.append([this.pop()]);
        return;
      case APPENDS:
        this.appendsFromMark();
        return;
      case SETITEM: {
        const value = this.pop();
        this.setItems([this.pop(), value]);
        return;
      }
      case SETITEMS:
        this.setItemsFromMark();
        return;
      case STACK_GLOBAL:
        this.stackGlobal();
        return;
      case NEWOBJ:
        this.newObj();
        return;
      case REDUCE:
        this.reduce();
        return;
      case BUILD:
        this.build();
        return;
      case PROTO:
        // As the machine: the latest PROTO counts, and one past 5 is refused.
        this.protocol = this.u8();
        if (this.protocol > 5) throw DECLINE;
        return;
      case FRAME:
        this.frame();
        return;
      default:
        throw DECLINE;
    }
  }

  // ---- operands (a read past the data declines; the machine reports the truncation)

  private advance(n: number): number {
    const at = this.pos;
    if (at + n > this.bytes.length) throw DECLINE;
    this.pos = at + n;
    return at;
  }

  private u8(): number {
    return this.bytes[this.advance(1)] as number;
  }

  private u16(): number {
    return this.view.getUint16(this.advance(2), true);
  }

  private u32(): number {
    return this.view.getUint32(this.advance(4), true);
  }

  private i32(): number {
    return this.view.getInt32(this.advance(4), true);
  }

  private u64(): number {
    const value = this.view.getBigUint64(this.advance(8), true);
    if (value > BigInt(this.bytes.length)) throw DECLINE;
    return Number(value);
  }

  private text(n: number): void {
    const at = this.advance(n);
    this.stack.push(decodeUtf8Range(this.bytes, at, at + n));
  }

  private long1(): void {
    const n = this.u8();
    const at = this.advance(n);
    const value = decodeLong(this.bytes.subarray(at, at + n));
    if (typeof value !== "number") throw DECLINE;
    this.stack.push(value);
  }

  /** FRAME in `pickle.loads`'s reading: its bytes must exist; one inside a frame that has not ended declines. */
  private frame(): void {
    const length = this.u64();
    if (this.frameEnd > this.pos || length > this.bytes.length - this.pos) throw DECLINE;
    this.frameEnd = this.pos + length;
  }

  // ---- stack and marks

  private pop(): Value {
    if (this.stack.length <= this.fence) throw DECLINE;
    return this.stack.pop() as Value;
  }

  private top(): Value {
    if (this.stack.length <= this.fence) throw DECLINE;
    return this.stack[this.stack.length - 1] as Value;
  }

  private mark(): void {
    if (this.marks.length >= DEFAULT_PICKLE_LIMITS.maxMarkDepth) throw DECLINE;
    this.marks.push(this.fence);
    this.fence = this.stack.length;
  }

  private popMark(): Value[] {
    const previous = this.marks.pop();
    if (previous === undefined) throw DECLINE;
    const items = this.stack.slice(this.fence);
    this.stack.length = this.fence;
    this.fence = previous;
    return items;
  }

  // ---- memo (only the entries some GET reads are kept, as the machine's `Memo` does)

  private put(index: number): void {
    // Streams that mix PUT with MEMOIZE never get here (`findMemoReads` answers nothing for them), so the
    // only thing PUT changes is which index is stored.
    if (this.memo.has(index) || ++this.memoCount > DEFAULT_PICKLE_LIMITS.maxMemo) throw DECLINE;
    this.top();
    if (this.reads(index)) this.store(index);
  }

  /** Stores the top item, which some GET reads. */
  private store(index: number): void {
    const value = this.top();
    const readable = !(value instanceof List || value instanceof Dict || value instanceof Instance);
    this.memo.set(index, readable ? value : UNREADABLE);
  }

  // ---- containers

  private append(items: Value[]): void {
    const target = this.top();
    if (!(target instanceof List)) throw DECLINE;
    for (const item of items) target.items.push(item);
  }

  /** APPENDS and SETITEMS read their items where they lie on the stack, rather than from a copy. */
  private appendsFromMark(): void {
    const { stack } = this;
    const from = this.closeMark();
    const target = stack[from - 1];
    if (!(target instanceof List)) throw DECLINE;
    for (let i = from; i < stack.length; i++) target.items.push(stack[i] as Value);
    stack.length = from;
  }

  private setItemsFromMark(): void {
    const { stack } = this;
    const from = this.closeMark();
    const target = stack[from - 1];
    if (!(target instanceof Dict) || (stack.length - from) % 2 !== 0) throw DECLINE;
    target.setPairs(stack, from, stack.length);
    stack.length = from;
  }

  /** Ends the current MARK frame, leaving its items on the stack: where they start. Declines when no item lies below them. */
  private closeMark(): number {
    const previous = this.marks.pop();
    if (previous === undefined) throw DECLINE;
    const from = this.fence;
    this.fence = previous;
    if (from - 1 < previous) throw DECLINE;
    return from;
  }

  private setItems(items: Value[]): void {
    const target = this.top();
    if (!(target instanceof Dict) || items.length % 2 !== 0) throw DECLINE;
    target.setPairs(items, 0, items.length);
  }

  // ---- globals, objects and calls

  private stackGlobal(): void {
    const name = this.pop();
    const module = this.pop();
    if (typeof module !== "string" || typeof name !== "string" || module === "" || name === "") throw DECLINE;
    // Below protocol 3 the machine maps Python 2 names; from 3 on, a Python 2 module is unresolvable.
    if (this.protocol < 3 || isPython2Only(module)) throw DECLINE;
    this.globals.push({ module, name, offset: this.opStart, opcode: "STACK_GLOBAL" });
    const key = `${module}\n${name}`;
    let global = this.interned.get(key);
    if (global === undefined) {
      global = new Global(module, name);
      this.interned.set(key, global);
    }
    this.stack.push(global);
  }

  private newObj(): void {
    const args = this.pop();
    const cls = this.pop();
    if (args !== EMPTY && !(Array.isArray(args) && args.length === 0)) throw DECLINE;
    if (!(cls instanceof Global) || cls.role !== "class") throw DECLINE;
    this.stack.push(new Instance(cls));
  }

  private reduce(): void {
    const args = this.pop();
    const callable = this.pop();
    if (!Array.isArray(args) || !(callable instanceof Global)) throw DECLINE;
    const tuple = args as Tuple;
    switch (callable.role) {
      case "size":
        // torch's hooks model torch.Size(t) as the tuple t itself.
        if (!Array.isArray(tuple[0])) throw DECLINE;
        this.stack.push(tuple[0] as Tuple);
        return;
      case "layout":
        if (typeof tuple[0] !== "string") throw DECLINE;
        this.stack.push(tuple[0]);
        return;
      case "call":
        this.stack.push(new Call(callable, tuple));
        return;
      default:
        throw DECLINE;
    }
  }

  private build(): void {
    const state = this.pop();
    const target = this.top();
    if (!(target instanceof Instance) || target.built) throw DECLINE;
    target.built = true;
    const decoded = decodeAtBuild(target.cls.name, state);
    if (decoded === undefined) target.state = state;
    else target.decoded = decoded;
  }

  // ---- the root

  private finish(root: Value): LaneResult {
    if (!(root instanceof Instance) || root.cls.shortName !== "Metadata") throw DECLINE;
    const items = stateField(root.state, "state_dict_metadata");
    if (!(items instanceof Dict)) throw DECLINE;
    const version = stateField(root.state, "version");
    return {
      fields: {
        version: typeof version === "string" ? version : null,
        items: itemsOf(items),
        storage: storageOf(stateField(root.state, "storage_data")),
        plannerData: plannerDataOf(stateField(root.state, "planner_data")),
        storageMeta: storageMetaOf(stateField(root.state, "storage_meta")),
        classModule: root.cls.module,
      },
      protocol: this.protocol,
      globals: this.globals,
      opcodes: this.opcodes,
      end: this.pos,
    };
  }
}

// ---- decoding, as `metadata.ts` decodes the graph (each function names the one it mirrors)

/**
 * The hot classes' meaning, taken at their BUILD so that their state can go. Safe because the lane never
 * hands out a container or an object twice (the memo refuses them), so nothing changes a state after its
 * BUILD. A state the graph decoder would reject declines here, wherever the object ends up.
 */
function decodeAtBuild(className: string, state: Value): Instance["decoded"] {
  switch (className) {
    case "ChunkStorageMetadata": {
      const offsets = intTuple(stateField(state, "offsets"));
      const sizes = intTuple(stateField(state, "sizes"));
      if (!offsets || !sizes) throw DECLINE;
      return { offsets, sizes };
    }
    case "TensorProperties":
      return propertiesOf(state);
    case "TensorStorageMetadata":
      return tensorOf(state);
    case "MetadataIndex":
      return storageIndexOf(state);
    case "_StorageInfo":
      return storageInfoOf(state);
    default:
      return undefined;
  }
}

/** `decodeItem` for a TensorStorageMetadata's state. */
function tensorOf(state: Value): DcpItemMetadata {
  const size = intTuple(stateField(state, "size"));
  const chunkItems = sequenceItems(stateField(state, "chunks"));
  if (!size || !chunkItems) throw DECLINE;
  const chunks = chunkItems.map((chunk) => decodedAs(chunk, "ChunkStorageMetadata") as DcpChunkMetadata);
  const properties = decodedAs(stateField(state, "properties"), "TensorProperties") as DcpTensorProperties;
  return { kind: "tensor", properties, size, chunks };
}

/** What BUILD decoded for an object of class `className`; anything else declines. */
function decodedAs(value: Value | undefined, className: string): NonNullable<Instance["decoded"]> {
  if (!(value instanceof Instance) || value.cls.name !== className || value.decoded === undefined)
    throw DECLINE;
  return value.decoded;
}

/** `decodeProperties`: a 5-tuple from `TensorProperties.__getstate__`, or a dict. */
function propertiesOf(state: Value): DcpTensorProperties {
  const parts = Array.isArray(state) ? (state as Tuple) : undefined;
  const pick = (i: number, key: string) => parts?.[i] ?? stateField(state, key);
  const dtypeValue = pick(0, "dtype");
  const dtype =
    dtypeValue instanceof Global ? dtypeFromGlobal(dtypeValue.module, dtypeValue.name) : undefined;
  if (dtype === undefined) throw DECLINE;
  const layoutValue = pick(1, "layout");
  const layout =
    typeof layoutValue === "string"
      ? layoutValue
      : layoutValue instanceof Global
        ? layoutValue.name
        : "strided";
  const member = enumMember(pick(3, "memory_format"));
  return {
    dtype,
    layout: layoutName(layout),
    requiresGrad: boolOf(pick(2, "requires_grad")) ?? false,
    memoryFormat: memoryFormatOf(intOf(member.value), member.name),
    pinMemory: boolOf(pick(4, "pin_memory")) ?? false,
  };
}

/** `enumMember`: the graph's objects are the lane's instances (no arguments) and calls. */
function enumMember(value: Value | undefined): { readonly name?: string; readonly value?: Value } {
  if (!(value instanceof Call)) return {};
  if (value.callable.qualified === "builtins.getattr") {
    const name = value.args[1];
    return typeof name === "string" ? { name } : {};
  }
  return value.args.length === 1 ? { value: value.args[0] as Value } : {};
}

/** `decodeStorage`'s key. */
function storageIndexOf(state: Value): StorageIndex {
  const fqn = stateField(state, "fqn");
  if (typeof fqn !== "string") throw DECLINE;
  const offset = stateField(state, "offset");
  return {
    fqn,
    offset: offset === null || offset === undefined ? null : (intTuple(offset) ?? null),
    index: intOf(stateField(state, "index")) ?? null,
  };
}

/** `decodeStorage`'s value. */
function storageInfoOf(state: Value): DcpStorageInfo {
  const relativePath = stateField(state, "relative_path");
  const offset = intOf(stateField(state, "offset"));
  const length = intOf(stateField(state, "length"));
  if (typeof relativePath !== "string" || offset === undefined || length === undefined) throw DECLINE;
  return {
    relativePath,
    offset,
    length,
    transformDescriptors: stringList(stateField(state, "transform_descriptors")) ?? null,
  };
}

/** `decodeItems`. */
function itemsOf(dict: Dict): Map<string, DcpItemMetadata> {
  const out = new Map<string, DcpItemMetadata>();
  const { entries } = dict;
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    const value = entries[i + 1];
    if (typeof key !== "string" || !(value instanceof Instance)) throw DECLINE;
    const name = value.cls.shortName;
    if (name === "BytesStorageMetadata") out.set(key, { kind: "bytes" });
    else if (name === "TensorStorageMetadata")
      out.set(key, decodedAs(value, "TensorStorageMetadata") as DcpItemMetadata);
    else throw DECLINE;
  }
  return out;
}

/** `decodeStorage`. */
function storageOf(value: Value | undefined): DcpMetadata["storage"] {
  if (value === null || value === undefined) return [];
  if (!(value instanceof Dict)) throw DECLINE;
  const { entries } = value;
  const out: Array<{ index: DcpMetadataIndex; info: DcpStorageInfo }> = new Array(entries.length / 2);
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    if (!(key instanceof Instance) || key.cls.shortName !== "MetadataIndex") throw DECLINE;
    out[i / 2] = {
      index: decodedAs(key, "MetadataIndex") as DcpMetadataIndex,
      info: decodedAs(entries[i + 1], "_StorageInfo") as DcpStorageInfo,
    };
  }
  return out;
}

/** `decodePlannerData`. */
function plannerDataOf(value: Value | undefined): DcpMetadata["plannerData"] {
  if (!(value instanceof Dict)) return null;
  const out = new Map<string, Array<string | number>>();
  const { entries } = value;
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    const path = sequenceItems(entries[i + 1]);
    if (typeof key !== "string" || !path) continue;
    const keys = plannerPath(path);
    if (keys) out.set(key, keys);
  }
  return out;
}

/** `decodeStorageMeta`: only a StorageMeta object counts; a path pickles as `PosixPath(*parts)`. */
function storageMetaOf(value: Value | undefined): DcpStorageMeta | null {
  if (!(value instanceof Instance) || value.cls.shortName !== "StorageMeta") return null;
  const id = stateField(value.state, "checkpoint_id");
  const idText =
    typeof id === "string"
      ? id
      : id instanceof Call
        ? pathText(id.args)
        : id instanceof Instance
          ? pathText([])
          : undefined;
  const saveId = stateField(value.state, "save_id");
  const loadId = stateField(value.state, "load_id");
  return {
    checkpointId: idText ?? null,
    saveId: typeof saveId === "string" ? saveId : null,
    loadId: typeof loadId === "string" ? loadId : null,
    modules: stringList(stateField(value.state, "modules")) ?? [],
  };
}

// ---- field readers, as `pyData.ts` and `rebuild.ts` read the graph

/** `field`: an attribute from a dict state, or from the slot state of `(state, slotstate)`. */
function stateField(state: Value | undefined, name: string): Value | undefined {
  if (state instanceof Dict) return state.get(name);
  if (Array.isArray(state)) {
    const slots = (state as Tuple)[1];
    if (slots instanceof Dict) return slots.get(name);
  }
  return undefined;
}

/** `itemsOf`: a list's or tuple's items. */
function sequenceItems(value: Value | undefined): readonly Value[] | undefined {
  if (Array.isArray(value)) return value as Tuple;
  return value instanceof List ? value.items : undefined;
}

/** `asIntTuple`: the items themselves when all are ints, else each converted by `asInt`. */
function intTuple(value: Value | undefined): number[] | undefined {
  const items = sequenceItems(value);
  if (items === undefined) return undefined;
  if (allIntegers(items)) return items as number[];
  const out: number[] = [];
  for (const item of items) {
    const n = intOf(item);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function allIntegers(items: readonly Value[]): boolean {
  for (let i = 0; i < items.length; i++) if (!Number.isInteger(items[i])) return false;
  return true;
}

function intOf(value: Value | undefined): number | undefined {
  return typeof value === "object" ? undefined : asInt(value);
}

function boolOf(value: Value | undefined): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

/** `asStringList`. */
function stringList(value: Value | undefined): string[] | undefined {
  const items = sequenceItems(value);
  if (!items?.every((item) => typeof item === "string")) return undefined;
  return items as string[];
}

// ---- opcodes the lane reads (everything else declines)

const MARK = 0x28;
const STOP = 0x2e;
const BININT = 0x4a;
const BININT1 = 0x4b;
const BININT2 = 0x4d;
const NONE = 0x4e;
const REDUCE = 0x52;
const BINUNICODE = 0x58;
const EMPTY_LIST = 0x5d;
const APPEND = 0x61;
const BUILD = 0x62;
const APPENDS = 0x65;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const SETITEM = 0x73;
const TUPLE = 0x74;
const SETITEMS = 0x75;
const EMPTY_DICT = 0x7d;
const EMPTY_TUPLE = 0x29;
const PROTO = 0x80;
const NEWOBJ = 0x81;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const STACK_GLOBAL = 0x93;
const MEMOIZE = 0x94;
const FRAME = 0x95;
