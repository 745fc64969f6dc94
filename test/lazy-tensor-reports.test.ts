import { describe, expect, it } from "vitest";
import { writeJson } from "../src/cli/render/json.js";
import { ItemList } from "../src/inspect/itemList.js";
import { inspectCheckpoint, inspectCheckpointLazily } from "../src/inspect/report.js";
import { isReaderError } from "../src/reader/errors.js";
import { openCheckpoint } from "../src/reader/open.js";
import { findTruths } from "./helpers/samples.js";

const printed = (value: unknown): string => {
  const chunks: string[] = [];
  writeJson(value, (text) => chunks.push(text), ["tensors"]);
  return chunks.join("");
};

/** Every sample torch wrote that ckpt reads (the unreadable ones are other tests' business). */
const samples = findTruths<unknown>()
  .map(({ path }) => path)
  .filter((path) => {
    try {
      openCheckpoint(path).source.close();
      return true;
    } catch (error) {
      if (isReaderError(error)) return false;
      throw error;
    }
  });

describe("an inspect report whose tensors are made as they are written", () => {
  it("prints, for every sample, what the report made whole prints, with the file closed first", () => {
    expect(samples.length).toBeGreaterThan(40);
    let lazy = 0;
    for (const path of samples) {
      const whole = printed(inspectCheckpoint(openCheckpoint(path), path));
      const checkpoint = openCheckpoint(path);
      const report = inspectCheckpointLazily(checkpoint, path);
      // The CLI closes the file before it writes: a report made then may read nothing from it.
      checkpoint.source.close();
      expect(printed(report), path).toBe(whole);
      // A lazy list makes a new report at each ask; one made whole hands out the same.
      const [first, again] = [report.tensors.item(0), report.tensors.item(0)];
      if (report.tensors.length > 0 && first !== again) lazy++;
    }
    expect(lazy).toBeGreaterThan(20);
  });

  it("makes a per-channel quantized tensor's report while the file is open (its scales are read)", () => {
    const path = samples.find((p) => p.endsWith("torch2/quantized.pt"));
    if (!path) throw new Error("quantized.pt sample missing");
    const checkpoint = openCheckpoint(path);
    const report = inspectCheckpointLazily(checkpoint, path);
    checkpoint.source.close();
    const perChannel = report.tensors.toJSON().filter((t) => t.quantization && "scales" in t.quantization);
    expect(perChannel.length).toBeGreaterThan(0);
    const [first, again] = [report.tensors.item(0), report.tensors.item(0)];
    expect(first).toBe(again);
  });

  it("JSON.stringify of a list is that of its items; writeJson writes it as it writes the array", () => {
    const list = new ItemList(2, (i) => ({ i }));
    expect(JSON.stringify({ tensors: list })).toBe('{"tensors":[{"i":0},{"i":1}]}');
    expect(printed({ tensors: list, other: list })).toBe(
      '{\n  "tensors": [\n    {"i":0},\n    {"i":1}\n  ],\n  "other": [\n    {\n      "i": 0\n    },\n    {\n      "i": 1\n    }\n  ]\n}\n',
    );
    expect(printed({ tensors: list })).toBe(printed({ tensors: list.toJSON() }));
  });
});
