import { relative } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type InspectReport,
  inspectCheckpoint,
  type TensorDescription,
  type TensorReport,
} from "../src/inspect/report.js";
import { openCheckpoint } from "../src/reader/open.js";
import { findTruths, SAMPLES_DIR } from "./helpers/samples.js";

/**
 * The ground truth: for every sample written by real torch (1.13 and 2.x), what `torch.load` itself saw,
 * recorded by `samples/make_samples.py`. ckpt must agree on every tensor, field by field.
 */

interface TruthTensor {
  path: Array<string | number>;
  dtype: string;
  shape: number[];
  stride: number[] | null;
  offset: number | null;
  storage: { key?: string; device: string; sizeBytes: number } | null;
  storageGroup: number | null;
  requiresGrad: boolean;
  parameter: boolean;
  layout: string;
  sha256: string;
  quantization?: {
    scheme: string;
    scale?: number;
    zeroPoint?: number;
    axis?: number;
    scales?: number[];
    zeroPoints?: number[];
  };
  sparse?: Record<"indices" | "values", TruthPart>;
}

interface TruthPart {
  dtype: string;
  shape: number[];
  stride: number[];
  offset: number;
  sha256: string;
  storage?: { key: string; device: string; sizeBytes: number };
}

/** A quantized module's packed weight and bias, as torch unpacks them (`_weight_bias()`, `__getstate__`). */
interface TruthPacked {
  /** Where torch.jit.load / torch.load puts the packed object: attribute path, and for eager saves vars() path. */
  location: string;
  /** "attribute": a dotted attribute path; "state-dict key": one key of the saved state dict. */
  locationKind: string;
  varsPath?: string[];
  weight: {
    dtype: string;
    shape: number[];
    qscheme: string;
    scale?: number;
    zeroPoint?: number;
    axis?: number;
    scales?: number[];
    zeroPoints?: number[];
    intReprSha256: string;
  };
  bias: { dtype: string; shape: number[]; sha256: string } | null;
}

interface Truth {
  file: string;
  /** "text": neither a checkpoint nor a pointer (a note): ckpt must say not-a-checkpoint. */
  format: string;
  generator: { torch: string };
  tensors: TruthTensor[];
  pointer?: { content: string; target: string };
  packedParams?: TruthPacked[];
}

const samples = findTruths<Truth>();

function inspectSample(file: string): InspectReport {
  const checkpoint = openCheckpoint(file);
  try {
    return inspectCheckpoint(checkpoint, file, { hash: true });
  } finally {
    checkpoint.source.close();
  }
}

const pathKey = (path: Array<string | number>) => JSON.stringify(path);

function expectPart(actual: TensorDescription | undefined, expected: TruthPart, where: string) {
  expect(actual, where).toBeDefined();
  expect(
    {
      dtype: actual?.dtype,
      shape: actual?.shape,
      stride: actual?.stride,
      offset: actual?.offset,
      sha256: actual?.sha256,
    },
    where,
  ).toEqual({
    dtype: expected.dtype,
    shape: expected.shape,
    stride: expected.stride,
    offset: expected.offset,
    sha256: expected.sha256,
  });
  if (expected.storage) expect(actual?.storage, where).toEqual(expected.storage);
}

const startsWith = (path: ReadonlyArray<string | number>, prefix: readonly string[]) =>
  prefix.every((segment, i) => path[i] === segment);

/**
 * A packed object's weight and bias are listed, with torch's values, below the module that holds them: at the
 * packed object's own path (Linear's LinearPackedParamsBase), or at its module's when the module pickles them
 * in its own state (quantized Conv's `__getstate__`). Returns the tensors it matched.
 */
function expectPacked(report: InspectReport, packed: TruthPacked, label: string): TensorReport[] {
  const location =
    packed.varsPath ?? (packed.locationKind === "attribute" ? packed.location.split(".") : [packed.location]);
  const holders = [location, location.slice(0, -1)];
  const below = report.tensors.filter((t) => holders.some((h) => startsWith(t.path, h)));
  const where = `${label} packed ${packed.location}`;
  const weight = below.find((t) => t.sha256 === packed.weight.intReprSha256);
  expect(weight, `${where}: weight`).toBeDefined();
  expect(weight?.dtype, where).toBe(packed.weight.dtype);
  expect(weight?.shape, where).toEqual(packed.weight.shape);
  const q = weight?.quantization as Record<string, unknown> | undefined;
  expect(q?.scheme, where).toBe(packed.weight.qscheme);
  if (packed.weight.scale !== undefined)
    expect(q?.scale as number, where).toBeCloseTo(packed.weight.scale, 12);
  if (packed.weight.scales !== undefined) expect(q?.scales, where).toEqual(packed.weight.scales);
  const matched = weight ? [weight] : [];
  if (packed.bias) {
    const bias = below.find((t) => t.sha256 === packed.bias?.sha256);
    expect(bias, `${where}: bias`).toBeDefined();
    expect(bias?.shape, where).toEqual(packed.bias.shape);
    if (bias) matched.push(bias);
  }
  return matched;
}

