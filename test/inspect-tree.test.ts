import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import type { TreeNode } from "../src/inspect/tree.js";
import { openCheckpoint } from "../src/reader/open.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

function treeOf(sample: string): TreeNode | null {
  const file = join(SAMPLES_DIR, sample);
  const checkpoint = openCheckpoint(file);
  try {
    return inspectCheckpoint(checkpoint, file).tree;
  } finally {
    checkpoint.source.close();
  }
}

function entry(node: TreeNode | null, key: string | number): TreeNode | undefined {
  if (node?.type !== "dict") return undefined;
  return node.entries.find((e) => e.key === key)?.value;
}

describe("the tree outline", () => {
  it("collapses a state dict into one summary and keeps the counter visible", () => {
    for (const version of ["torch1", "torch2"]) {
      const tree = treeOf(`${version}/training_checkpoint.pth`);
      expect(entry(tree, "model")).toEqual({
        type: "tensors",
        container: "dict",
        className: "collections.OrderedDict",
        tensorCount: 9,
        elementCount: 252,
        dtypes: ["float32", "int64"],
      });
      expect(entry(tree, "iteration")).toEqual({ type: "int", value: 59 });
    }
  });

  it("describes numpy arrays and scalars, big ints and Python floats", () => {
    for (const version of ["torch1", "torch2"]) {
      const tree = treeOf(`${version}/python_values.pt`);
      expect(entry(tree, "np_f32")).toEqual({ type: "ndarray", dtype: "float32", shape: [2, 3] });
      expect(entry(tree, "np_f64_scalar")).toEqual({ type: "numpy-scalar", dtype: "float64", value: 2.5 });
      expect(entry(tree, "np_i64_scalar")).toEqual({ type: "numpy-scalar", dtype: "int64", value: "-7" });
      expect(entry(tree, "big_neg")).toEqual({ type: "int", value: "-1180591620717411303424" });
      const floats = entry(tree, "floats");
      expect(
        floats?.type === "list" && floats.items.map((i) => (i.type === "float" ? i.value : null)),
      ).toEqual([1.5, -0, "nan", "inf", "-inf"]);
    }
  });

  it("shows a whole pickled module as objects with their classes, never importing them", () => {
    const tree = treeOf("torch2/whole_module.pt");
    expect(tree).toMatchObject({ type: "object", className: "__main__.TinyCNN" });
  });
});
