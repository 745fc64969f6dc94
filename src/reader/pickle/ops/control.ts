import { beginFrame } from "../frames.js";
import type { MachineState, OpcodeEntries } from "../state.js";

/** Framing and control: the opcodes that shape the stream and the stack rather than make values. */

/** PROTO (2): the protocol the stream was written with; 0 to 5 exist. */
export function proto(m: MachineState): void {
  m.protocol = m.u8("PROTO");
  if (m.protocol > 5) throw m.malformed(`unsupported pickle protocol ${m.protocol}`);
}

/** FRAME (4): an 8-byte length grouping the opcodes after it; `frames.ts` has how readers treat it. */
export function frame(m: MachineState): void {
  const length = m.u64("FRAME");
  beginFrame(m, length);
  m.trace?.onFrame?.(m.opStart);
}

/** STOP (0): the top of the stack is the pickle's value. */
export function stop(m: MachineState): void {
  m.result = m.pop();
  m.stopped = true;
}

/** MARK (0): begins the items of a TUPLE, LIST, DICT, APPENDS, SETITEMS, INST, OBJ, ... */
export function mark(m: MachineState): void {
  m.pushMark();
}

/** POP (0): discards the top item; on an empty stack CPython pops a MARK instead. */
export function pop(m: MachineState): void {
  if (m.frameLength() > 0) m.stack.pop();
  else m.popMark();
}

/** POP_MARK (1): discards everything since the last MARK. */
export function popMark(m: MachineState): void {
  m.popMark();
}

/** DUP (0): pushes the top item again. */
export function dup(m: MachineState): void {
  m.push(m.top());
}

export const controlOpcodes: OpcodeEntries = [
  [0x80, proto],
  [0x95, frame],
  [0x2e, stop],
  [0x28, mark],
  [0x30, pop],
  [0x31, popMark],
  [0x32, dup],
];
