import { parseIntText } from "../ints.js";
import type { MachineState, OpcodeEntries } from "../state.js";
import { decodeLatin1 } from "../text.js";
import type { PyValue } from "../value.js";

/** The memo: PUT stores the top item under an index, GET pushes it again (shared references, cycles). */

/** PUT (0): decimal index text. */
export function put(m: MachineState): void {
  store(m, Number(parseIntText(decodeLatin1(m.line("PUT")), m.opStart)));
}

/** BINPUT (1): one-byte index. */
export function binPut(m: MachineState): void {
  store(m, m.u8("BINPUT"));
}

/** LONG_BINPUT (1): unsigned 32-bit index. */
export function longBinPut(m: MachineState): void {
  store(m, m.u32("LONG_BINPUT"));
}

/** MEMOIZE (4): the next index, which is the number of entries stored so far. */
export function memoize(m: MachineState): void {
  store(m, m.memo.count);
}

/** GET (0): decimal index text. */
export function get(m: MachineState): void {
  m.push(load(m, Number(parseIntText(decodeLatin1(m.line("GET")), m.opStart))));
}

/** BINGET (1): one-byte index. */
export function binGet(m: MachineState): void {
  m.push(load(m, m.u8("BINGET")));
}

/** LONG_BINGET (1): unsigned 32-bit index. */
export function longBinGet(m: MachineState): void {
  m.push(load(m, m.u32("LONG_BINGET")));
}

function store(m: MachineState, index: number): void {
  const value = m.top();
  if (index < 0) throw m.malformed("negative PUT argument");
  m.trace?.onMemo?.("put", index, m.opStart);
  m.memo.put(index, value, m.opStart);
}

function load(m: MachineState, index: number): PyValue {
  m.trace?.onMemo?.("get", index, m.opStart);
  const value = m.memo.get(index);
  if (value === undefined) throw m.malformed(`memo key ${index} was never stored`);
  return value;
}

export const memoOpcodes: OpcodeEntries = [
  [0x70, put],
  [0x71, binPut],
  [0x72, longBinPut],
  [0x94, memoize],
  [0x67, get],
  [0x68, binGet],
  [0x6a, longBinGet],
];
