import type { MachineState, OpcodeEntries } from "../state.js";
import { decodeLatin1, decodeRawUnicodeEscape, escapeDecode } from "../text.js";

/** Strings and bytes: Python 2 str, str, bytes, bytearray and protocol 5's out-of-band buffers. */

/** STRING (0): a quoted, backslash-escaped Python 2 str literal. */
export function string(m: MachineState): void {
  const line = m.line("STRING");
  const quote = line[0];
  if (line.length < 2 || (quote !== 0x27 && quote !== 0x22) || line[line.length - 1] !== quote) {
    throw m.malformed("the STRING opcode argument must be quoted");
  }
  m.push(decodeLegacyString(escapeDecode(line.subarray(1, -1), m.opStart)));
}

/** BINSTRING (1): a Python 2 str with a signed 32-bit length. */
export function binString(m: MachineState): void {
  const n = m.i32("BINSTRING");
  if (n < 0) throw m.malformed("BINSTRING pickle has negative byte count");
  m.push(decodeLegacyString(m.take(n, "BINSTRING")));
}

/** SHORT_BINSTRING (1): a Python 2 str with a one-byte length. */
export function shortBinString(m: MachineState): void {
  m.push(decodeLegacyString(m.take(m.u8("SHORT_BINSTRING"), "SHORT_BINSTRING")));
}

/** UNICODE (0): a str as raw-unicode-escape text. */
export function unicode(m: MachineState): void {
  m.push(decodeRawUnicodeEscape(m.line("UNICODE"), m.opStart));
}

/** BINUNICODE (1): UTF-8 with an unsigned 32-bit length. */
export function binUnicode(m: MachineState): void {
  m.push(m.utf8(m.u32("BINUNICODE"), "BINUNICODE"));
}

/** SHORT_BINUNICODE (4): UTF-8 with a one-byte length. */
export function shortBinUnicode(m: MachineState): void {
  m.push(m.utf8(m.u8("SHORT_BINUNICODE"), "SHORT_BINUNICODE"));
}

/** BINUNICODE8 (4): UTF-8 with a 64-bit length. */
export function binUnicode8(m: MachineState): void {
  m.push(m.utf8(m.u64("BINUNICODE8"), "BINUNICODE8"));
}

/** BINBYTES (3): bytes with an unsigned 32-bit length. */
export function binBytes(m: MachineState): void {
  m.push({ kind: "bytes", value: m.takePayload(m.u32("BINBYTES"), "BINBYTES"), mutable: false });
}

/** SHORT_BINBYTES (3): bytes with a one-byte length. */
export function shortBinBytes(m: MachineState): void {
  m.push({
    kind: "bytes",
    value: m.takePayload(m.u8("SHORT_BINBYTES"), "SHORT_BINBYTES"),
    mutable: false,
  });
}

/** BINBYTES8 (4): bytes with a 64-bit length. */
export function binBytes8(m: MachineState): void {
  m.push({ kind: "bytes", value: m.takePayload(m.u64("BINBYTES8"), "BINBYTES8"), mutable: false });
}

/** BYTEARRAY8 (5): a bytearray with a 64-bit length. */
export function byteArray8(m: MachineState): void {
  m.push({ kind: "bytes", value: m.takePayload(m.u64("BYTEARRAY8"), "BYTEARRAY8"), mutable: true });
}

/** NEXT_BUFFER (5): out-of-band data, which never travels inside a file. */
export function nextBuffer(m: MachineState): void {
  throw m.malformed("pickle stream refers to out-of-band data but no buffers were given");
}

/** READONLY_BUFFER (5): makes the top buffer read-only; nothing to do for a description. */
export function readonlyBuffer(m: MachineState): void {
  m.top();
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

export const stringOpcodes: OpcodeEntries = [
  [0x53, string],
  [0x54, binString],
  [0x55, shortBinString],
  [0x56, unicode],
  [0x58, binUnicode],
  [0x8c, shortBinUnicode],
  [0x8d, binUnicode8],
  [0x42, binBytes],
  [0x43, shortBinBytes],
  [0x8e, binBytes8],
  [0x96, byteArray8],
  [0x97, nextBuffer],
  [0x98, readonlyBuffer],
];
