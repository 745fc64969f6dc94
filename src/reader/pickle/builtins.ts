import {
  dictSet,
  isBoxed,
  type PyDict,
  type PyGlobal,
  type PyValue,
  pyDict,
  pyFloat,
  pyList,
  pyObject,
  pyTuple,
  uniqueItems,
} from "./value.js";

type Via = "reduce" | "newobj" | "newobj_ex" | "inst" | "obj";

/**
 * Pure-data models of the standard-library callables that plain pickles use to rebuild containers. Each one
 * computes what Python would produce, without importing anything; anything not listed stays an inert object.
 */
export function callBuiltin(callable: PyGlobal, args: PyValue[], via: Via): PyValue | undefined {
  switch (callable.qualified) {
    case "collections.OrderedDict":
      return dictFrom("collections.OrderedDict", args[0]);
    case "collections.Counter":
      return dictFrom("collections.Counter", args[0]);
    case "builtins.set":
      return { kind: "set", frozen: false, items: uniqueItems(itemsOf(args[0])) };
    case "builtins.frozenset":
      return { kind: "set", frozen: true, items: uniqueItems(itemsOf(args[0])) };
    case "builtins.list":
      return pyList(itemsOf(args[0]));
    case "builtins.tuple":
      return pyTuple(itemsOf(args[0]));
    case "builtins.dict":
      return args.length === 0 || isBoxed(args[0], "dict") ? dictFrom(undefined, args[0]) : undefined;
    case "builtins.int":
      return intFrom(args[0]);
    case "builtins.float":
      return floatFrom(args[0]);
    case "builtins.str":
      return args.length === 0 ? "" : typeof args[0] === "string" ? args[0] : undefined;
    case "builtins.bytes":
      return bytesFrom(args, false);
    case "builtins.bytearray":
      return bytesFrom(args, true);
    case "_codecs.encode": {
      // Protocol 2 pickles `bytes` as _codecs.encode(<latin-1 text>, "latin1").
      const [text, encoding] = args;
      if (typeof text !== "string") return undefined;
      return {
        kind: "bytes",
        value: encodeText(text, typeof encoding === "string" ? encoding : "utf-8"),
        mutable: false,
      };
    }
    case "copyreg._reconstructor": {
      // Protocol 0/1 objects: copyreg._reconstructor(cls, base, state) is `base.__new__(cls, state)`.
      const [cls, , state] = args;
      if (cls === undefined) return undefined;
      return pyObject(cls, via, state === null || state === undefined ? [] : [state], undefined);
    }
    case "copyreg.__newobj__": {
      const [cls, ...rest] = args;
      if (cls === undefined) return undefined;
      return pyObject(cls, "newobj", rest, undefined);
    }
    default:
      return undefined;
  }
}

function dictFrom(className: string | undefined, source: PyValue | undefined): PyDict {
  const dict = pyDict(className);
  if (isBoxed(source, "dict")) {
    source.keys.forEach((key, i) => {
      dictSet(dict, key, source.values[i] as PyValue);
    });
  } else if (isBoxed(source, "list") || isBoxed(source, "tuple")) {
    for (const pair of source.items) {
      if ((isBoxed(pair, "tuple") || isBoxed(pair, "list")) && pair.items.length === 2) {
        dictSet(dict, pair.items[0] as PyValue, pair.items[1] as PyValue);
      }
    }
  }
  return dict;
}

function itemsOf(source: PyValue | undefined): PyValue[] {
  if (isBoxed(source, "list") || isBoxed(source, "tuple") || isBoxed(source, "set")) return [...source.items];
  return [];
}

function bytesFrom(args: PyValue[], mutable: boolean): PyValue | undefined {
  const [source, encoding] = args;
  if (source === undefined) return { kind: "bytes", value: new Uint8Array(0), mutable };
  if (isBoxed(source, "bytes")) return { kind: "bytes", value: source.value, mutable };
  if (typeof source === "string") {
    return {
      kind: "bytes",
      value: encodeText(source, typeof encoding === "string" ? encoding : "utf-8"),
      mutable,
    };
  }
  return undefined;
}

function encodeText(text: string, encoding: string): Uint8Array {
  const normalized = encoding.toLowerCase().replace(/[-_]/g, "");
  if (normalized === "latin1" || normalized === "iso88591") {
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
    return out;
  }
  return new TextEncoder().encode(text);
}

function intFrom(source: PyValue | undefined): PyValue | undefined {
  if (source === undefined) return 0;
  if (typeof source === "number" || typeof source === "bigint") return source;
  if (typeof source === "string" && /^\s*[+-]?\d+\s*$/.test(source)) {
    const big = BigInt(source.trim());
    return big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  return undefined;
}

function floatFrom(source: PyValue | undefined): PyValue | undefined {
  if (source === undefined) return pyFloat(0);
  if (typeof source === "number") return pyFloat(source);
  if (typeof source === "string" && source.trim() !== "" && !Number.isNaN(Number(source)))
    return pyFloat(Number(source));
  return undefined;
}
