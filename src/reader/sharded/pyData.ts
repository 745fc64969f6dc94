import { dictGet, isBoxed, type PyObject, type PyValue } from "../pickle/value.js";
import { asInt } from "../torch/rebuild.js";

/**
 * Reading the inert objects the pickle machine describes (`PyObject`: a class named, never imported) as the
 * plain data the frameworks' classes hold: a dataclass pickles as `cls.__new__(cls)` plus BUILD with its
 * `__dict__`, an Enum member as `cls(value)` or, from some Python versions, `getattr(cls, name)`.
 */

/** The object's class as `module.name`, or `undefined` when `value` is no object built from a named class. */
export function classOf(value: PyValue | undefined): string | undefined {
  if (!isBoxed(value, "object")) return undefined;
  return isBoxed(value.callable, "global") ? value.callable.qualified : undefined;
}

/** The class's own name (after the last dot): DCP's classes moved modules between torch versions. */
export function classNameOf(value: PyValue | undefined): string | undefined {
  const qualified = classOf(value);
  return qualified?.slice(qualified.lastIndexOf(".") + 1);
}

/** An attribute set by BUILD (a dataclass field), or `undefined`. */
export function field(value: PyValue | undefined, name: string): PyValue | undefined {
  if (!isBoxed(value, "object")) return undefined;
  const state = value.state;
  if (isBoxed(state, "dict")) return dictGet(state, name);
  // (state, slotstate) from classes with __slots__
  if (isBoxed(state, "tuple") && isBoxed(state.items[1], "dict")) return dictGet(state.items[1], name);
  return undefined;
}

export function asString(value: PyValue | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}

export function asBool(value: PyValue | undefined): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

/** Items of a list or tuple, or `undefined`. */
export function itemsOf(value: PyValue | undefined): PyValue[] | undefined {
  return isBoxed(value, "list") || isBoxed(value, "tuple") ? value.items : undefined;
}

export function asStringList(value: PyValue | undefined): string[] | undefined {
  const items = itemsOf(value);
  if (!items?.every((item) => typeof item === "string")) return undefined;
  return items as string[];
}

/** An Enum member as `{ name?, value? }`: `cls(value)` gives the value, `getattr(cls, name)` the name. */
export function enumMember(value: PyValue | undefined): { readonly name?: string; readonly value?: PyValue } {
  if (!isBoxed(value, "object")) return {};
  const o: PyObject = value;
  if (classOf(o) === "builtins.getattr") {
    const name = asString(o.args[1]);
    return name === undefined ? {} : { name };
  }
  return o.args.length === 1 ? { value: o.args[0] as PyValue } : {};
}

/** An int, also when pickled as an int Enum member (`ZeroStageEnum(2)`). */
export function intOrEnum(value: PyValue | undefined): number | undefined {
  return asInt(value) ?? asInt(enumMember(value).value);
}
