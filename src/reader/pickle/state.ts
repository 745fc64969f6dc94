import { ReaderError } from "../errors.js";
import { lineAcrossEdge, readAcrossEdge } from "./frames.js";
import { Memo } from "./memo.js";
import { findMemoReads } from "./memoReads.js";
import { decodeUtf8Range } from "./text.js";
import {
  DEFAULT_PICKLE_LIMITS,
  type FrameIssue,
  type GlobalReference,
  type PickleHooks,
  type PickleLimits,
  type PickleOptions,
  type PickleTrace,
} from "./types.js";
import type { PyValue } from "./value.js";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Everything one run of the pickle machine shares: the input and the read position, the stack and its
 * MARK frames, the memo, what the stream declared (protocol, frames) and what it used (opcodes,
 * globals). The opcode functions in `ops/` act on it, as `pickle.py`'s `load_*` methods act on `self`.
 *
 * The read primitives below are the only way to consume operands. Each checks one bound, `edge`: the end
 * of the data, or earlier while a FRAME is current (see `frames.ts`), so framing costs nothing until a read
 * reaches a frame's end.
 */
export class MachineState {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly start: number;
  readonly limits: PickleLimits;
  readonly hooks: PickleHooks;
  readonly trace: PickleTrace | undefined;
  readonly scan: boolean;
  /** `frames: "file"`: reads follow the C unpickler's file buffer (see `frames.ts`). */
  readonly fileFrames: boolean;

  pos: number;
  /** Offset of the opcode being run: every error and trace points here. */
  opStart: number;
  /** Reads that would pass this offset take the slow path in `frames.ts`; otherwise the end of the data. */
  edge: number;
  /** The current frame's contents (as declared, or as the file reader fetched them); -1: no frame. */
  frameStart = -1;
  frameEnd = -1;
  /** `frames: "file"`: end of the bytes the C unpickler holds in its buffer; -1: it reads the file directly. */
  bufferEnd = -1;
  readonly frameIssues: FrameIssue[] = [];
  /** Payloads handed out as views of `bytes` (`PickleResult.inputViews`). */
  inputViews = 0;

  /**
   * Every MARK frame's items in one array, as the C unpickler keeps them: `fence` is where the current
   * frame begins and `marks` holds the outer frames' fences. (A fresh array per MARK, as `pickle.py` has it,
   * was the largest garbage of a large pickle: 750,000 MARKs in a DCP `.metadata`.)
   */
  readonly stack: PyValue[] = [];
  fence = 0;
  readonly marks: number[] = [];
  readonly memo: Memo;
  protocol = 0;
  readonly opcodes = new Uint8Array(256);
  readonly globals: GlobalReference[] = [];
  /** Set by STOP, with the value it popped. */
  stopped = false;
  result: PyValue = null;

  // With a trace: the start offset of each item of the current MARK frame (kept in step after each opcode),
  // the outer frames' starts, the starts of the items a MARK frame just gave up, and that MARK's offset.
  itemStarts: number[] = [];
  readonly metaStarts: Array<{ starts: number[]; mark: number }> = [];
  poppedStarts: number[] = [];
  markStart: number | undefined;

