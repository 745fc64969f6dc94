import { isBoxed, type PyValue } from "../../reader/pickle/value.js";
import { forEachChild, type KeyPath, MAX_WALK_DEPTH } from "../walk.js";
import { allowedByWeightsOnly, type GlobalClass } from "./classify.js";
import type { FileScan } from "./scan.js";

/**
 * Will `torch.load(path)` work with `weights_only=True` (the default since torch 2.6)? Decided as torch's
 * `_weights_only_unpickler` (2.13) decides: every global on its allowlist, only the protocol-2 opcodes it
 * implements, storages as the only persistent ids.
 */
export type WeightsOnlyBlocker =
  | { readonly kind: "global"; readonly name: string; readonly class: GlobalClass; readonly paths: KeyPath[] }
  | { readonly kind: "opcodes"; readonly opcodes: string[] }
  /** Not a torch.load file at all: another loader reads it (safetensors, torch.jit.load, numpy.load). */
  | { readonly kind: "format"; readonly detail: string }
  /** torch.load fails on it whatever weights_only says (a bare pickle, a plain zip). */
  | { readonly kind: "not-loadable"; readonly detail: string };

export interface WeightsOnlyVerdict {
  readonly loads: boolean;
  readonly blockers: WeightsOnlyBlocker[];
  /** Harmless globals that `torch.serialization.add_safe_globals([...])` would let through. */
  readonly allow: string[];
}

const OPCODE_NAMES: Record<number, string> = {
  97: "APPEND",
  101: "APPENDS",
  71: "BINFLOAT",
  104: "BINGET",
  74: "BININT",
  75: "BININT1",
  77: "BININT2",
  81: "BINPERSID",
  113: "BINPUT",
  88: "BINUNICODE",
  98: "BUILD",
  125: "EMPTY_DICT",
  93: "EMPTY_LIST",
  143: "EMPTY_SET",
  41: "EMPTY_TUPLE",
  99: "GLOBAL",
  138: "LONG1",
  106: "LONG_BINGET",
  114: "LONG_BINPUT",
  40: "MARK",
  137: "NEWFALSE",
  129: "NEWOBJ",
  136: "NEWTRUE",
  78: "NONE",
  128: "PROTO",
  82: "REDUCE",
  115: "SETITEM",
  117: "SETITEMS",
  85: "SHORT_BINSTRING",
  46: "STOP",
  116: "TUPLE",
  133: "TUPLE1",
  134: "TUPLE2",
  135: "TUPLE3",
};
/** The opcodes torch 2.13's weights_only unpickler implements (the keys above). */
const ALLOWED_OPCODES = new Set(Object.keys(OPCODE_NAMES).map(Number));

const ALL_OPCODE_NAMES: Record<number, string> = {
  ...OPCODE_NAMES,
  147: "STACK_GLOBAL",
  149: "FRAME",
  148: "MEMOIZE",
  140: "SHORT_BINUNICODE",
  141: "BINUNICODE8",
  66: "BINBYTES",
  67: "SHORT_BINBYTES",
  142: "BINBYTES8",
  150: "BYTEARRAY8",
  144: "ADDITEMS",
  145: "FROZENSET",
  146: "NEWOBJ_EX",
  105: "INST",
  111: "OBJ",
  80: "PERSID",
  103: "GET",
  112: "PUT",
  73: "INT",
  76: "LONG",
  70: "FLOAT",
  83: "STRING",
  84: "BINSTRING",
  86: "UNICODE",
  100: "DICT",
  108: "LIST",
  48: "POP",
  49: "POP_MARK",
  50: "DUP",
  139: "LONG4",
  130: "EXT1",
  131: "EXT2",
  132: "EXT4",
};

const MAX_PATHS = 3;

/** The first few places where objects of `classes` (or the classes themselves) sit in the loaded object. */
function pathsOf(root: PyValue | undefined, classes: ReadonlySet<string>): Map<string, KeyPath[]> {
  const found = new Map<string, KeyPath[]>();
  const seen = new Set<object>();
  const path: KeyPath = [];
  let budget = 200_000;
  const note = (name: string) => {
    const list = found.get(name) ?? [];
    if (list.length < MAX_PATHS) list.push([...path]);
    found.set(name, list);
  };
  const visit = (value: PyValue | undefined, depth: number): void => {
    if (typeof value !== "object" || value === null || depth > MAX_WALK_DEPTH) return;
    if (--budget < 0 || seen.has(value)) return;
    seen.add(value);
    if (value.kind === "global") {
      if (classes.has(value.qualified)) note(value.qualified);
      return;
    }
    if (value.kind === "object") {
      const callable = value.callable;
      if (isBoxed(callable, "global") && classes.has(callable.qualified)) note(callable.qualified);
      // Constructor arguments sit at the object's own path: they have no key of their own.
      for (const arg of value.args) visit(arg, depth + 1);
    }
    forEachChild(value, (segment, child) => {
      path.push(segment);
      visit(child, depth + 1);
      path.pop();
    });
  };
  visit(root, 0);
  return found;
}

