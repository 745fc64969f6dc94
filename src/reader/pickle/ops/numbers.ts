import { decodeLong, parseCInt, parseIntText } from "../ints.js";
import type { MachineState, OpcodeEntries } from "../state.js";
import { decodeLatin1 } from "../text.js";
import { pyFloat } from "../value.js";

/** Constants and numbers: None, booleans, ints of every width, floats. */

/** NONE (0). */
export function none(m: MachineState): void {
  m.push(null);
}

/** NEWTRUE (2). */
export function newTrue(m: MachineState): void {
  m.push(true);
}

/** NEWFALSE (2). */
export function newFalse(m: MachineState): void {
  m.push(false);
}

/** INT (0): decimal text, read as the C unpickler reads it; "01" and "00" are protocol 0's booleans. */
export function int(m: MachineState): void {
  const text = decodeLatin1(m.line("INT"));
  if (text === "01") m.push(true);
  else if (text === "00") m.push(false);
  else m.push(parseCInt(text, m.opStart));
}

/** BININT (1): a signed 32-bit int. */
export function binInt(m: MachineState): void {
  m.push(m.i32("BININT"));
}

/** BININT1 (1): an unsigned byte. */
export function binInt1(m: MachineState): void {
  m.push(m.u8("BININT1"));
}

/** BININT2 (1): an unsigned 16-bit int. */
export function binInt2(m: MachineState): void {
  m.push(m.u16("BININT2"));
}

/** LONG (0): decimal text with an optional trailing L. */
export function long(m: MachineState): void {
  let text = decodeLatin1(m.line("LONG"));
  if (text.endsWith("L")) text = text.slice(0, -1);
  m.push(parseIntText(text, m.opStart));
}

/** LONG1 (2): a one-byte length, then that many bytes of little-endian two's complement. */
export function long1(m: MachineState): void {
  const n = m.u8("LONG1");
  m.push(decodeLong(m.take(n, "LONG1")));
}

/** LONG4 (2): as LONG1 with a four-byte length, which is signed. */
export function long4(m: MachineState): void {
  const n = m.i32("LONG4");
  if (n < 0) throw m.malformed("LONG pickle has negative byte count");
  m.push(decodeLong(m.take(n, "LONG4")));
}

/** FLOAT (0): `repr(float)` text, including inf and nan. */
export function float(m: MachineState): void {
  const text = decodeLatin1(m.line("FLOAT")).trim();
  const value = /^[+-]?(nan|inf(inity)?)$/i.test(text)
    ? text.toLowerCase().includes("nan")
      ? Number.NaN
      : text.startsWith("-")
        ? Number.NEGATIVE_INFINITY
        : Number.POSITIVE_INFINITY
    : Number(text);
  if (Number.isNaN(value) && !/nan/i.test(text))
    throw m.malformed(`invalid float literal ${JSON.stringify(text)}`);
  m.push(pyFloat(value));
}

/** BINFLOAT (1): a big-endian IEEE double. */
export function binFloat(m: MachineState): void {
  m.need(8, "BINFLOAT");
  m.push(pyFloat(m.view.getFloat64(m.pos, false)));
  m.pos += 8;
}

export const numberOpcodes: OpcodeEntries = [
  [0x4e, none],
  [0x88, newTrue],
  [0x89, newFalse],
  [0x49, int],
  [0x4a, binInt],
  [0x4b, binInt1],
  [0x4d, binInt2],
  [0x4c, long],
  [0x8a, long1],
  [0x8b, long4],
  [0x46, float],
  [0x47, binFloat],
];
