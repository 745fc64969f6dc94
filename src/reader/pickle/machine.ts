import { ReaderError } from "../errors.js";
import { callBuiltin } from "./builtins.js";
import { findMemoReads } from "./memoReads.js";
import { decodeLatin1, decodeRawUnicodeEscape, decodeUtf8, decodeUtf8Range, escapeDecode } from "./text.js";
import {
  appendAll,
  dictSet,
  isBoxed,
  isUnhashable,
  type PyDict,
  type PyGlobal,
  type PyObject,
  type PyValue,
  pyDict,
  pyFloat,
  pyGlobal,
  pyList,
  pyTuple,
  uniqueItems,
} from "./value.js";

/**
 * A pickle virtual machine that executes nothing. It follows CPython's `_pickle.c` / `pickle.py` opcode by
 * opcode for protocols 0 to 5, but where Python would import a global or call it, this machine records a
 * description (`PyGlobal`, `PyObject`) instead. Known pure constructors (OrderedDict, set, bytes via
 * `_codecs.encode`, torch's tensor rebuild functions) are modelled as data transformations by `hooks.call`.
 */

export type CallVia = PyObject["via"];

export interface PickleHooks {
  /** Resolves a persistent id (torch's storages). Default: an inert `PyPersistent`. */
  persistentLoad?(pid: PyValue, offset: number): PyValue;
  /**
   * Models calling `callable(*args, **kwargs)` as data. Return `undefined` to fall back to the builtin models
   * and then to an inert `PyObject`.
   */
  call?(callable: PyGlobal, args: PyValue[], via: CallVia, offset: number): PyValue | undefined;
}

export interface PickleLimits {
  /** Memo entries. CPython has no limit; a hostile pickle can ask for billions. */
  maxMemo: number;
  /** Opcodes executed: a pickle cannot loop, so this bounds the work of one parse. */
  maxOps: number;
  /** Nested MARKs. */
  maxMarkDepth: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxMemo: 50_000_000,
  maxOps: 500_000_000,
  maxMarkDepth: 100_000,
};

export interface GlobalReference {
  readonly module: string;
  readonly name: string;
  /** Byte offset of the opcode that named it. */
  readonly offset: number;
  readonly opcode: "GLOBAL" | "STACK_GLOBAL" | "INST" | "EXT";
  /** STACK_GLOBAL whose operands were not literal strings: the name is computed when the pickle runs. */
  readonly dynamic?: boolean;
}

export interface PickleResult {
  readonly value: PyValue;
  /** Offset just past the STOP opcode; trailing bytes, if any, start here. */
  readonly end: number;
  /** The highest protocol announced by PROTO (0 when none: protocols 0 and 1 have no PROTO). */
  readonly protocol: number;
  readonly globals: GlobalReference[];
  /** Which opcodes the stream used (index = opcode byte): torch's weights_only unpickler accepts a subset. */
  readonly opcodes: Uint8Array;
}

/** Where in the byte stream things came from: what `src/repair` needs to splice a pickle minimally. */
export interface PickleTrace {
  /** Items added to a dict by SETITEM(S) or DICT: byte spans of each key and value (value ends at `end`). */
  onDictItems?(
    dict: PyDict,
    items: ReadonlyArray<{ keyStart: number; valueStart: number; end: number }>,
  ): void;
  /** A persistent id: the span of the expression that built it (BINPERSID itself is at `end`). */
  onPersistentId?(pid: PyValue, start: number, end: number): void;
  onFrame?(offset: number): void;
  onMemo?(kind: "put" | "get", index: number, offset: number): void;
  /** Every global as it is named, even when the stream turns out malformed later. */
  onGlobal?(reference: GlobalReference): void;
}

export interface PickleOptions {
  start?: number;
  hooks?: PickleHooks;
  limits?: Partial<PickleLimits>;
  trace?: PickleTrace;
  /**
   * Scanning for security rather than loading: record what Python would do instead of refusing, so that a
   * computed STACK_GLOBAL or an extension code shows up as a finding rather than a parse error.
   */
  scan?: boolean;
}

