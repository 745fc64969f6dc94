/**
 * Which memo entries a pickle ever reads back, found by one pass over its opcodes before it is run.
 *
 * Python's pickler memoizes nearly every value it writes (torch's state dicts: eight PUTs per tensor), but a
 * stream reads back only a few of them (the globals, "storage", "cpu"). Holding every memoized value until
 * the end keeps a 200,000-tensor state dict's argument tuples, persistent ids and backward-hook dicts alive
 * (~100 MB, and a third of the parse spent in the garbage collector); values nobody reads need not be kept.
 * Skipping them is invisible: the only way to observe a memo entry is to read it.
 */

/** Answers "is memo index `i` read by some GET?". */
export type MemoReads = (index: number) => boolean;

// Operand sizes of the opcodes with fixed-width arguments (0 for none), by opcode byte; -1: not fixed.
const FIXED = new Int8Array(256).fill(-1);
for (const op of [
  0x28, 0x30, 0x31, 0x32, 0x4e, 0x88, 0x89, 0x97, 0x98, 0x29, 0x85, 0x86, 0x87, 0x74, 0x5d, 0x6c, 0x7d, 0x64,
  0x8f, 0x91, 0x61, 0x65, 0x73, 0x75, 0x90, 0x94, 0x93, 0x52, 0x81, 0x92, 0x6f, 0x62, 0x51,
])
  FIXED[op] = 0;
for (const op of [0x80, 0x4b, 0x71, 0x68, 0x82]) FIXED[op] = 1; // PROTO BININT1 BINPUT BINGET EXT1
for (const op of [0x4d, 0x83]) FIXED[op] = 2; // BININT2 EXT2
for (const op of [0x4a, 0x72, 0x6a, 0x84]) FIXED[op] = 4; // BININT LONG_BINPUT LONG_BINGET EXT4
for (const op of [0x47, 0x95]) FIXED[op] = 8; // BINFLOAT FRAME (a frame's length only groups opcodes)
// Opcodes whose argument is one or two newline-terminated lines.
const LINES = new Uint8Array(256);
for (const op of [0x49, 0x4c, 0x46, 0x53, 0x56, 0x50, 0x70]) LINES[op] = 1; // INT LONG FLOAT STRING UNICODE PERSID PUT
for (const op of [0x63, 0x69]) LINES[op] = 2; // GLOBAL INST

// Opcodes with a length-prefixed argument (strings, bytes, longs): the prefix's width; 4 and 8 are unsigned.
const PREFIX = new Int8Array(256);
for (const op of [0x8a, 0x55, 0x8c, 0x43]) PREFIX[op] = 1; // LONG1 SHORT_BINSTRING SHORT_BINUNICODE SHORT_BINBYTES
for (const op of [0x58, 0x42]) PREFIX[op] = 4; // BINUNICODE BINBYTES
for (const op of [0x8b, 0x54]) PREFIX[op] = -4; // LONG4 BINSTRING: signed
for (const op of [0x8d, 0x8e, 0x96]) PREFIX[op] = 8; // BINUNICODE8 BINBYTES8 BYTEARRAY8

const STOP = 0x2e;
const PUT = 0x70;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const MEMOIZE = 0x94;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const FRAME = 0x95;

/**
 * The memo indices read between `start` and the first STOP, or `undefined` when every entry must be kept:
 * a text GET (protocol 0, whose number the machine parses), MEMOIZE mixed with explicit PUTs (MEMOIZE's index
 * then depends on which PUTs overwrote), or a stream this pass cannot walk (truncated, unknown opcode): the
 * machine itself then reports the error where it meets it. This pass reads frames contiguously, as
 * `frames: "contiguous"` does; for the file reader (`contiguous` false) a FRAME may make it read other bytes,
 * so a stream with one keeps every entry.
 */
export function findMemoReads(bytes: Uint8Array, start = 0, contiguous = true): MemoReads | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  // Dense indices (every pickler numbers from 0) in a bitmap: a PUT takes at least two bytes, so no stream
  // stores more than `(end - start) / 2` entries without using sparse indices, which go to a set.
  const denseLimit = Math.ceil((end - start) / 2) + 1;
  const dense = new Uint32Array(Math.ceil(denseLimit / 32));
  const sparse = new Set<number>();
  const read = (index: number): void => {
    if (index < denseLimit) dense[index >>> 5] = (dense[index >>> 5] as number) | (1 << (index & 31));
    else sparse.add(index);
  };
  let sawPut = false;
  let sawMemoize = false;
  let pos = start;
  let stopped = false;
  while (pos < end) {
    const op = bytes[pos++] as number;
    const fixed = FIXED[op] as number;
    if (fixed >= 0) {
      if (pos + fixed > end) return undefined;
      if (op === BINGET) read(bytes[pos] as number);
      else if (op === FRAME && !contiguous) return undefined;
      else if (op === LONG_BINGET) read(view.getUint32(pos, true));
      else if (op === MEMOIZE) sawMemoize = true;
      else if (op === BINPUT || op === LONG_BINPUT) sawPut = true;
      pos += fixed;
      continue;
    }
    if (op === STOP) {
      stopped = true;
      break;
    }
    const lines = LINES[op] as number;
    if (lines > 0) {
      if (op === PUT) sawPut = true;
      for (let i = 0; i < lines; i++) {
        const newline = bytes.indexOf(0x0a, pos);
        if (newline < 0) return undefined;
        pos = newline + 1;
      }
      continue;
    }
    const prefix = PREFIX[op] as number;
    if (prefix === 0) return undefined; // GET (text), or an opcode the machine will reject
    const width = Math.abs(prefix);
    if (pos + width > end) return undefined;
    const length =
      width === 1
        ? (bytes[pos] as number)
        : width === 8
          ? Number(view.getBigUint64(pos, true))
          : prefix < 0
            ? view.getInt32(pos, true)
            : view.getUint32(pos, true);
    if (length < 0) return undefined;
    pos += width + length;
  }
  if (!stopped || (sawPut && sawMemoize)) return undefined;
  return (index) =>
    index < denseLimit ? ((dense[index >>> 5] as number) & (1 << (index & 31))) !== 0 : sparse.has(index);
}