  constructor(bytes: Uint8Array, options: PickleOptions) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.start = options.start ?? 0;
    this.limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
    this.hooks = options.hooks ?? {};
    this.trace = options.trace;
    this.scan = options.scan === true;
    this.fileFrames = options.frames === "file";
    this.pos = this.start;
    this.opStart = this.start;
    this.edge = bytes.length;
    this.memo = new Memo(findMemoReads(bytes, this.start, !this.fileFrames), this.limits.maxMemo);
  }

  // ---- errors

  truncated(what: string): ReaderError {
    return new ReaderError(
      "pickle-truncated",
      `pickle ends inside ${what} (opcode at byte ${this.opStart})`,
      {
        offset: this.opStart,
      },
    );
  }

  malformed(message: string): ReaderError {
    return new ReaderError("pickle-malformed", `${message} (opcode at byte ${this.opStart})`, {
      offset: this.opStart,
    });
  }

  // ---- reading operands

  /** Makes the next `n` bytes of an operand readable at `pos` (file framing may move `pos` first). */
  need(n: number, what: string): void {
    if (this.pos + n > this.edge) readAcrossEdge(this, n, what, false);
  }

  /** The next `n` bytes, as a view. */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /**
   * A bytes payload (BINBYTES, BYTEARRAY8, ...): the C unpickler reads these with `_Unpickler_ReadInto`,
   * which takes what is left of its buffer and the rest straight from the file, so they are contiguous in
   * both framings.
   */
  takePayload(n: number, what: string): Uint8Array {
    if (this.pos + n > this.edge) readAcrossEdge(this, n, what, true);
    this.inputViews++;
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** The next `n` bytes as a str (BINUNICODE and its short and 8-byte forms), decoded without a view. */
  utf8(n: number, what: string): string {
    this.need(n, what);
    const text = decodeUtf8Range(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return text;
  }

  /** A newline-terminated operand (text opcodes), without its newline. */
  line(what: string): Uint8Array {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0 || end >= this.edge) lineAcrossEdge(this, end, what);
    const line = this.bytes.subarray(this.pos, end);
    this.pos = end + 1;
    return line;
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++] as number;
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** An unsigned 64-bit length; one past 2^53 cannot describe bytes that exist. */
  u64(what: string): number {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > MAX_SAFE) throw this.malformed(`${what} length ${v} is impossibly large`);
    return Number(v);
  }

  // ---- the stack

  push(value: PyValue): void {
    this.stack.push(value);
  }

  pop(): PyValue {
    if (this.stack.length <= this.fence) throw this.malformed("unpickling stack underflow");
    return this.stack.pop() as PyValue;
  }

  top(): PyValue {
    if (this.stack.length <= this.fence) throw this.malformed("unpickling stack underflow");
    return this.stack[this.stack.length - 1] as PyValue;
  }

  /** How many items the current MARK frame holds. */
  frameLength(): number {
    return this.stack.length - this.fence;
  }

  /** MARK: the current frame is set aside and a new, empty one begins. */
  pushMark(): void {
    if (this.marks.length >= this.limits.maxMarkDepth) {
      throw new ReaderError("pickle-limit", `MARK nesting exceeds ${this.limits.maxMarkDepth}`, {
        offset: this.opStart,
      });
    }
    this.marks.push(this.fence);
    this.fence = this.stack.length;
    if (this.trace) {
      this.metaStarts.push({ starts: this.itemStarts, mark: this.opStart });
      this.itemStarts = [];
    }
  }

  /** The items pushed since the last MARK; the stack before that MARK becomes current again. */
  popMark(): PyValue[] {
    const previous = this.marks.pop();
    if (previous === undefined) throw this.malformed("could not find MARK");
    const items = this.stack.slice(this.fence);
    this.stack.length = this.fence;
    this.fence = previous;
    if (this.trace) {
      const outer = this.metaStarts.pop();
      this.poppedStarts = this.itemStarts;
      this.itemStarts = outer?.starts ?? [];
      this.markStart = outer?.mark;
    }
    return items;
  }

  /**
   * With a trace, after each opcode: keep `itemStarts` in step with the stack. An item made from consumed
   * items keeps the first one's start, a new item starts at this opcode, and an item built from a MARK frame
   * starts at the MARK.
   */
  syncItemStarts(): void {
    const starts = this.itemStarts;
    const length = this.frameLength();
    if (starts.length > length) starts.length = length;
    while (starts.length < length) starts.push(this.markStart ?? this.opStart);
    this.markStart = undefined;
  }

  /** Records a frame the bytes do not honour, and tells the trace at once. */
  frameIssue(issue: FrameIssue): void {
    this.frameIssues.push(issue);
    this.trace?.onFrameIssue?.(issue);
  }
}

/** What an opcode does: one function per opcode, as `pickle.py`'s `dispatch` table holds. */
export type OpcodeFunction = (m: MachineState) => void;

/** An opcode family's functions, by opcode byte: `dispatch.ts` gathers them into one table. */
export type OpcodeEntries = ReadonlyArray<readonly [opcode: number, run: OpcodeFunction]>;

/** Python's type name of a value, for error messages. */
export function describe(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value !== "object") return typeof value === "string" ? "str" : typeof value;
  return value.kind;
}
