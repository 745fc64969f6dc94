import { appendAll, isBoxed, type PyValue } from "../../reader/pickle/value.js";
import { classifyGlobal } from "./classify.js";

/**
 * Python pickles an Enum member by name from 3.11 on, as `getattr(TheEnum, "NAME")`, so a real torch 1.13
 * DCP `.metadata` names `builtins.getattr` (for `MEM_FORMAT_ENCODING.TORCH_CONTIGUOUS_FORMAT`). getattr can
 * reach anything (`getattr(os, "system")`), so it is dangerous unless every use of it in the pickle is such a
 * read: called with a class that is torch's own or a known framework's (or a safe builtin type) and a plain
 * public attribute name, its result never called, and getattr itself never handed to anything else. Then
 * nothing runs but the attribute lookup of a class the scan already vouches for.
 */
const GETATTR = "builtins.getattr";
const PLAIN_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

function isGetattr(value: PyValue | undefined): boolean {
  return isBoxed(value, "global") && value.qualified === GETATTR;
}

function isVouchedClass(value: PyValue | undefined): boolean {
  if (!isBoxed(value, "global")) return false;
  const cls = classifyGlobal(value.module, value.name).class;
  return cls === "framework" || cls === "safe";
}

/** Whether every use of getattr in the graph below `root` reads a plain attribute of a vouched-for class. */
export function getattrOnlyReadsMembers(root: PyValue | undefined): boolean {
  if (root === undefined) return false;
  const seen = new Set<object>();
  const stack: PyValue[] = [root];
  let reads = 0;
  while (stack.length > 0) {
    const value = stack.pop() as PyValue;
    if (typeof value !== "object" || value === null || seen.has(value)) continue;
    seen.add(value);
    switch (value.kind) {
      case "global":
        // Reached as a value, not as the callable of a call: getattr handed to something else.
        if (value.qualified === GETATTR) return false;
        break;
      case "object": {
        const { callable, args } = value;
        if (isGetattr(callable)) {
          const [cls, name, ...rest] = args;
          if (rest.length > 0 || !isVouchedClass(cls) || typeof name !== "string" || !PLAIN_NAME.test(name))
            return false;
          reads++;
        } else if (isBoxed(callable, "object") && isGetattr(callable.callable)) {
          return false; // what getattr returned is called
        } else {
          stack.push(callable);
          appendAll(stack, args);
        }
        if (value.kwargs) stack.push(value.kwargs);
        if (value.state !== undefined) stack.push(value.state);
        appendAll(stack, value.listItems);
        for (const [k, v] of value.dictItems) stack.push(k, v);
        break;
      }
      case "dict":
        appendAll(stack, value.keys);
        appendAll(stack, value.values);
        break;
      case "list":
      case "tuple":
      case "set":
        appendAll(stack, value.items);
        break;
      case "persistent":
        stack.push(value.id);
        break;
      default:
        break;
    }
  }
  return reads > 0;
}

export const ENUM_MEMBER_REASON =
  'reads Enum members by name (getattr(TheEnum, "NAME"), as Python 3.11+ pickles them) of classes the scan vouches for, and nothing else';