/** Python 2 module and class names that protocol 0-2 pickles may use (CPython's `_compat_pickle`, the part that matters here). */
const PY2_MODULES: Record<string, string> = {
  __builtin__: "builtins",
  copy_reg: "copyreg",
  exceptions: "builtins",
};
const PY2_NAMES: Record<string, [string, string]> = {
  "__builtin__.unicode": ["builtins", "str"],
  "__builtin__.long": ["builtins", "int"],
  "__builtin__.xrange": ["builtins", "range"],
  "__builtin__.basestring": ["builtins", "str"],
};

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Stands in for a memoized value that no GET reads (see `findMemoReads`), so that it can be collected. */
const UNREAD = Symbol("unread memo entry");

function intValue(big: bigint): number | bigint {
  return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big;
}

/** Little-endian two's complement, as LONG1/LONG4 store ints. */
function decodeLong(bytes: Uint8Array): number | bigint {
  const n = bytes.length;
  if (n === 0) return 0;
  if (n <= 6) {
    let value = 0;
    for (let i = n - 1; i >= 0; i--) value = value * 256 + (bytes[i] as number);
    if ((bytes[n - 1] as number) >= 0x80) value -= 2 ** (8 * n);
    return value;
  }
  let big = 0n;
  for (let i = n - 1; i >= 0; i--) big = (big << 8n) | BigInt(bytes[i] as number);
  if ((bytes[n - 1] as number) >= 0x80) big -= 1n << BigInt(8 * n);
  return intValue(big);
}

/**
 * INT's argument as CPython's C unpickler reads it: `strtol(text, 0)` (so `010` is octal 8 and `0x1f` is 31),
 * falling back to Python's own int literal rules when strtol cannot take the whole text.
 */
function parseCInt(text: string, offset: number): number | bigint {
  const match = /^\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(text);
  if (!match) return parseIntText(text, offset);
  const body = match[2] as string;
  const big =
    body.length > 1 && body.startsWith("0") && !/^0[xX]/.test(body)
      ? BigInt(`0o${body.slice(1)}`)
      : BigInt(body);
  return intValue(match[1] === "-" ? -big : big);
}

/** Python's `int(text, 0)` for the decimal, hex, octal and binary forms text pickles use. */
function parseIntText(text: string, offset: number): number | bigint {
  const match = /^\s*([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0+|[1-9][0-9_]*)\s*$/.exec(text);
  if (!match) {
    throw new ReaderError(
      "pickle-malformed",
      `invalid integer literal ${JSON.stringify(text)} at byte ${offset}`,
      {
        offset,
      },
    );
  }
  const digits = (match[2] as string).replace(/_/g, "");
  const big = BigInt(digits);
  return intValue(match[1] === "-" ? -big : big);
}

function describe(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value !== "object") return typeof value === "string" ? "str" : typeof value;
  return value.kind;
}

