import type { PyValue } from "../../src/reader/pickle/value.js";

/**
 * The canonical JSON form of `test/fixtures/make_pickle_corpus.py`, computed from ckpt's decoded values so the
 * two can be compared with deep equality. The spec lives in that script's header and the corpus manifest.
 */
export type Canonical = null | boolean | string | Canonical[] | { [key: string]: Canonical };

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function floatHex(value: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, value, false);
  return hex(new Uint8Array(view.buffer));
}

/** Python's `json.dumps(x, sort_keys=True, separators=(",", ":"))` with its default ASCII escaping. */
export function pythonSortText(value: Canonical): string {
  const sorted = (v: Canonical): Canonical => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sorted(v[k] as Canonical)]),
      );
    }
    return v;
  };
  return JSON.stringify(sorted(value)).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function pyCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function canonical(value: PyValue): Canonical {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return { int: value.toString() };
  switch (value.kind) {
    case "float":
      return { float: floatHex(value.value) };
    case "bytes":
      return value.mutable ? { bytearray: hex(value.value) } : { bytes: hex(value.value) };
    case "tuple":
      return { tuple: value.items.map(canonical) };
    case "list":
      return value.items.map(canonical);
    case "dict": {
      const out: Record<string, Canonical> = {
        dict: value.keys.map((k, i) => [canonical(k), canonical(value.values[i] as PyValue)]),
      };
      if (value.className !== undefined) out.class = value.className;
      if (value.attributes !== undefined) out.state = canonical(value.attributes);
      return out;
    }
    case "set": {
      const items = value.items.map(canonical);
      items.sort((a, b) => pyCompare(pythonSortText(a), pythonSortText(b)));
      return value.frozen ? { frozenset: items } : { set: items };
    }
    case "global":
      return { global: `${value.module}.${value.name}` };
    case "object": {
      const callable = value.callable;
      const out: Record<string, Canonical> = {
        object:
          typeof callable === "object" && callable !== null && callable.kind === "global"
            ? `${callable.module}.${callable.name}`
            : canonical(callable),
        args: value.args.map(canonical),
      };
      if (value.kwargs !== undefined) out.kwargs = canonical(value.kwargs);
      if (value.state !== undefined) out.state = canonical(value.state);
      if (value.listItems.length > 0) out.listitems = value.listItems.map(canonical);
      if (value.dictItems.length > 0)
        out.dictitems = value.dictItems.map(([k, v]) => [canonical(k), canonical(v)]);
      return out;
    }
    case "persistent":
      return { persistent: canonical(value.id) };
    default:
      return { unexpected: value.kind };
  }
}
