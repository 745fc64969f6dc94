import { describe, expect, it } from "vitest";
import type { TorchStorage } from "../src/reader/pickle/value.js";
import { StorageTable } from "../src/reader/torch/idMap.js";

const storage = (key: string): TorchStorage => ({
  kind: "storage",
  key,
  dtype: "float32",
  device: "cpu",
  numel: 1,
  sizeBytes: 4,
});

describe("the storages a pickle names", () => {
  it("keeps each id apart, as a Map of strings would, in the order they were first named", () => {
    // Numbers torch writes, and ids that only look like them: a leading zero, a sign, too many digits.
    const ids = ["2", "0", "01", "1", "-1", "12345678", "1234567", "a/b", "", "9/3"];
    const table = new StorageTable();
    const map = new Map<string, TorchStorage>();
    for (const id of ids) {
      const s = storage(id);
      table.add(id, s);
      map.set(id, s);
    }
    expect(table.size).toBe(map.size);
    for (const id of ids) expect(table.get(id)).toBe(map.get(id));
    for (const id of ["3", "00", "10", "123456", "x"]) expect(table.get(id)).toBeUndefined();
    expect([...table.keys()]).toEqual([...map.keys()]);
    expect([...table.values()]).toEqual([...map.values()]);
    expect([...table]).toEqual([...map]);
  });
});
