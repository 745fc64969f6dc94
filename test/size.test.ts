import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { InspectReport } from "../src/inspect/report.js";
import { formatKeyPath } from "../src/inspect/walk.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `inspect`'s Size section against what torch says of the same files (`samples/make_pairs.py`): each storage
 * once by its data_ptr with the names that reach it, each tensor's stride and storage offset, the storage
 * bytes under each top-level key, float64 tensors in a lower-precision model, and the storages torch.save
 * writes after every tensor is `.clone()`d (pytorch/pytorch#53419's advice).
 */
interface SizeTruth {
  file: string;
  fileSize: number;
  storages: Array<{ bytes: number; dtype: string; names: string[] }>;
  tensors: Array<{
    name: string;
    dtype: string;
    shape: number[];
    stride: number[];
    offset: number;
    bytes: number;
  }>;
  clone: { file: string; fileSize: number; storageBytes: number };
  parts: Record<string, number>;
  float64: string[];
}

const SIZE_DIR = join(SAMPLES_DIR, "size");
const truths: SizeTruth[] = existsSync(SIZE_DIR)
  ? readdirSync(SIZE_DIR)
      .filter((name) => name.endsWith(".truth.json"))
      .sort()
      .map((name) => JSON.parse(readFileSync(join(SIZE_DIR, name), "utf8")) as SizeTruth)
  : [];

const ELEMENT = { float32: 4, float64: 8, bfloat16: 2, int64: 8 } as Record<string, number>;

/** The bytes torch's strides and offsets reach in each storage, merged: computed here from torch's numbers. */
function usedBytes(truth: SizeTruth): number {
  let total = 0;
  for (const storage of truth.storages) {
    const extents = truth.tensors
      .filter((t) => storage.names.includes(t.name) && t.shape.every((n) => n > 0))
      .map((t) => {
        const size = ELEMENT[t.dtype] ?? 1;
        const last = t.shape.reduce((sum, n, i) => sum + (n - 1) * (t.stride[i] ?? 0), 0);
        return [t.offset * size, (t.offset + last + 1) * size] as const;
      })
      .sort((a, b) => a[0] - b[0]);
    let end = -1;
    for (const [s, e] of extents) {
      if (s > end) total += e - s;
      else if (e > end) total += e - end;
      end = Math.max(end, e);
    }
  }
  return total;
}

async function inspectJson(file: string): Promise<InspectReport> {
  const { out } = await ckpt("inspect", join(SIZE_DIR, file), "--json");
  return JSON.parse(out) as InspectReport;
}

describe("inspect's size against torch", () => {
  it("has the samples", () => expect(truths.length).toBeGreaterThanOrEqual(9));

  for (const truth of truths) {
    it(`${truth.file}: storages, reach, sharing, clone and float64 as torch has them`, async () => {
      const report = await inspectJson(truth.file);
      const size = report.size;
      expect(size).toBeDefined();
      if (!size) return;
      expect(size.fileBytes).toBe(truth.fileSize);
      expect(size.storageBytes).toBe(truth.storages.reduce((sum, s) => sum + s.bytes, 0));
      expect(size.usedBytes).toBe(usedBytes(truth));
      expect(size.cloneBytes).toBe(truth.clone.storageBytes);
      const shared = truth.storages.filter((s) => s.names.length > 1).map((s) => [...s.names].sort());
      expect(size.shared.map((s) => s.paths.map(formatKeyPath).sort())).toEqual(shared);
      expect(size.float64.map((t) => formatKeyPath(t.path))).toEqual(truth.float64);
      const codes = report.findings.map((f) => f.code);
      expect(codes.includes("storage-mostly-unused")).toBe(size.usedBytes < size.storageBytes);
      expect(codes.includes("storage-shared")).toBe(shared.length > 0);
      expect(codes.includes("float64-in-model")).toBe(truth.float64.length > 0);
    });
  }

  it("counts bytes by part, each storage once, and the optimizer against the model", async () => {
    const truth = truths.find((t) => t.file === "training_mix.pt");
    if (!truth) throw new Error("no training_mix sample");
    const size = (await inspectJson(truth.file)).size;
    const byKey = Object.fromEntries((size?.parts ?? []).map((p) => [p.key ?? "(other)", p.bytes]));
    expect(byKey).toEqual({
      model: truth.parts.model,
      model_ema: truth.parts.model_ema,
      optimizer: truth.parts.optimizer,
      "(other)": truth.parts.prototypes,
    });
    expect(size?.optimizerRelativeToModel).toBeCloseTo(
      (truth.parts.optimizer ?? 0) / (truth.parts.model ?? 1),
      12,
    );
  });

  it("says it in the text: a Size section and a warning for a slice that keeps its whole storage", async () => {
    const { out } = await ckpt("inspect", join(SIZE_DIR, "slice_of_big.pt"));
    expect(out).toContain("\nSize\n");
    expect(out).toMatch(/tensors reach 4\.00 KiB of it \(ckpt repair --compact writes only that/);
    expect(out).toMatch(/warning storage-mostly-unused at anchors: a view of a storage of 131,072 bytes/);
  });
});
