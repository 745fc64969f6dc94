import { ReaderError } from "../../errors.js";
import { isPython2Only } from "../../pickle/compatNames.js";
import { decodeLong } from "../../pickle/ints.js";
import { DEFAULT_PICKLE_LIMITS, type GlobalReference } from "../../pickle/machine.js";
import { findMemoReads, type MemoReads } from "../../pickle/memoReads.js";
import { decodeUtf8Range } from "../../pickle/text.js";
import { DimsCache } from "../../torch/dims.js";
import {
  decodeAtBuild,
  itemsOf,
  plannerDataOf,
  stateField,
  storageMetaOf,
  storageOf,
} from "./lane/decode.js";
import {
  APPEND,
  APPENDS,
  BINGET,
  BININT,
  BININT1,
  BININT2,
  BINPUT,
  BINUNICODE,
  BINUNICODE8,
  BUILD,
  EMPTY_DICT,
  EMPTY_LIST,
  EMPTY_TUPLE,
  FRAME,
  LONG_BINGET,
  LONG_BINPUT,
  LONG1,
  MARK,
  MEMOIZE,
  NEWFALSE,
  NEWOBJ,
  NEWTRUE,
  NONE,
  PROTO,
  REDUCE,
  SETITEM,
  SETITEMS,
  SHORT_BINUNICODE,
  STACK_GLOBAL,
  STOP,
  TUPLE,
  TUPLE1,
  TUPLE2,
  TUPLE3,
} from "./lane/opcodes.js";
import {
  Call,
  DECLINE,
  Dict,
  EMPTY,
  Global,
  Instance,
  List,
  type Tuple,
  UNREADABLE,
  type Value,
} from "./lane/values.js";
import type { DcpMetadata } from "./metadataTypes.js";

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
  private readonly dims = new DimsCache();

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
    const decoded = decodeAtBuild(target.cls.name, state, this.dims);
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
