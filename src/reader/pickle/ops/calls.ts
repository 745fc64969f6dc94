import { callBuiltin } from "../builtins.js";
import { describe, type MachineState, type OpcodeEntries } from "../state.js";
import { decodeLatin1 } from "../text.js";
import type { CallVia } from "../types.js";
import { isBoxed, type PyDict, type PyValue, pyObject } from "../value.js";
import { readGlobalLines } from "./globals.js";

/**
 * Calls and objects: where Python would call a callable or set an object's state, the machine asks the hooks
 * and the builtin models for a data equivalent and otherwise records the call as an inert `PyObject`.
 * Persistent ids (torch's storages) are resolved by `hooks.persistentLoad`.
 */

/** REDUCE (0): `callable(*args)`; args is the top item, a tuple. */
export function reduce(m: MachineState): void {
  const args = m.pop();
  const callable = m.pop();
  if (!isBoxed(args, "tuple")) throw m.malformed(`REDUCE arguments must be a tuple, not ${describe(args)}`);
  m.push(instantiate(m, callable, args.items, "reduce"));
}

/** NEWOBJ (2): `cls.__new__(cls, *args)`. */
export function newObj(m: MachineState): void {
  const args = m.pop();
  const cls = m.pop();
  if (!isBoxed(args, "tuple")) throw m.malformed(`NEWOBJ arguments must be a tuple, not ${describe(args)}`);
  if (!isBoxed(cls, "global") && !isBoxed(cls, "object")) {
    throw m.malformed(`NEWOBJ class argument must be a type, not ${describe(cls)}`);
  }
  m.push(instantiate(m, cls, args.items, "newobj"));
}

/** NEWOBJ_EX (4): `cls.__new__(cls, *args, **kwargs)`. */
export function newObjEx(m: MachineState): void {
  const kwargs = m.pop();
  const args = m.pop();
  const cls = m.pop();
  if (!isBoxed(args, "tuple") || !isBoxed(kwargs, "dict"))
    throw m.malformed("NEWOBJ_EX needs a tuple and a dict");
  m.push(instantiate(m, cls, args.items, "newobj_ex", kwargs));
}

/** INST (0): "module\nname\n", called with the items since the last MARK. */
export function inst(m: MachineState): void {
  const cls = readGlobalLines(m, "INST");
  const args = m.popMark();
  m.push(instantiate(m, cls, args, "inst"));
}

/** OBJ (1): the first item since the last MARK called with the others. */
export function obj(m: MachineState): void {
  const items = m.popMark();
  if (items.length === 0) throw m.malformed("OBJ without a class");
  m.push(instantiate(m, items[0] as PyValue, items.slice(1), "obj"));
}

/** BUILD (0): `__setstate__(state)` or `__dict__.update(state)` on the item below the state. */
export function build(m: MachineState): void {
  const state = m.pop();
  const target = m.top();
  if (isBoxed(target, "object")) target.state = state;
  else if (isBoxed(target, "tensor")) target.pythonState = state;
  else if (isBoxed(target, "dict") && target.className !== undefined) target.attributes = state;
  // Python fails here: builtins such as dict, list and int have no __dict__ to update.
  else
    throw m.malformed(`BUILD on a ${target === null ? "None" : describe(target)}, which has no attributes`);
}

/** PERSID (0): a persistent id as a line of text. */
export function persId(m: MachineState): void {
  const pid = decodeLatin1(m.line("PERSID"));
  m.push(m.hooks.persistentLoad ? m.hooks.persistentLoad(pid, m.opStart) : { kind: "persistent", id: pid });
}

/** BINPERSID (1): the top item is a persistent id. */
export function binPersId(m: MachineState): void {
  const pidStart = m.itemStarts[m.frameLength() - 1] ?? m.opStart;
  const pid = m.pop();
  m.trace?.onPersistentId?.(pid, pidStart, m.opStart);
  m.push(m.hooks.persistentLoad ? m.hooks.persistentLoad(pid, m.opStart) : { kind: "persistent", id: pid });
}

/** What calling `callable` would make: a hook's or a builtin model's value, else an inert record. */
function instantiate(
  m: MachineState,
  callable: PyValue,
  args: PyValue[],
  via: CallVia,
  kwargs?: PyDict,
): PyValue {
  if (isBoxed(callable, "global") && kwargs === undefined) {
    const modelled = m.hooks.call?.(callable, args, via, m.opStart) ?? callBuiltin(callable, args, via);
    if (modelled !== undefined) return modelled;
  }
  return pyObject(callable, via, args, kwargs !== undefined && kwargs.keys.length > 0 ? kwargs : undefined);
}

export const callOpcodes: OpcodeEntries = [
  [0x52, reduce],
  [0x81, newObj],
  [0x92, newObjEx],
  [0x69, inst],
  [0x6f, obj],
  [0x62, build],
  [0x50, persId],
  [0x51, binPersId],
];