/** Files torch.load does not read as checkpoints: what reads them instead, or why torch.load fails. */
const NOT_TORCH_LOAD: Partial<Record<FileScan["format"], WeightsOnlyBlocker>> = {
  torchscript: { kind: "format", detail: "a TorchScript archive: load it with torch.jit.load" },
  safetensors: {
    kind: "format",
    detail: "safetensors: load it with safetensors.torch.load_file (no pickle at all)",
  },
  numpy: {
    kind: "format",
    detail: "a numpy file: numpy.load reads it (allow_pickle=True runs an object array's pickle)",
  },
  pickle: {
    kind: "not-loadable",
    detail:
      'a bare pickle, not written by torch.save: torch.load reads it as the legacy format\'s magic number and raises "Invalid magic number; corrupt file?" (with weights_only=False it runs the pickle first); pickle.load reads it',
  },
  zip: { kind: "not-loadable", detail: "a zip archive without data.pkl: torch.load fails on it" },
  archive: { kind: "not-loadable", detail: "a compressed archive: torch.load fails on it; unpack it first" },
  other: { kind: "not-loadable", detail: "not a pickle: torch.load fails on it (invalid load key)" },
};

export function judgeWeightsOnly(scan: FileScan): WeightsOnlyVerdict {
  const other = NOT_TORCH_LOAD[scan.format];
  if (other) return { loads: false, blockers: [other], allow: [] };
  const executed = scan.pickles.filter((p) => p.executedByTorch && !p.record.includes(">"));
  // A set, not a search per global: a DCP data file merges one pickle per item (tens of thousands). Made only
  // when a global is not allowed: most files name none, and hashing every item's record name was most of
  // judging a merged file.
  let executedRecords: Set<string> | undefined;
  const executes = (record: string) => {
    executedRecords ??= new Set(executed.map((p) => p.record));
    return executedRecords.has(record) || record.startsWith("legacy");
  };
  const blockers: WeightsOnlyBlocker[] = [];
  const blocked = new Map<string, GlobalClass>();
  // By module, then name: a merged DCP file has a few globals per item, hundreds of thousands in all.
  const allowed = new Map<string, Map<string, boolean>>();
  for (const g of scan.globals) {
    if (!g.dynamic) {
      let names = allowed.get(g.module);
      if (names === undefined) {
        names = new Map();
        allowed.set(g.module, names);
      }
      let ok = names.get(g.name);
      if (ok === undefined) {
        ok = allowedByWeightsOnly(g.module, g.name);
        names.set(g.name, ok);
      }
      if (ok) continue;
    }
    // Only a pickle torch.load runs can block it (not a nested one, which torch never unpickles).
    if (!executes(g.record)) continue;
    if (g.dynamic) blocked.set("<computed global>", g.class);
    else blocked.set(`${g.module}.${g.name}`, g.class);
  }
  const names = new Set(blocked.keys());
  const paths = new Map<string, KeyPath[]>();
  // Locating blocked classes walks the whole object: not worth it when nothing is blocked (the usual case).
  for (const pickle of names.size > 0 ? executed : []) {
    for (const [name, list] of pathsOf(pickle.root, names))
      paths.set(name, [...(paths.get(name) ?? []), ...list].slice(0, MAX_PATHS));
  }
  for (const [name, cls] of blocked)
    blockers.push({ kind: "global", name, class: cls, paths: paths.get(name) ?? [] });

  const opcodes = new Set<string>();
  // Pickles replayed from a scan memo share one opcode table: each distinct table is read once.
  for (const table of new Set(executed.map((p) => p.opcodes))) {
    table.forEach((used, op) => {
      if (used && !ALLOWED_OPCODES.has(op)) opcodes.add(ALL_OPCODE_NAMES[op] ?? `0x${op.toString(16)}`);
    });
  }
  if (opcodes.size > 0) blockers.push({ kind: "opcodes", opcodes: [...opcodes].sort() });
  const allow = [...blocked].filter(([, cls]) => cls === "framework").map(([name]) => name);
  return { loads: blockers.length === 0 && executed.length > 0, blockers, allow };
}
