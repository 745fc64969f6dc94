import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JsonObjectStream, writeJson } from "../src/cli/render/json.js";

function printed(value: unknown, oneLine: string[] = [], chunks: string[] = []): string {
  writeJson(value, (text) => chunks.push(text), oneLine);
  return chunks.join("");
}

/** What `writeJson` should print for `value` with the array under `key` one item per line. */
function printedNatively(value: Record<string, unknown>, key: string): string {
  const lines = Object.entries(value).map(([k, v]) => {
    const text =
      Array.isArray(v) && k === key
        ? `[\n${v.map((item) => `    ${JSON.stringify(item)}`).join(",\n")}\n  ]`
        : JSON.stringify(v, null, 2).replaceAll("\n", "\n  ");
    return `  ${JSON.stringify(k)}: ${text}`;
  });
  return `{\n${lines.join(",\n")}\n}\n`;
}

/** Object keys that keep their place in an object (an array-index key like "0" would move to the front). */
const fieldName = fc.string().filter((k) => !/^(?:0|[1-9]\d*)$/.test(k));

// Report fields: mostly what real reports hold, so that whole lines take the writers' fast paths (a test that
// never reaches them proves nothing about them); the rest makes them step aside for JSON.stringify.
const int = fc.oneof({ arbitrary: fc.nat(), weight: 30 }, fc.constant(-0), fc.double(), fc.constant(2 ** 60));
const text = fc.oneof(
  { arbitrary: fc.constantFrom("float32", "cpu", "strided", "__0_0.distcp", "a.b-c/d:e"), weight: 30 },
  fc.string(),
  fc.constant('q"\\'),
);

describe("writeJson", () => {
  it("prints exactly what JSON.stringify(value, null, 2) prints when no array is one-line", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(printed(value)).toBe(`${JSON.stringify(value, null, 2)}\n`);
      }),
      { numRuns: 500 },
    );
    const odd = { a: undefined, b: [undefined, () => 1], c: new Date(0), d: { e: [] }, f: {} };
    expect(printed(odd)).toBe(`${JSON.stringify(odd, null, 2)}\n`);
  });

  it("writes the items of the named arrays one per line, and parses back to the same value", () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue()), fc.jsonValue(), (items, other) => {
        const value = { schema: "x", tensors: items, nested: [{ tensors: items, other }] };
        const text = printed(value, ["tensors"]);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(value)));
        for (const item of items) expect(text).toContain(`\n    ${JSON.stringify(item)}`);
      }),
      { numRuns: 200 },
    );
  });

  it("writes a tensor line exactly as JSON.stringify does, whatever its fields hold", () => {
    const tensor = fc.record({
      path: fc.array(fc.oneof(text, int), { maxLength: 4 }),
      dtype: text,
      shape: fc.array(int, { maxLength: 4 }),
      stride: fc.array(int, { maxLength: 4 }),
      offset: int,
      storage: fc.oneof(
        fc.constant(null),
        fc.record({ key: text, device: text, sizeBytes: int }),
        fc.record({ device: text, key: text, sizeBytes: int }),
      ),
      requiresGrad: fc.oneof(fc.boolean(), fc.constant(undefined)),
      parameter: fc.boolean(),
      layout: text,
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(tensor, fc.jsonValue())), (items) => {
        const lines = printed({ tensors: items }, ["tensors"]).split("\n").slice(2, -3);
        expect(lines).toEqual(
          items.map((item, i) => `    ${JSON.stringify(item) ?? "null"}${i < items.length - 1 ? "," : ""}`),
        );
      }),
      { numRuns: 300 },
    );
  });

  it("keeps every character: any code point, lone surrogates, text across pieces", () => {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit: "binary" }), (value) => {
        expect(printed(value)).toBe(`${JSON.stringify(value, null, 2)}\n`);
        expect(printed({ tensors: [value, value] }, ["tensors"])).toBe(
          `{\n  "tensors": [\n    ${JSON.stringify(value)},\n    ${JSON.stringify(value)}\n  ]\n}\n`,
        );
      }),
      { numRuns: 300 },
    );
    // Multi-byte text on both sides of a piece's end, and one string longer than a piece.
    const wide = {
      a: "\ud800x\udfff",
      names: Array.from({ length: 40_000 }, (_, i) => `é€😀${i}`),
      big: "ü".repeat(2 ** 20),
    };
    expect(printed(wide, ["names"])).toBe(printedNatively(wide, "names"));
  });

  it("writes an object field by field and one array item by item exactly as it prints the whole object", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fieldName, fc.jsonValue(), { maxKeys: 4 }),
        fc.array(fc.jsonValue(), { maxLength: 6 }),
        fc.dictionary(fieldName, fc.jsonValue(), { maxKeys: 3 }),
        (before, items, after) => {
          const key = "streamed";
          delete before[key];
          delete after[key];
          for (const k of Object.keys(before)) delete after[k];
          let text = "";
          const stream = new JsonObjectStream((t) => {
            text += t;
          });
          for (const [k, v] of Object.entries(before)) stream.field(k, v);
          stream.beginArray(key);
          for (const item of items) stream.item(item);
          stream.endArray();
          for (const [k, v] of Object.entries(after)) stream.field(k, v);
          stream.end();
          const whole = Object.fromEntries([
            ...Object.entries(before),
            [key, items],
            ...Object.entries(after),
          ]);
          expect(text).toBe(printed(whole));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("hands out a large report in pieces of about 64 KB", () => {
    const tensors = Array.from({ length: 50_000 }, (_, i) => ({ path: [`layer.${i}`], shape: [i, 3] }));
    const chunks: string[] = [];
    const text = printed({ tensors }, ["tensors"], chunks);
    // "{", "  \"tensors\": [", the items, "  ]", "}" and the empty string after the final newline
    expect(text.split("\n")).toHaveLength(50_000 + 5);
    expect(chunks.length).toBeGreaterThan(10);
    for (const chunk of chunks.slice(0, -1)) {
      expect(chunk.length).toBeGreaterThanOrEqual(2 ** 16);
      expect(chunk.length).toBeLessThan(2 ** 16 + 200);
    }
  });

  it("tensor lines whose arrays are all new print as JSON.stringify prints them, past the texts' trial", () => {
    const tensors = Array.from({ length: 3000 }, (_, i) => ({
      path: [`t${i}`],
      dtype: "float32",
      shape: [i, 2],
      stride: [2, 1],
      offset: 0,
      storage: { key: String(i), device: "cpu", sizeBytes: 8 * i },
      requiresGrad: false,
      parameter: false,
      layout: "strided",
    }));
    expect(printed({ tensors }, ["tensors"])).toBe(printedNatively({ tensors }, "tensors"));
  });
});
