import { describe, type MachineState, type OpcodeEntries } from "../state.js";
import {
  appendAll,
  dictSetPairs,
  EMPTY_TUPLE,
  isBoxed,
  isUnhashable,
  objectDictItems,
  objectListItems,
  type PyValue,
  pyDict,
  pyList,
  pyTuple,
  uniqueItems,
} from "../value.js";

/** Containers: tuples, lists, dicts and sets, built whole or filled item by item. */

/** EMPTY_TUPLE (1). */
export function emptyTuple(m: MachineState): void {
  m.push(EMPTY_TUPLE);
}

/** TUPLE1 (2): the top item as a 1-tuple. */
export function tuple1(m: MachineState): void {
  m.push(pyTuple([m.pop()]));
}

/** TUPLE2 (2): the top two items as a tuple. */
export function tuple2(m: MachineState): void {
  const b = m.pop();
  const a = m.pop();
  m.push(pyTuple([a, b]));
}

/** TUPLE3 (2): the top three items as a tuple. */
export function tuple3(m: MachineState): void {
  const c = m.pop();
  const b = m.pop();
  const a = m.pop();
  m.push(pyTuple([a, b, c]));
}

/** TUPLE (0): the items since the last MARK as a tuple. */
export function tuple(m: MachineState): void {
  m.push(pyTuple(m.popMark()));
}

/** EMPTY_LIST (1). */
export function emptyList(m: MachineState): void {
  m.push(pyList([]));
}

/** LIST (0): the items since the last MARK as a list. */
export function list(m: MachineState): void {
  m.push(pyList(m.popMark()));
}

/** EMPTY_DICT (1). */
export function emptyDict(m: MachineState): void {
  m.push(pyDict());
}

/** DICT (0): the key/value pairs since the last MARK as a dict. */
export function dict(m: MachineState): void {
  const items = m.popMark();
  const made = pyDict();
  setItems(m, made, items);
  m.push(made);
  m.trace?.onDictItems?.(made, pairSpans(m.poppedStarts, items.length, m.opStart));
}

/** EMPTY_SET (4). */
export function emptySet(m: MachineState): void {
  m.push({ kind: "set", frozen: false, items: [] });
}

/** FROZENSET (4): the items since the last MARK as a frozenset. */
export function frozenSet(m: MachineState): void {
  m.push({ kind: "set", frozen: true, items: uniqueItems(m.popMark()) });
}

/** APPEND (0): `list.append(top)` on the item below. */
export function append(m: MachineState): void {
  const value = m.pop();
  appendTo(m, m.top(), [value]);
}

/** APPENDS (1): `list.extend(items since MARK)` on the item below the MARK. */
export function appends(m: MachineState): void {
  const items = m.popMark();
  appendTo(m, m.top(), items);
}

/** SETITEM (0): `target[key] = value`, the three top items. */
export function setItem(m: MachineState): void {
  const keyStart = m.itemStarts[m.frameLength() - 2] ?? m.opStart;
  const valueStart = m.itemStarts[m.frameLength() - 1] ?? m.opStart;
  const value = m.pop();
  const key = m.pop();
  const target = m.top();
  setItems(m, target, [key, value]);
  if (m.trace && isBoxed(target, "dict"))
    m.trace.onDictItems?.(target, [{ keyStart, valueStart, end: m.opStart }]);
}

/** SETITEMS (1): `target[key] = value` for each pair since the MARK, on the item below it. */
export function setItemsOp(m: MachineState): void {
  const items = m.popMark();
  const target = m.top();
  setItems(m, target, items);
  if (m.trace && isBoxed(target, "dict"))
    m.trace.onDictItems?.(target, pairSpans(m.poppedStarts, items.length, m.opStart));
}

/** ADDITEMS (4): `set.update(items since MARK)` on the item below the MARK. */
export function addItems(m: MachineState): void {
  const items = m.popMark();
  const target = m.top();
  if (items.some(isUnhashable)) throw m.malformed("unhashable set item");
  if (isBoxed(target, "set") && !target.frozen) appendAll(target.items, uniqueItems(items, target.items));
  else if (isBoxed(target, "object")) appendAll(objectListItems(target), items);
  else throw m.malformed(`ADDITEMS on a ${describe(target)}`);
}

/** List items go into a list, or into the record of an object's `append`/`extend` calls. */
function appendTo(m: MachineState, target: PyValue, items: PyValue[]): void {
  if (isBoxed(target, "list")) appendAll(target.items, items);
  else if (isBoxed(target, "object")) appendAll(objectListItems(target), items);
  else throw m.malformed(`APPEND to a ${describe(target)}`);
}

/** Alternating keys and values go into a dict, or into the record of an object's `__setitem__` calls. */
function setItems(m: MachineState, target: PyValue, items: PyValue[]): void {
  if (items.length % 2 !== 0) throw m.malformed("SETITEMS with an odd number of items");
  if (isBoxed(target, "dict")) {
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i] as PyValue;
      if (isUnhashable(key)) throw m.malformed(`unhashable dict key of type ${describe(key)}`);
    }
    dictSetPairs(target, items);
  } else if (isBoxed(target, "object")) {
    const pairs = objectDictItems(target);
    for (let i = 0; i < items.length; i += 2) pairs.push([items[i] as PyValue, items[i + 1] as PyValue]);
  } else {
    throw m.malformed(`SETITEM on a ${describe(target)}`);
  }
}

/** Key/value spans of alternating items whose starts are `starts`, the last value ending at `end`. */
function pairSpans(starts: readonly number[], count: number, end: number) {
  const pairs: Array<{ keyStart: number; valueStart: number; end: number }> = [];
  for (let i = 0; i + 1 < count; i += 2) {
    pairs.push({
      keyStart: starts[i] as number,
      valueStart: starts[i + 1] as number,
      end: starts[i + 2] ?? end,
    });
  }
  return pairs;
}

export const containerOpcodes: OpcodeEntries = [
  [0x29, emptyTuple],
  [0x85, tuple1],
  [0x86, tuple2],
  [0x87, tuple3],
  [0x74, tuple],
  [0x5d, emptyList],
  [0x6c, list],
  [0x7d, emptyDict],
  [0x64, dict],
  [0x8f, emptySet],
  [0x91, frozenSet],
  [0x61, append],
  [0x65, appends],
  [0x73, setItem],
  [0x75, setItemsOp],
  [0x90, addItems],
];
