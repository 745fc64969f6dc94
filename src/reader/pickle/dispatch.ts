import { callOpcodes } from "./ops/calls.js";
import { containerOpcodes } from "./ops/containers.js";
import { controlOpcodes } from "./ops/control.js";
import { globalOpcodes } from "./ops/globals.js";
import { memoOpcodes } from "./ops/memo.js";
import { numberOpcodes } from "./ops/numbers.js";
import { stringOpcodes } from "./ops/strings.js";
import type { OpcodeFunction } from "./state.js";

/**
 * The dispatch table, indexed by opcode byte, as `pickle.py`'s `Unpickler.dispatch`: each family module lists
 * its opcodes, and an opcode listed twice is a bug caught when this module loads. `undefined`: no such opcode.
 */
export const DISPATCH: ReadonlyArray<OpcodeFunction | undefined> = (() => {
  const table = new Array<OpcodeFunction | undefined>(256).fill(undefined);
  for (const family of [
    controlOpcodes,
    numberOpcodes,
    stringOpcodes,
    containerOpcodes,
    memoOpcodes,
    globalOpcodes,
    callOpcodes,
  ]) {
    for (const [opcode, run] of family) {
      if (table[opcode] !== undefined) throw new Error(`bug: opcode 0x${opcode.toString(16)} listed twice`);
      table[opcode] = run;
    }
  }
  return table;
})();
