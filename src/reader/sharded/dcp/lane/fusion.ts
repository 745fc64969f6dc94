import type { MemoReads } from "../../../pickle/memoReads.js";
import { decodeUtf8Range } from "../../../pickle/text.js";
import { decodeAtBuild } from "./decode.js";
import {
  BINGET,
  BININT,
  BININT1,
  BININT2,
  BUILD,
  EMPTY_DICT,
  EMPTY_TUPLE,
  LONG_BINGET,
  MARK,
  MEMOIZE,
  NEWFALSE,
  NEWOBJ,
  NEWTRUE,
  NONE,
  REDUCE,
  SETITEMS,
  SHORT_BINUNICODE,
  TUPLE1,
  TUPLE2,
  TUPLE3,
} from "./opcodes.js";
import { Dict, EMPTY, Global, Instance, SMALL_DICT, type Tuple, UNREADABLE, type Value } from "./values.js";

/**
 * Fused patterns: the lane's superinstructions. Nearly all of a large `.metadata` is three shapes repeated for
 * every chunk and storage entry: `torch.Size((a, b))`, and a dataclass built from a small dict of str keys
 * (`ChunkStorageMetadata`, `MetadataIndex`, `_StorageInfo`). At 50,000 tensors x 4 ranks those are 13 of the
 * 15.8 million opcodes. Once the lane has read the GET of such a class (or of torch.Size), this reads the
 * opcodes that follow when they are exactly that shape, in one pass with no stack traffic, and hands the lane
 * the value the opcodes would have left, the memo entries they would have stored, and how many opcodes and
 * memo indices they used. When they are anything else (a different opcode, a key that is no str, a memo entry
 * some GET reads back as a container, a frame boundary inside, a limit reached), it answers `false` having
 * changed nothing but `opcodes`' flags of opcodes the lane will itself read next, and the lane reads them one
 * by one as before. So a fused read and an unfused one of the same bytes end in the same state; the lane's
 * equivalence test holds both to the graph decoder.
 */
export class Fusion {
  /** Set by a successful match: what the opcodes leave on the stack, and where they end. */
  value: Value = null;
  end = 0;
  /** Opcodes read after the GET that started the pattern. */
  ops = 0;
  /** MEMOIZE opcodes read; their indices follow the lane's count. */
  memoized = 0;
  /** Memo entries to store, index and value alternating, as the lane's MEMOIZE would have stored them. */
  readonly stores: Array<number | Value | typeof UNREADABLE> = [];

  private pos = 0;
  private memoBase = 0;
  private readonly scratch = new Dict();

  constructor(
    private readonly bytes: Uint8Array,
    private readonly memo: ReadonlyMap<number, Value | typeof UNREADABLE>,
    private readonly reads: MemoReads,
    private readonly opcodes: Uint8Array,
  ) {}

  /**
   * The pattern that starts at `pos`, just after a GET of `global`, with the lane's memo count `memoCount`.
   * The lane checks limits and frame boundaries against `end`, `ops` and `memoized` before it commits.
   */
  match(global: Global, pos: number, memoCount: number): boolean {
    this.pos = pos;
    this.memoBase = memoCount;
    this.ops = 0;
    this.memoized = 0;
    this.stores.length = 0;
    const value =
      global.role === "size" ? this.sizeTail() : global.role === "class" ? this.object(global) : undefined;
    if (value === undefined) return false;
    this.value = value;
    this.end = this.pos;
    return true;
  }

  // ---- the shapes

  /**
   * After GET torch.Size: `<ints> TUPLEn MEMOIZE TUPLE1 MEMOIZE REDUCE MEMOIZE` (torch.Size(t) is t to the
   * lane, as to torch's hooks), with `EMPTY_TUPLE` and no first MEMOIZE for a 0-d size, which the pickler
   * does not memoize.
   */
  private sizeTail(): Tuple | undefined {
    let items: Tuple;
    if (this.peek() === EMPTY_TUPLE) {
      this.take();
      items = EMPTY;
    } else {
      const a = this.int();
      if (a === undefined) return undefined;
      const b = this.int();
      if (b === undefined) {
        if (!this.expect(TUPLE1)) return undefined;
        items = [a];
      } else {
        const c = this.int();
        if (c === undefined) {
          if (!this.expect(TUPLE2)) return undefined;
          items = [a, b];
        } else {
          if (!this.expect(TUPLE3)) return undefined;
          items = [a, b, c];
        }
      }
      if (!this.memoize(items)) return undefined;
    }
    if (!this.expect(TUPLE1)) return undefined;
    // The argument tuple is made only when some GET reads it.
    if (!this.memoizeLazy(() => [items])) return undefined;
    if (!this.expect(REDUCE) || !this.memoize(items)) return undefined;
    return items;
  }

