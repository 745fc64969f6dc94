import type { MachineState } from "./state.js";

/**
 * FRAME (protocol 4+) as CPython's readers apply it. A frame only groups opcodes so that a reader can fetch
 * them in one read; the pickler never lets an opcode or its operand cross a frame's end. Streams written by
 * hand can, and then the readers part ways:
 *
 * - C `_pickle` on bytes (`pickle.loads`): `load_frame` only asks `_Unpickler_Read` for `frame_len` bytes,
 *   which on a memory buffer just checks that they exist ("pickle data was truncated" otherwise), then
 *   rewinds. Reads then run on contiguously, ignoring where the frame ends. `frames: "contiguous"`.
 * - C `_pickle` on a file without `peek()` (`io.BytesIO`, what `torch.load` reads a zip's `data.pkl` from):
 *   `load_frame`'s `_Unpickler_Read` finds the buffer short, so `_Unpickler_ReadImpl` ->
 *   `_Unpickler_ReadFromFile` reads exactly the frame into the buffer. Later, a read that does not fit in
 *   what is left of the buffer (`_Unpickler_ReadImpl`) is read fresh from the file, which stands at the
 *   frame's end, and the leftover bytes of the frame are never read; `_Unpickler_Readline` does the same
 *   with a line that has no newline in the buffer. Bytes payloads are the exception: `_Unpickler_ReadInto`
 *   takes the leftover and then the file, so they stay contiguous. A FRAME that fits in the buffer is only
 *   checked; one that does not replaces the buffer with a fresh read. `frames: "file"`.
 * - pure-Python `pickle._Unpickler` (`_Unframer`): an operand crossing a frame's end raises "pickle exhausted
 *   before end of frame", a FRAME before the current frame ended raises "beginning of a new frame before end
 *   of current frame", but a FRAME longer than the bytes left is not checked: it reads on and runs the
 *   opcodes. The machine does not imitate its refusals; it records each one as a `FrameIssue`, and in scan
 *   mode runs on through a FRAME longer than the data as this reader does.
 *
 * The state: `frameStart`/`frameEnd` delimit the current frame (-1 when none); in file mode `bufferEnd` is
 * where the C unpickler's buffer ends (-1 while it reads the file directly); the file then stands at
 * `max(pos, bufferEnd)`. `edge` is the nearest of the frame's end, the buffer's end and the data's end: the
 * read primitives come here only when a read would pass it.
 */

/**
 * A read of `n` bytes at `pos` that would pass `edge`. Records a frame crossing, moves `pos` where the file
 * reader would read from (unless `payload`: bytes payloads are read contiguously), and throws when the data
 * ends first. Afterwards the `n` bytes at `pos` are readable.
 */
export function readAcrossEdge(m: MachineState, n: number, what: string, payload: boolean): void {
  const pos = m.pos;
  const end = pos + n;
  if (m.frameEnd >= 0 && end > m.frameEnd) {
    if (pos < m.frameEnd) crossesFrameEnd(m);
    leaveFrame(m);
  }
  if (m.bufferEnd >= 0 && end > m.bufferEnd) {
    // _Unpickler_ReadImpl: the buffer cannot serve the read, so it comes from the file, after the buffer.
    if (!payload && pos < m.bufferEnd) m.pos = m.bufferEnd;
    m.bufferEnd = -1;
  }
  if (m.pos + n > m.bytes.length) throw m.truncated(what);
  updateEdge(m);
}

/**
 * A text line whose newline is at `newline` (-1: none) and at or past `edge`. As `readAcrossEdge`, for
 * `_Unpickler_Readline`: when the buffer holds no newline, the line is read from the file after the buffer.
 */
export function lineAcrossEdge(m: MachineState, newline: number, what: string): void {
  if (newline < 0) throw m.truncated(what);
  const pos = m.pos;
  if (m.frameEnd >= 0 && newline >= m.frameEnd) {
    if (pos < m.frameEnd) crossesFrameEnd(m);
    leaveFrame(m);
  }
  if (m.bufferEnd >= 0 && newline >= m.bufferEnd) {
    if (pos < m.bufferEnd) m.pos = m.bufferEnd;
    m.bufferEnd = -1;
  }
  updateEdge(m);
}

/**
 * FRAME's effect once its 8-byte length is read (`load_frame`; `_Unframer.load_frame`). Throws "truncated"
 * for a frame longer than the data, as both C readers do, except in scan mode, where parsing goes on as the
 * pure-Python reader does.
 */
export function beginFrame(m: MachineState, length: number): void {
  if (m.frameEnd > m.pos) {
    m.frameIssue({
      kind: "frame-inside-frame",
      offset: m.opStart,
      frameStart: m.frameStart,
      frameEnd: m.frameEnd,
    });
  }
  if (m.bufferEnd >= 0 && m.pos + length > m.bufferEnd) {
    // The new frame does not fit in the buffer: `_Unpickler_ReadImpl` reads it fresh from the file, which
    // stands at the buffer's end; the rest of the buffer is never read.
    if (m.pos < m.bufferEnd) m.pos = m.bufferEnd;
    m.bufferEnd = -1;
  }
  const available = m.bytes.length - m.pos;
  if (length > available) {
    m.frameIssue({ kind: "frame-past-end", offset: m.opStart, length, available });
    if (!m.scan) throw m.truncated("a FRAME");
  }
  m.frameStart = m.pos;
  m.frameEnd = m.pos + length;
  // A frame that fits in the buffer is only checked: the buffer, and its end, stay as they were.
  if (m.fileFrames && m.bufferEnd < 0) m.bufferEnd = Math.min(m.frameEnd, m.bytes.length);
  updateEdge(m);
}

function crossesFrameEnd(m: MachineState): void {
  m.frameIssue({
    kind: "operand-crosses-frame-end",
    offset: m.opStart,
    frameStart: m.frameStart,
    frameEnd: m.frameEnd,
  });
}

/** The current frame is over (the read reaches its end or runs past it). */
function leaveFrame(m: MachineState): void {
  m.frameStart = -1;
  m.frameEnd = -1;
}

function updateEdge(m: MachineState): void {
  let edge = m.bytes.length;
  if (m.frameEnd > m.pos && m.frameEnd < edge) edge = m.frameEnd;
  if (m.bufferEnd >= 0 && m.bufferEnd < edge) edge = m.bufferEnd;
  m.edge = edge;
}
