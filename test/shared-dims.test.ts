import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findTensors } from "../src/inspect/walk.js";
import { hasTensors } from "../src/reader/checkpoint.js";
import { NodeTree } from "../src/reader/nodeTree.js";
import { openCheckpoint } from "../src/reader/open.js";
import { pyList, pyTuple } from "../src/reader/pickle/value.js";
import { closeSharded, openSharded } from "../src/reader/sharded/index.js";
import { DimsCache } from "../src/reader/torch/dims.js";
import { asIntTuple } from "../src/reader/torch/rebuild.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

describe("sizes and strides shared between tensors", () => {
  it("hands out one array per value, whatever the number of dimensions", () => {
    const dims = new DimsCache();
    const cases = [[], [7], [4, 4], [4, 5], [2, 3, 4], [2, 3, 5], [0, 0]];
    const first = cases.map((c) => dims.intern([...c]));
    const again = cases.map((c) => dims.intern([...c]));
    first.forEach((array, i) => {
      expect(again[i]).toBe(array);
      expect(array).toEqual(cases[i]);
    });
    expect(new Set(first).size).toBe(cases.length);
  });

  it("a list given as a size is copied: a later APPEND to it could not change a tensor's shape", () => {
    const list = pyList([4, 4]);
    const tuple = pyTuple([4, 4]);
    expect(asIntTuple(list)).not.toBe(list.items);
    expect(asIntTuple(list)).toEqual([4, 4]);
    // A tuple cannot change: its items are used as they are.
    expect(asIntTuple(tuple)).toBe(tuple.items);
  });

  it("a real state dict's tensors of one shape share its array, and keep torch's values", () => {
    // nanoGPT's blocks repeat their shapes layer after layer: torch pickles a new tuple for each.
    const checkpoint = openCheckpoint(join(SAMPLES_DIR, "torch2", "nanogpt_ckpt.pt"));
    if (!hasTensors(checkpoint)) throw new Error("expected tensors");
    const tensors = findTensors(checkpoint.root).tensors.map(({ tensor }) => tensor);
    const byText = new Map<string, readonly number[]>();
    let shared = 0;
    for (const { shape } of tensors) {
      const known = byText.get(shape.join(","));
      if (known === undefined) byText.set(shape.join(","), shape);
      else {
        expect(shape).toBe(known);
        shared++;
      }
    }
    expect(shared).toBeGreaterThan(0);
    for (const { shape, stride } of tensors) {
      // Contiguous, as torch.save wrote them: the shared arrays still pair each size with its own stride.
      let step = 1;
      for (let d = shape.length - 1; d >= 0; d--) {
        expect(stride[d]).toBe(step);
        step *= shape[d] as number;
      }
    }
  });

  it("a DCP checkpoint's chunks of one size share its array, each keeping its own offsets", () => {
    // FSDP2 on 4 ranks cuts every parameter into 4 row blocks: the blocks' sizes repeat, their offsets differ.
    const checkpoint = openSharded(new NodeTree(join(SAMPLES_DIR, "sharded", "dcp", "fsdp2_4ranks")));
    if (checkpoint.kind !== "dcp") throw new Error("expected DCP");
    const bySizes = new Map<string, readonly number[]>();
    let shared = 0;
    for (const tensor of checkpoint.tensors)
      for (const chunk of tensor.chunks) {
        const known = bySizes.get(chunk.sizes.join(","));
        if (known === undefined) bySizes.set(chunk.sizes.join(","), chunk.sizes);
        else if (chunk.sizes === known) shared++;
        else throw new Error(`${tensor.fqn}: an equal sizes array that is not shared`);
      }
    expect(shared).toBeGreaterThan(0);
    for (const tensor of checkpoint.tensors) {
      const starts = tensor.chunks.map((c) => c.offsets.join(","));
      expect(new Set(starts).size, tensor.fqn).toBe(starts.length);
    }
    closeSharded(checkpoint);
  });
});
