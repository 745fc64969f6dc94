import { ReaderError } from "../errors.js";
import { DISPATCH } from "./dispatch.js";
import { MachineState } from "./state.js";
import type { PickleOptions, PickleResult } from "./types.js";

/**
 * A pickle virtual machine that executes nothing. It follows CPython's `_pickle.c` / `pickle.py` opcode by
 * opcode for protocols 0 to 5, but where Python would import a global or call it, this machine records a
 * description (`PyGlobal`, `PyObject`) instead. Known pure constructors (OrderedDict, set, bytes via
 * `_codecs.encode`, torch's tensor rebuild functions) are modelled as data transformations by `hooks.call`.
 *
 * Laid out as `pickle.py` is: one shared state (`state.ts`), one small function per opcode grouped by family
 * (`ops/`), a table from opcode byte to function (`dispatch.ts`), and this loop.
 */

export {
  type CallVia,
  DEFAULT_PICKLE_LIMITS,
  type FrameIssue,
  type FrameReading,
  type GlobalReference,
  type PickleHooks,
  type PickleLimits,
  type PickleOptions,
  type PickleResult,
  type PickleTrace,
} from "./types.js";

export function parsePickle(bytes: Uint8Array, options: PickleOptions = {}): PickleResult {
  const m = new MachineState(bytes, options);
  const { opcodes, trace } = m;
  const maxOps = m.limits.maxOps;
  let opCount = 0;
  for (;;) {
    const pos = m.pos;
    m.opStart = pos;
    if (pos >= bytes.length) {
      throw pos === m.start
        ? new ReaderError("pickle-truncated", "the pickle is empty", { offset: pos })
        : m.truncated("the opcode stream (no STOP)");
    }
    const op = bytes[pos] as number;
    m.pos = pos + 1;
    opcodes[op] = 1;
    if (++opCount > maxOps) {
      throw new ReaderError("pickle-limit", `more than ${maxOps} opcodes`, { offset: pos });
    }
    const run = DISPATCH[op];
    if (run === undefined) {
      throw new ReaderError(
        "pickle-unknown-opcode",
        `unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${pos}`,
        { offset: pos },
      );
    }
    run(m);
    if (m.stopped) {
      return {
        value: m.result,
        end: m.pos,
        protocol: m.protocol,
        globals: m.globals,
        opcodes,
        frameIssues: m.frameIssues,
        inputViews: m.inputViews,
      };
    }
    if (trace) m.syncItemStarts();
  }
}
