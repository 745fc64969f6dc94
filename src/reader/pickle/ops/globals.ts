import { isPython2Only, python3Name } from "../compatNames.js";
import type { MachineState, OpcodeEntries } from "../state.js";
import { decodeUtf8 } from "../text.js";
import type { GlobalReference } from "../types.js";
import { type PyGlobal, pyGlobal } from "../value.js";

export { python3Name } from "../compatNames.js";

/**
 * Globals: the opcodes that name a class or function. Python would import it (`find_class`); the machine
 * records the name, as a `PyGlobal` on the stack and a `GlobalReference` in the result.
 */

/** GLOBAL (0): "module\nname\n". */
export function global(m: MachineState): void {
  m.push(readGlobalLines(m, "GLOBAL"));
}

/** STACK_GLOBAL (4): module and name are the two top items, which must be str. */
export function stackGlobal(m: MachineState): void {
  const name = m.pop();
  const module = m.pop();
  if (typeof module !== "string" || typeof name !== "string") {
    if (!m.scan) throw m.malformed("STACK_GLOBAL requires str operands");
    // Scanning: the name is whatever the pickle computed; say so rather than refuse.
    m.push(makeGlobal(m, "<computed>", "<computed>", "STACK_GLOBAL", true));
    return;
  }
  m.push(makeGlobal(m, module, name, "STACK_GLOBAL"));
}

/** EXT1 (2): a one-byte code in copyreg's extension registry. */
export function ext1(m: MachineState): void {
  extension(m, m.u8("EXT1"));
}

/** EXT2 (2): a two-byte extension code. */
export function ext2(m: MachineState): void {
  extension(m, m.u16("EXT2"));
}

/** EXT4 (2): a four-byte extension code. */
export function ext4(m: MachineState): void {
  extension(m, m.u32("EXT4"));
}

/** The registry lives in the loading process (empty in torch): only a scan can say what a code means. */
function extension(m: MachineState, code: number): void {
  if (!m.scan) throw m.malformed(`unregistered extension code ${code}`);
  m.push(makeGlobal(m, "copyreg._extension_registry", String(code), "EXT"));
}

/** GLOBAL's and INST's operands: two lines, module then name. */
export function readGlobalLines(m: MachineState, opcode: "GLOBAL" | "INST"): PyGlobal {
  const module = decodeUtf8(m.line(opcode), m.pos);
  const name = decodeUtf8(m.line(opcode), m.pos);
  return makeGlobal(m, module, name, opcode);
}

/**
 * Why `find_class` cannot resolve a name, if it cannot: a dotted name below protocol 4 (only protocol 4
 * walks attributes; below it `getattr(module, "a.b")` fails), or a Python 2 module from protocol 3 on
 * (nothing maps it any more, and it does not exist in Python 3).
 */
function unresolvableBecause(protocol: number, module: string, name: string): string | undefined {
  if (protocol < 4 && name.includes(".")) return `a dotted name below protocol 4: getattr fails on it`;
  if (protocol >= 3 && isPython2Only(module)) return `a Python 2 module, not mapped from protocol 3 on`;
  return undefined;
}

/** Names a global as `find_class` would see it (Python 2 names mapped below protocol 3) and records it. */
function makeGlobal(
  m: MachineState,
  module: string,
  name: string,
  opcode: GlobalReference["opcode"],
  dynamic = false,
): PyGlobal {
  if (module === "" || name === "") throw m.malformed("a global with an empty module or name");
  if (m.protocol < 3) [module, name] = python3Name(module, name);
  const unresolvable = dynamic ? undefined : unresolvableBecause(m.protocol, module, name);
  const reference: GlobalReference = {
    module,
    name,
    offset: m.opStart,
    opcode,
    ...(dynamic ? { dynamic } : {}),
    ...(unresolvable ? { unresolvable } : {}),
  };
  m.globals.push(reference);
  m.trace?.onGlobal?.(reference);
  // CPython's find_class fails here, so no reader gets past this global: neither does the machine.
  if (unresolvable) throw m.malformed(`${module}.${name} cannot be resolved (${unresolvable})`);
  return pyGlobal(module, name);
}

export const globalOpcodes: OpcodeEntries = [
  [0x63, global],
  [0x93, stackGlobal],
  [0x82, ext1],
  [0x83, ext2],
  [0x84, ext4],
];
