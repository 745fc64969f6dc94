import type { PyDict, PyGlobal, PyObject, PyValue } from "./value.js";

/**
 * The public shapes of the pickle machine: its options, hooks, limits and result. `machine.ts` re-exports them,
 * so callers import everything from there.
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
  /** Why CPython's `find_class` cannot resolve it (the stream then stops there in every reader). */
  readonly unresolvable?: string;
}

/**
 * A FRAME (protocol 4+) that the bytes do not honour. CPython's pickler never writes one; the three CPython
 * readers disagree about them (see `frames.ts`), which is how one stream can mean two things.
 *
 * Offsets are of the opcode concerned; `frameStart`/`frameEnd` delimit the frame's contents (just past its
 * 8-byte length, to that plus the length) as the machine read them.
 */
export type FrameIssue =
  /** An operand or text line begins inside a frame and ends past it (pure-Python pickle refuses it). */
  | {
      readonly kind: "operand-crosses-frame-end";
      readonly offset: number;
      readonly frameStart: number;
      readonly frameEnd: number;
    }
  /** A FRAME longer than the bytes left (both C readers refuse it; pure-Python pickle runs on). */
  | {
      readonly kind: "frame-past-end";
      readonly offset: number;
      readonly length: number;
      readonly available: number;
    }
  /** A FRAME before the current frame ended (pure-Python pickle refuses it; the C readers do not). */
  | {
      readonly kind: "frame-inside-frame";
      readonly offset: number;
      readonly frameStart: number;
      readonly frameEnd: number;
    };

export interface PickleResult {
  readonly value: PyValue;
  /** Offset just past the STOP opcode; trailing bytes, if any, start here. */
  readonly end: number;
  /** The protocol the last PROTO announced (0 when none: protocols 0 and 1 have no PROTO). */
  readonly protocol: number;
  readonly globals: GlobalReference[];
  /** Which opcodes the stream used (index = opcode byte): torch's weights_only unpickler accepts a subset. */
  readonly opcodes: Uint8Array;
  /** Frames the bytes do not honour, in stream order (empty for everything CPython's pickler writes). */
  readonly frameIssues: FrameIssue[];
  /** Bytes values that are views of the input: while any is kept, so must the input be. */
  readonly inputViews: number;
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
  /** Every frame issue as it is met, even when the stream turns out malformed later. */
  onFrameIssue?(issue: FrameIssue): void;
  onMemo?(kind: "put" | "get", index: number, offset: number): void;
  /** Every global as it is named, even when the stream turns out malformed later. */
  onGlobal?(reference: GlobalReference): void;
}

/**
 * How FRAME boundaries are read, after one of CPython's C readers (`frames.ts` has the details):
 * - `"contiguous"`: as `pickle.loads(bytes)` does: a FRAME only checks that its bytes exist; reads run on
 *   across its end.
 * - `"file"`: as `pickle.load(io.BytesIO(bytes))` does, which is what `torch.load` hands a zip's `data.pkl`
 *   to: an operand or line that does not fit in what is left of the frame is read after the frame's end.
 */
export type FrameReading = "contiguous" | "file";

export interface PickleOptions {
  start?: number;
  hooks?: PickleHooks;
  limits?: Partial<PickleLimits>;
  trace?: PickleTrace;
  /**
   * Scanning for security rather than loading: record what Python would do instead of refusing, so that a
   * computed STACK_GLOBAL, an extension code or a FRAME longer than the data shows up as a finding rather
   * than a parse error.
   */
  scan?: boolean;
  /** Default `"contiguous"`. Streams without FRAME (protocols 0 to 3, torch's data.pkl) read alike in both. */
  frames?: FrameReading;
}
