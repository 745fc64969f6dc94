import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parsePickle } from "../src/reader/pickle/machine.js";
import { dictGet, isBoxed, objectListItems, type PyValue } from "../src/reader/pickle/value.js";

/**
 * The graph's allocation shortcuts (value.ts) must not change what it describes: shared empty records stay
 * per object once written, small dicts keep Python's last-write-wins, large ones their index.
 */
const enc = new TextEncoder();
const bytes = (...parts: Array<string | ArrayLike<number>>) =>
  new Uint8Array(parts.flatMap((p) => (typeof p === "string" ? [...enc.encode(p)] : Array.from(p))));
const str = (text: string) => bytes("X", [text.length, 0, 0, 0], text);
const int = (n: number) => [0x4b, n];
const PROTO2 = [0x80, 2];
const items = (value: PyValue) => (isBoxed(value, "tuple") ? value.items : expect.fail("not a tuple"));

describe("the pickle graph's shared empties", () => {
  it("objects given APPENDS keep their own items; one given none shares nothing writable", () => {
    // (C() with APPENDS [1], C() with APPENDS [2, 3], C())
    const object = (appended: number[]) =>
      bytes("cm\nC\n)R", appended.length > 0 ? bytes("(", appended.flatMap(int), "e") : []);
    const root = parsePickle(bytes(PROTO2, "(", object([1]), object([2, 3]), object([]), "t.")).value;
    const [a, b, c] = items(root).map((v) => (isBoxed(v, "object") ? v : expect.fail("not an object")));
    expect([a?.listItems, b?.listItems, c?.listItems]).toEqual([[1], [2, 3], []]);
    if (!c || !a) return;
    objectListItems(c).push(9);
    expect(c.listItems).toEqual([9]);
    expect(a.listItems).toEqual([1]);
    expect(() => (a.dictItems as unknown as unknown[]).push(1)).toThrow();
  });

  it("every empty tuple is one object, as in CPython", () => {
    const [x, y] = items(parsePickle(bytes(PROTO2, "))", [0x86], ".")).value);
    expect(x).toBe(y);
    expect(items(x as PyValue)).toEqual([]);
  });
});

describe("dicts built by SETITEMS", () => {
  it("a repeated key in a small dict keeps the last value, in the first key's place", () => {
    const root = parsePickle(
      bytes(PROTO2, "}(", str("a"), int(1), str("b"), int(2), str("a"), int(3), "u."),
    ).value;
    if (!isBoxed(root, "dict")) return expect.fail("not a dict");
    expect(root.keys).toEqual(["a", "b"]);
    expect(root.values).toEqual([3, 2]);
    expect(dictGet(root, "a")).toBe(3);
    expect(dictGet(root, "missing")).toBeUndefined();
  });

  it("a dict that outgrows the small size is indexed and still replaces and finds every key", () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const first = keys.slice(0, 6).flatMap((k, i) => [...str(k), ...int(i)]);
    const second = keys.flatMap((k, i) => [...str(k), ...int(100 + i)]);
    const root = parsePickle(bytes(PROTO2, "}(", first, "u(", second, "u.")).value;
    if (!isBoxed(root, "dict")) return expect.fail("not a dict");
    expect(root.keys).toEqual(keys);
    expect(keys.map((k) => dictGet(root, k))).toEqual(keys.map((_, i) => 100 + i));
    expect(root.stringIndex?.size).toBe(12);
  });

  it("batches of SETITEMS with repeated keys give what a Python dict gives, past the index too", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.nat(255)), { maxLength: 30 }), {
          maxLength: 6,
        }),
        (batches) => {
          const model = new Map<string, number>();
          const ops = batches.map((batch) => {
            for (const [k, v] of batch) model.set(`k${k}`, v);
            return bytes(
              "(",
              batch.flatMap(([k, v]) => [...str(`k${k}`), ...int(v)]),
              "u",
            );
          });
          const root = parsePickle(bytes(PROTO2, "}", ...ops, ".")).value;
          if (!isBoxed(root, "dict")) return expect.fail("not a dict");
          expect(root.keys).toEqual([...model.keys()]);
          expect(root.values).toEqual([...model.values()]);
          for (const [k, v] of model) expect(dictGet(root, k)).toBe(v);
        },
      ),
      { numRuns: 300 },
    );
  });
});