  /**
   * After GET of one of DCP's classes: `EMPTY_TUPLE NEWOBJ MEMOIZE EMPTY_DICT MEMOIZE MARK (key value)*
   * SETITEMS BUILD`, the dict's keys distinct strs and at most `SMALL_DICT` of them, decoded at BUILD as the
   * lane decodes it.
   */
  private object(cls: Global): Instance | undefined {
    if (!this.expect(EMPTY_TUPLE) || !this.expect(NEWOBJ) || !this.memoize(UNREADABLE)) return undefined;
    if (!this.expect(EMPTY_DICT) || !this.memoize(UNREADABLE) || !this.expect(MARK)) return undefined;
    // The hot classes decode from their state at BUILD and drop it: their pairs go to one scratch dict.
    const entries = this.scratch.entries;
    entries.length = 0;
    while (this.peek() !== SETITEMS) {
      if (entries.length === 2 * SMALL_DICT) return undefined;
      const key = this.key();
      if (key === undefined || hasKey(entries, key)) return undefined;
      const value = this.value_();
      if (value === undefined) return undefined;
      entries.push(key, value);
    }
    this.take();
    if (!this.expect(BUILD)) return undefined;
    const instance = new Instance(cls);
    instance.built = true;
    // The one step that may decline the whole stream, exactly where the lane's BUILD would. What it decodes
    // holds values of the state, never the state itself.
    const decoded = decodeAtBuild(cls.name, this.scratch);
    if (decoded !== undefined) instance.decoded = decoded;
    else {
      const state = new Dict();
      state.entries = entries.slice();
      instance.state = state;
    }
    return instance;
  }

  /** A dict key: a str from the memo, or a new one (memoized or not). */
  private key(): string | undefined {
    const op = this.peek();
    if (op === SHORT_BINUNICODE) return this.text();
    const value = this.get();
    return typeof value === "string" ? value : undefined;
  }

  /** A dict value: an int, None, a bool, a str, a size, or a memo entry the lane would hand out. */
  private value_(): Value | undefined {
    const op = this.peek();
    switch (op) {
      case BININT1:
      case BININT2:
      case BININT:
        return this.int();
      case NONE:
        this.take();
        return null;
      case NEWTRUE:
        this.take();
        return true;
      case NEWFALSE:
        this.take();
        return false;
      case SHORT_BINUNICODE:
        return this.text();
      case BINGET:
      case LONG_BINGET: {
        const value = this.get();
        if (value instanceof Global) return value.role === "size" ? this.sizeTail() : undefined;
        return value;
      }
      default:
        return undefined;
    }
  }

  // ---- single opcodes (each answers undefined or false, having read nothing the lane would not)

  private peek(): number | undefined {
    return this.bytes[this.pos];
  }

  private take(): number {
    const op = this.bytes[this.pos++] as number;
    this.opcodes[op] = 1;
    this.ops++;
    return op;
  }

  private expect(op: number): boolean {
    if (this.bytes[this.pos] !== op) return false;
    this.take();
    return true;
  }

  private int(): number | undefined {
    const { bytes } = this;
    const at = this.pos + 1;
    switch (bytes[this.pos]) {
      case BININT1:
        if (at + 1 > bytes.length) return undefined;
        this.take();
        this.pos = at + 1;
        return bytes[at] as number;
      case BININT2:
        if (at + 2 > bytes.length) return undefined;
        this.take();
        this.pos = at + 2;
        return (bytes[at] as number) | ((bytes[at + 1] as number) << 8);
      case BININT:
        if (at + 4 > bytes.length) return undefined;
        this.take();
        this.pos = at + 4;
        // Signed, as BININT is.
        return (
          (bytes[at] as number) |
          ((bytes[at + 1] as number) << 8) |
          ((bytes[at + 2] as number) << 16) |
          ((bytes[at + 3] as number) << 24)
        );
      default:
        return undefined;
    }
  }

  /** SHORT_BINUNICODE, and the MEMOIZE after it when there is one. */
  private text(): string | undefined {
    const { bytes } = this;
    const at = this.pos + 2;
    if (at > bytes.length) return undefined;
    const end = at + (bytes[this.pos + 1] as number);
    if (end > bytes.length) return undefined;
    this.take();
    this.pos = end;
    const text = decodeUtf8Range(bytes, at, end);
    if (this.peek() === MEMOIZE && !this.memoize(text)) return undefined;
    return text;
  }

  /** BINGET or LONG_BINGET of an entry the lane would hand out. */
  private get(): Value | undefined {
    const { bytes } = this;
    const op = bytes[this.pos];
    let index: number;
    if (op === BINGET) {
      if (this.pos + 2 > bytes.length) return undefined;
      index = bytes[this.pos + 1] as number;
      this.take();
      this.pos += 1;
    } else if (op === LONG_BINGET) {
      if (this.pos + 5 > bytes.length) return undefined;
      const at = this.pos + 1;
      index =
        ((bytes[at] as number) |
          ((bytes[at + 1] as number) << 8) |
          ((bytes[at + 2] as number) << 16) |
          ((bytes[at + 3] as number) << 24)) >>>
        0;
      this.take();
      this.pos += 4;
    } else return undefined;
    const value = this.memo.get(index);
    return value === undefined || value === UNREADABLE ? undefined : value;
  }

  /** MEMOIZE of `value`: kept when some GET reads its index, as the lane's `store` keeps it. */
  private memoize(value: Value | typeof UNREADABLE): boolean {
    if (!this.expect(MEMOIZE)) return false;
    const index = this.memoBase + this.memoized++;
    if (this.reads(index)) this.stores.push(index, value);
    return true;
  }

  private memoizeLazy(value: () => Value): boolean {
    if (!this.expect(MEMOIZE)) return false;
    const index = this.memoBase + this.memoized++;
    if (this.reads(index)) this.stores.push(index, value());
    return true;
  }
}

/** Whether `key` is among the keys of `entries` (keys and values alternating). */
function hasKey(entries: readonly Value[], key: string): boolean {
  for (let i = 0; i < entries.length; i += 2) if (entries[i] === key) return true;
  return false;
}