export function parsePickle(bytes: Uint8Array, options: PickleOptions = {}): PickleResult {
  const limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
  const hooks = options.hooks ?? {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const globals: GlobalReference[] = [];
  const trace = options.trace;
  // With a trace: the start offset of each item of the current MARK frame (kept in step after each opcode).
  let frameStarts: number[] = [];
  const metaStarts: Array<{ starts: number[]; mark: number }> = [];
  let poppedStarts: number[] = [];
  let markStart: number | undefined;
  // Picklers number memo entries 0, 1, 2, ...: an array holds them; a Map takes any index out of sequence.
  const memoDense: Array<PyValue | typeof UNREAD> = [];
  const memoSparse = new Map<number, PyValue | typeof UNREAD>();
  const memoReads = findMemoReads(bytes, options.start ?? 0);
  let memoCount = 0;
  let stack: PyValue[] = [];
  const metastack: PyValue[][] = [];
  let protocol = 0;
  const opcodes = new Uint8Array(256);
  let opCount = 0;
  let pos = options.start ?? 0;
  let opStart = pos;

  const truncated = (what: string): ReaderError =>
    new ReaderError("pickle-truncated", `pickle ends inside ${what} (opcode at byte ${opStart})`, {
      offset: opStart,
    });
  const malformed = (message: string): ReaderError =>
    new ReaderError("pickle-malformed", `${message} (opcode at byte ${opStart})`, { offset: opStart });

  const need = (n: number, what: string): void => {
    if (pos + n > bytes.length) throw truncated(what);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  /** The next `n` bytes as a str (BINUNICODE and its short and 8-byte forms), sliced without a view. */
  const utf8 = (n: number, what: string): string => {
    need(n, what);
    const text = decodeUtf8Range(buffer, pos, pos + n);
    pos += n;
    return text;
  };
  const readLine = (what: string): Uint8Array => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw truncated(what);
    const line = bytes.subarray(pos, end);
    pos = end + 1;
    return line;
  };
  const u8 = (what: string): number => {
    need(1, what);
    return bytes[pos++] as number;
  };
  const u16 = (what: string): number => {
    need(2, what);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = (what: string): number => {
    need(4, what);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (what: string): number => {
    need(8, what);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > MAX_SAFE) throw malformed(`${what} length ${v} is impossibly large`);
    return Number(v);
  };

  const pop = (): PyValue => {
    if (stack.length === 0) throw malformed("unpickling stack underflow");
    return stack.pop() as PyValue;
  };
  const top = (): PyValue => {
    if (stack.length === 0) throw malformed("unpickling stack underflow");
    return stack[stack.length - 1] as PyValue;
  };
  const popMark = (): PyValue[] => {
    const items = stack;
    const previous = metastack.pop();
    if (previous === undefined) throw malformed("could not find MARK");
    stack = previous;
    if (trace) {
      const outer = metaStarts.pop();
      poppedStarts = frameStarts;
      frameStarts = outer?.starts ?? [];
      markStart = outer?.mark;
    }
    return items;
  };
  /** Key/value spans of `items` (alternating) whose starts are `starts`, the last value ending at `end`. */
  const pairSpans = (starts: readonly number[], count: number, end: number) => {
    const pairs: Array<{ keyStart: number; valueStart: number; end: number }> = [];
    for (let i = 0; i + 1 < count; i += 2) {
      pairs.push({
        keyStart: starts[i] as number,
        valueStart: starts[i + 1] as number,
        end: starts[i + 2] ?? end,
      });
    }
    return pairs;
  };
  const memoPut = (index: number, value: PyValue): void => {
    if (index < 0) throw malformed("negative PUT argument");
    trace?.onMemo?.("put", index, opStart);
    const exists = index < memoDense.length || memoSparse.has(index);
    if (!exists && memoCount >= limits.maxMemo) {
      throw new ReaderError(
        "pickle-limit",
        `memo exceeds ${limits.maxMemo} entries (opcode at byte ${opStart})`,
        {
          offset: opStart,
        },
      );
    }
    if (!exists) memoCount++;
    const kept = memoReads === undefined || memoReads(index) ? value : UNREAD;
    if (index <= memoDense.length) memoDense[index] = kept;
    else memoSparse.set(index, kept);
  };
  const memoGet = (index: number): PyValue => {
    trace?.onMemo?.("get", index, opStart);
    const value = index < memoDense.length ? memoDense[index] : memoSparse.get(index);
    if (value === undefined) throw malformed(`memo key ${index} was never stored`);
    if (value === UNREAD) throw new Error(`bug: memo key ${index} is read but findMemoReads missed it`);
    return value as PyValue;
  };

  const makeGlobal = (
    module: string,
    name: string,
    opcode: GlobalReference["opcode"],
    dynamic = false,
  ): PyGlobal => {
    if (module === "" || name === "") throw malformed("a global with an empty module or name");
    if (protocol < 3) {
      const mapped = PY2_NAMES[`${module}.${name}`];
      if (mapped) [module, name] = mapped;
      else module = PY2_MODULES[module] ?? module;
    }
    const reference: GlobalReference = dynamic
      ? { module, name, offset: opStart, opcode, dynamic }
      : { module, name, offset: opStart, opcode };
    globals.push(reference);
    trace?.onGlobal?.(reference);
    return pyGlobal(module, name);
  };

  const instantiate = (callable: PyValue, args: PyValue[], via: CallVia, kwargs?: PyDict): PyValue => {
    if (isBoxed(callable, "global") && kwargs === undefined) {
      const modelled = hooks.call?.(callable, args, via, opStart) ?? callBuiltin(callable, args, via);
      if (modelled !== undefined) return modelled;
    }
    const object: PyObject = {
      kind: "object",
      callable,
      via,
      args,
      kwargs: kwargs !== undefined && kwargs.keys.length > 0 ? kwargs : undefined,
      state: undefined,
      listItems: [],
      dictItems: [],
    };
    return object;
  };

  const appendTo = (target: PyValue, items: PyValue[]): void => {
    if (isBoxed(target, "list")) appendAll(target.items, items);
    else if (isBoxed(target, "object")) appendAll(target.listItems, items);
    else throw malformed(`APPEND to a ${describe(target)}`);
  };

  const setItems = (target: PyValue, items: PyValue[]): void => {
    if (items.length % 2 !== 0) throw malformed("SETITEMS with an odd number of items");
    if (isBoxed(target, "dict")) {
      for (let i = 0; i < items.length; i += 2) {
        const key = items[i] as PyValue;
        if (isUnhashable(key)) throw malformed(`unhashable dict key of type ${describe(key)}`);
        dictSet(target, key, items[i + 1] as PyValue);
      }
    } else if (isBoxed(target, "object")) {
      for (let i = 0; i < items.length; i += 2)
        target.dictItems.push([items[i] as PyValue, items[i + 1] as PyValue]);
    } else {
      throw malformed(`SETITEM on a ${describe(target)}`);
    }
  };

  const build = (target: PyValue, state: PyValue): void => {
    if (isBoxed(target, "object")) target.state = state;
    else if (isBoxed(target, "tensor")) target.pythonState = state;
    else if (isBoxed(target, "dict") && target.className !== undefined) target.attributes = state;
    // Python fails here: builtins such as dict, list and int have no __dict__ to update.
    else
      throw malformed(`BUILD on a ${target === null ? "None" : describe(target)}, which has no attributes`);
  };

  for (;;) {
    opStart = pos;
    if (pos >= bytes.length) {
      throw pos === (options.start ?? 0)
        ? new ReaderError("pickle-truncated", "the pickle is empty", { offset: pos })
        : truncated("the opcode stream (no STOP)");
    }
    const op = bytes[pos++] as number;
    opcodes[op] = 1;
    if (++opCount > limits.maxOps) {
      throw new ReaderError("pickle-limit", `more than ${limits.maxOps} opcodes`, { offset: opStart });
    }
    switch (op) {
      case 0x80: {
        // PROTO (2)
        protocol = u8("PROTO");
        if (protocol > 5) throw malformed(`unsupported pickle protocol ${protocol}`);
        break;
      }
      case 0x95: {
        // FRAME (4): framing only groups opcodes, but a frame longer than the data means truncation
        const frameLength = u64("FRAME");
        need(frameLength, "a FRAME");
        trace?.onFrame?.(opStart);
        break;
      }
      case 0x2e: {
        // STOP
        const value = pop();
        return { value, end: pos, protocol, globals, opcodes };
      }
      case 0x28: // MARK
        if (metastack.length >= limits.maxMarkDepth) {
          throw new ReaderError("pickle-limit", `MARK nesting exceeds ${limits.maxMarkDepth}`, {
            offset: opStart,
          });
        }
        metastack.push(stack);
        stack = [];
        if (trace) {
          metaStarts.push({ starts: frameStarts, mark: opStart });
          frameStarts = [];
        }
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark(); // CPython: POP on an empty stack pops a MARK
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;

      // ---- constants
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE (2)
        stack.push(true);
        break;
      case 0x89: // NEWFALSE (2)
        stack.push(false);
        break;
      case 0x49: {
        // INT (0): decimal text; "01"/"00" are protocol-0 booleans
        const text = decodeLatin1(readLine("INT"));
        if (text === "01") stack.push(true);
        else if (text === "00") stack.push(false);
        else stack.push(parseCInt(text, opStart));
        break;
      }
      case 0x4a: // BININT (1): signed 32-bit
        need(4, "BININT");
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1 (1)
        stack.push(u8("BININT1"));
        break;
      case 0x4d: // BININT2 (1)
        stack.push(u16("BININT2"));
        break;
      case 0x4c: {
        // LONG (0): decimal text with an optional trailing L
        let text = decodeLatin1(readLine("LONG"));
        if (text.endsWith("L")) text = text.slice(0, -1);
        stack.push(parseIntText(text, opStart));
        break;
      }
      case 0x8a: {
        // LONG1 (2)
        const n = u8("LONG1");
        stack.push(decodeLong(take(n, "LONG1")));
        break;
      }
      case 0x8b: {
        // LONG4 (2): the length is signed
        need(4, "LONG4");
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw malformed("LONG pickle has negative byte count");
        stack.push(decodeLong(take(n, "LONG4")));
        break;
      }
      case 0x46: {
        // FLOAT (0)
        const text = decodeLatin1(readLine("FLOAT")).trim();
        const value = /^[+-]?(nan|inf(inity)?)$/i.test(text)
          ? text.toLowerCase().includes("nan")
            ? Number.NaN
            : text.startsWith("-")
              ? Number.NEGATIVE_INFINITY
              : Number.POSITIVE_INFINITY
          : Number(text);
        if (Number.isNaN(value) && !/nan/i.test(text))
          throw malformed(`invalid float literal ${JSON.stringify(text)}`);
        stack.push(pyFloat(value));
        break;
      }
      case 0x47: // BINFLOAT (1): big-endian IEEE double
        need(8, "BINFLOAT");
        stack.push(pyFloat(view.getFloat64(pos, false)));
        pos += 8;
        break;

      // ---- strings and bytes
      case 0x53: {
        // STRING (0): a quoted Python 2 str literal
        const line = readLine("STRING");
        const quote = line[0];
        if (line.length < 2 || (quote !== 0x27 && quote !== 0x22) || line[line.length - 1] !== quote) {
          throw malformed("the STRING opcode argument must be quoted");
        }
        stack.push(decodeLegacyString(escapeDecode(line.subarray(1, -1), opStart)));
        break;
      }
      case 0x54: {
        // BINSTRING (1): signed 32-bit length
        need(4, "BINSTRING");
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw malformed("BINSTRING pickle has negative byte count");
        stack.push(decodeLegacyString(take(n, "BINSTRING")));
        break;
      }
      case 0x55: // SHORT_BINSTRING (1)
        stack.push(decodeLegacyString(take(u8("SHORT_BINSTRING"), "SHORT_BINSTRING")));
        break;
      case 0x56: // UNICODE (0)
        stack.push(decodeRawUnicodeEscape(readLine("UNICODE"), opStart));
        break;
      case 0x58: // BINUNICODE (1)
        stack.push(utf8(u32("BINUNICODE"), "BINUNICODE"));
        break;
      case 0x8c: // SHORT_BINUNICODE (4)
        stack.push(utf8(u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE"));
        break;
      case 0x8d: // BINUNICODE8 (4)
        stack.push(utf8(u64("BINUNICODE8"), "BINUNICODE8"));
        break;
      case 0x42: // BINBYTES (3): unsigned 32-bit length
        stack.push({ kind: "bytes", value: take(u32("BINBYTES"), "BINBYTES"), mutable: false });
        break;
      case 0x43: // SHORT_BINBYTES (3)
        stack.push({ kind: "bytes", value: take(u8("SHORT_BINBYTES"), "SHORT_BINBYTES"), mutable: false });
        break;
      case 0x8e: // BINBYTES8 (4)
        stack.push({ kind: "bytes", value: take(u64("BINBYTES8"), "BINBYTES8"), mutable: false });
        break;
      case 0x96: // BYTEARRAY8 (5)
        stack.push({ kind: "bytes", value: take(u64("BYTEARRAY8"), "BYTEARRAY8"), mutable: true });
        break;
      case 0x97: // NEXT_BUFFER (5): out-of-band data never travels inside a file
        throw malformed("pickle stream refers to out-of-band data but no buffers were given");
      case 0x98: // READONLY_BUFFER (5)
        top();
        break;

      // ---- containers
      case 0x29: // EMPTY_TUPLE (1)
        stack.push(pyTuple([]));
        break;
      case 0x85: // TUPLE1 (2)
        stack.push(pyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2 (2)
        const b = pop();
        const a = pop();
        stack.push(pyTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3 (2)
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(pyTuple([a, b, c]));
        break;
      }
      case 0x74: // TUPLE (0)
        {
          const items = popMark();
          stack.push(pyTuple(items));
        }
        break;
      case 0x5d: // EMPTY_LIST (1)
        stack.push(pyList([]));
        break;
      case 0x6c: // LIST (0)
        {
          const items = popMark();
          stack.push(pyList(items));
        }
        break;
      case 0x7d: // EMPTY_DICT (1)
        stack.push(pyDict());
        break;
      case 0x64: {
        // DICT (0)
        const items = popMark();
        const dict = pyDict();
        setItems(dict, items);
        stack.push(dict);
        if (trace) trace.onDictItems?.(dict, pairSpans(poppedStarts, items.length, opStart));
        break;
      }
      case 0x8f: // EMPTY_SET (4)
        stack.push({ kind: "set", frozen: false, items: [] });
        break;
      case 0x91: // FROZENSET (4)
        {
          const items = popMark();
          stack.push({ kind: "set", frozen: true, items: uniqueItems(items) });
        }
        break;
      case 0x61: {
        // APPEND (0)
        const value = pop();
        appendTo(top(), [value]);
        break;
      }
      case 0x65: {
        // APPENDS (1)
        const items = popMark();
        appendTo(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM (0)
        const keyStart = frameStarts[stack.length - 2] ?? opStart;
        const valueStart = frameStarts[stack.length - 1] ?? opStart;
        const value = pop();
        const key = pop();
        const target = top();
        setItems(target, [key, value]);
        if (trace && isBoxed(target, "dict"))
          trace.onDictItems?.(target, [{ keyStart, valueStart, end: opStart }]);
        break;
      }
      case 0x75: {
        // SETITEMS (1)
        const items = popMark();
        const target = top();
        setItems(target, items);
        if (trace && isBoxed(target, "dict"))
          trace.onDictItems?.(target, pairSpans(poppedStarts, items.length, opStart));
        break;
      }
      case 0x90: {
        // ADDITEMS (4)
        const items = popMark();
        const target = top();
        if (items.some(isUnhashable)) throw malformed("unhashable set item");
        if (isBoxed(target, "set") && !target.frozen)
          appendAll(target.items, uniqueItems(items, target.items));
        else if (isBoxed(target, "object")) appendAll(target.listItems, items);
        else throw malformed(`ADDITEMS on a ${describe(target)}`);
        break;
      }

      // ---- memo
      case 0x70: // PUT (0)
        memoPut(Number(parseIntText(decodeLatin1(readLine("PUT")), opStart)), top());
        break;
      case 0x71: // BINPUT (1)
        memoPut(u8("BINPUT"), top());
        break;
      case 0x72: // LONG_BINPUT (1)
        memoPut(u32("LONG_BINPUT"), top());
        break;
      case 0x94: // MEMOIZE (4)
        memoPut(memoCount, top());
        break;
      case 0x67: // GET (0)
        stack.push(memoGet(Number(parseIntText(decodeLatin1(readLine("GET")), opStart))));
        break;
      case 0x68: // BINGET (1)
        stack.push(memoGet(u8("BINGET")));
        break;
      case 0x6a: // LONG_BINGET (1)
        stack.push(memoGet(u32("LONG_BINGET")));
        break;

      // ---- globals, calls, objects
      case 0x63: {
        // GLOBAL (0): "module\nname\n"
        const module = decodeUtf8(readLine("GLOBAL"), pos);
        const name = decodeUtf8(readLine("GLOBAL"), pos);
        stack.push(makeGlobal(module, name, "GLOBAL"));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL (4)
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") {
          if (!options.scan) throw malformed("STACK_GLOBAL requires str operands");
          stack.push(makeGlobal("<computed>", "<computed>", "STACK_GLOBAL", true));
          break;
        }
        stack.push(makeGlobal(module, name, "STACK_GLOBAL"));
        break;
      }
      case 0x82: // EXT1 (2)
      case 0x83: // EXT2 (2)
      case 0x84: {
        // EXT4 (2): indexes copyreg's extension registry, which lives in the loading process (empty in torch)
        const code = op === 0x82 ? u8("EXT1") : op === 0x83 ? u16("EXT2") : u32("EXT4");
        if (!options.scan) throw malformed(`unregistered extension code ${code}`);
        stack.push(makeGlobal("copyreg._extension_registry", String(code), "EXT"));
        break;
      }
      case 0x52: {
        // REDUCE (0)
        const args = pop();
        const callable = pop();
        if (!isBoxed(args, "tuple"))
          throw malformed(`REDUCE arguments must be a tuple, not ${describe(args)}`);
        stack.push(instantiate(callable, args.items, "reduce"));
        break;
      }
      case 0x81: {
        // NEWOBJ (2): cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        if (!isBoxed(args, "tuple"))
          throw malformed(`NEWOBJ arguments must be a tuple, not ${describe(args)}`);
        if (!isBoxed(cls, "global") && !isBoxed(cls, "object")) {
          throw malformed(`NEWOBJ class argument must be a type, not ${describe(cls)}`);
        }
        stack.push(instantiate(cls, args.items, "newobj"));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (4)
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        if (!isBoxed(args, "tuple") || !isBoxed(kwargs, "dict")) {
          throw malformed("NEWOBJ_EX needs a tuple and a dict");
        }
        stack.push(instantiate(cls, args.items, "newobj_ex", kwargs));
        break;
      }
      case 0x69: {
        // INST (0): "module\nname\n", arguments since MARK
        const module = decodeUtf8(readLine("INST"), pos);
        const name = decodeUtf8(readLine("INST"), pos);
        const args = popMark();
        stack.push(instantiate(makeGlobal(module, name, "INST"), args, "inst"));
        break;
      }
      case 0x6f: {
        // OBJ (1): class and arguments since MARK
        const items = popMark();
        if (items.length === 0) throw malformed("OBJ without a class");
        stack.push(instantiate(items[0] as PyValue, items.slice(1), "obj"));
        break;
      }
      case 0x62: {
        // BUILD (0)
        const state = pop();
        build(top(), state);
        break;
      }
      case 0x50: {
        // PERSID (0)
        const pid = decodeLatin1(readLine("PERSID"));
        stack.push(
          hooks.persistentLoad ? hooks.persistentLoad(pid, opStart) : { kind: "persistent", id: pid },
        );
        break;
      }
      case 0x51: {
        // BINPERSID (1)
        const pidStart = frameStarts[stack.length - 1] ?? opStart;
        const pid = pop();
        trace?.onPersistentId?.(pid, pidStart, opStart);
        stack.push(
          hooks.persistentLoad ? hooks.persistentLoad(pid, opStart) : { kind: "persistent", id: pid },
        );
        break;
      }
      default:
        throw new ReaderError(
          "pickle-unknown-opcode",
          `unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${opStart}`,
          { offset: opStart },
        );
    }
    if (trace) {
      // Keep frameStarts in step with the stack: an item made from consumed items keeps the first one's
      // start, a new item starts at this opcode, and an item built from a MARK frame starts at the MARK.
      const length = stack.length;
      if (frameStarts.length > length) frameStarts.length = length;
      while (frameStarts.length < length) frameStarts.push(markStart ?? opStart);
      markStart = undefined;
    }
  }
}

/**
 * Python 2 `str` values (STRING, BINSTRING). Python 3 decodes them with the `encoding` argument of `load`,
 * ASCII by default; torch.load passes UTF-8, so we decode ASCII as is and anything else as UTF-8, falling back
 * to latin-1 so that no input is ever rejected for its text alone.
 */
function decodeLegacyString(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return decodeLatin1(bytes);
  }
}