describe("ckpt agrees with torch.load on every sample", () => {
  it("has samples from both torch versions", () => {
    expect(samples.filter((s) => s.truth.generator.torch.startsWith("1.")).length).toBeGreaterThan(10);
    expect(samples.filter((s) => s.truth.generator.torch.startsWith("2.")).length).toBeGreaterThan(10);
  });

  for (const { path: file, truth } of samples) {
    const label = `${relative(SAMPLES_DIR, file)} (torch ${truth.generator.torch})`;

    it(label, () => {
      if (truth.format === "text") {
        expect(() => inspectSample(file)).toThrow(expect.objectContaining({ code: "not-a-checkpoint" }));
        return;
      }
      const report = inspectSample(file);
      expect(report.format).toBe(truth.format);
      if (truth.pointer) {
        expect(report.pointer?.content).toBe(truth.pointer.content);
        expect(report.pointer?.target.endsWith(truth.pointer.target)).toBe(true);
        expect(report.pointer?.targetExists).toBe(true);
        return;
      }

      const byPath = new Map(report.tensors.map((t) => [pathKey(t.path), t]));
      // Storage keys must partition tensors exactly as torch's storages do.
      const groupToKey = new Map<number, string>();
      const keyToGroup = new Map<string, number>();

      for (const expected of truth.tensors) {
        const where = `${label} ${pathKey(expected.path)}`;
        const actual = byPath.get(pathKey(expected.path));
        expect(actual, `${where} is missing from ckpt's tensors`).toBeDefined();
        if (!actual) continue;
        expect(actual.dtype, where).toBe(expected.dtype);
        expect(actual.shape, where).toEqual(expected.shape);
        expect(actual.layout, where).toBe(expected.layout);
        expect(actual.requiresGrad, where).toBe(expected.requiresGrad);
        // torch.jit.load returns plain tensors, so for TorchScript "parameter" is not an object property.
        if (truth.format !== "torchscript") expect(actual.parameter, where).toBe(expected.parameter);

        if (expected.layout === "sparse_coo" && expected.sparse) {
          expectPart(actual.sparse?.indices, expected.sparse.indices, `${where} indices`);
          expectPart(actual.sparse?.values, expected.sparse.values, `${where} values`);
          continue;
        }
        expect(actual.stride, where).toEqual(expected.stride);
        expect(actual.offset, where).toBe(expected.offset);
        expect(actual.sha256, where).toBe(expected.sha256);
        expect(actual.storage?.device, where).toBe(expected.storage?.device);
        expect(actual.storage?.sizeBytes, where).toBe(expected.storage?.sizeBytes);
        if (expected.storage?.key !== undefined)
          expect(actual.storage?.key, where).toBe(expected.storage.key);

        const key = actual.storage?.key as string;
        const group = expected.storageGroup as number;
        expect(groupToKey.get(group) ?? key, `${where}: torch shares this storage with another tensor`).toBe(
          key,
        );
        expect(
          keyToGroup.get(key) ?? group,
          `${where}: ckpt shares storage ${key} where torch does not`,
        ).toBe(group);
        groupToKey.set(group, key);
        keyToGroup.set(key, group);

        if (expected.quantization) {
          const q = actual.quantization as Record<string, unknown> | undefined;
          expect(q?.scheme, where).toBe(expected.quantization.scheme);
          if (expected.quantization.scale !== undefined) {
            expect(q?.scale as number, where).toBeCloseTo(expected.quantization.scale, 12);
            expect(q?.zeroPoint, where).toBe(expected.quantization.zeroPoint);
          } else {
            expect(q?.axis, where).toBe(expected.quantization.axis);
            expect(q?.scales, where).toEqual(expected.quantization.scales);
            expect(q?.zeroPoints, where).toEqual(expected.quantization.zeroPoints);
          }
        }
      }
      const packed = new Set(truth.packedParams?.flatMap((p) => expectPacked(report, p, label)) ?? []);
      // Nothing extra either, except what the truth walk cannot express (dict keys that are not str or int,
      // the weights inside packed parameters).
      const truthPaths = new Set(truth.tensors.map((t) => pathKey(t.path)));
      const extra = report.tensors.filter((t) => !truthPaths.has(pathKey(t.path)) && !packed.has(t));
      expect(
        extra.map((t) => t.path).filter((p) => p.every((s) => typeof s === "number" || !s.startsWith("("))),
        label,
      ).toEqual([]);
    });
  }
});
