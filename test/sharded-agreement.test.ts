import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tensorSha256 } from "../src/inspect/tensorValues.js";
import { findTensors } from "../src/inspect/walk.js";
import { hasTensors } from "../src/reader/checkpoint.js";
import { NodeTree } from "../src/reader/nodeTree.js";
import { openCheckpoint } from "../src/reader/open.js";
import { dictGet, isBoxed, type PyValue } from "../src/reader/pickle/value.js";
import {
  closeSharded,
  type DcpCheckpoint,
  type DeepSpeedCheckpoint,
  type HfIndexCheckpoint,
  logicalTensorBytes,
  openSharded,
  readDcpBytesItem,
  type ShardedCheckpoint,
  type ShardedFinding,
  shardedTensors,
} from "../src/reader/sharded/index.js";
import { findShardedTruths, hashLogical, summarize } from "./helpers/sharded.js";

/**
 * The ground truth for sharded checkpoints: for every sample directory `samples/make_sharded.py` wrote, what
 * torch itself (dcp_to_torch_save), zero_to_fp32's logic and the shards' own loaders make of it. ckpt must agree
 * on every logical tensor (name, shape, dtype, chunks), on the sha256 of every consolidated tensor, on the
 * non-tensor items' values and the step counter, and report each damaged variant's damage.
 */

interface TruthChunk {
  offsets: number[];
  sizes: number[];
  file: string | null;
  offset?: number;
  length?: number;
  transformDescriptors?: string[];
}

interface TruthTensor {
  name: string;
  shape: number[];
  dtype: string;
  sha256: string | null;
  requiresGrad?: boolean;
  chunks?: TruthChunk[];
  // DeepSpeed
  source?: string;
  group?: number;
  offset?: number;
  numel?: number;
  segments?: Array<{ rank: number; group: number; offset: number; numel: number }>;
  partitionedNumel?: number;
  padding?: number;
  target?: string;
  // HF
  shard?: string;
}

interface Truth {
  schema: string;
  kind: "dcp" | "deepspeed" | "hf-index";
  producer: string;
  files: Array<{ name: string; size: number }>;
  tensors: TruthTensor[];
  bytes?: Array<{
    name: string;
    file: string | null;
    offset?: number;
    length?: number;
    loaded: {
      type: string;
      value?: unknown;
      /** Tensors inside the loaded value, by key path, hashed by torch. */
      tensors?: Array<{ path: Array<string | number>; dtype: string; shape: number[]; sha256: string }>;
    };
  }>;
  metadata?: {
    version: string | null;
    storageMeta: { checkpointId: string | null; saveId: string | null; modules: string[] } | null;
    plannerData: Record<string, Array<string | number>> | null;
    classes: string[];
  };
  step: { name: string; value: number } | null;
  deepspeed?: {
    latest: string | null;
    tags: string[];
    tag: string | null;
    stage?: number;
    worldSize?: number;
    optimFiles?: string[];
    modelFiles?: string[];
    recoveryScript: boolean;
    groups?: Array<{ index: number; partitions: Array<{ rank: number; numel: number; dtype: string }> }>;
    dsVersion?: string;
    globalSteps?: number;
  };
  hf?: {
    index: string;
    metadata: { total_size: number } & Record<string, unknown>;
    weightMap: Record<string, string>;
    shards: Array<{ file: string; present: boolean; tensors: string[] }>;
  };
  damage?: Record<string, unknown> & { kind: string };
  /** zero_to_fp32 refused the directory: the truth then lists no tensors (ckpt still describes the layout). */
  zeroToFp32?: { outcome: { exception: string; message: string } };
}

const samples = findShardedTruths<Truth>();
const opened: ShardedCheckpoint[] = [];
afterAll(() => {
  for (const checkpoint of opened) closeSharded(checkpoint);
});

function open(dir: string): ShardedCheckpoint {
  const checkpoint = openSharded(new NodeTree(dir));
  opened.push(checkpoint);
  return checkpoint;
}

/** The finding each kind of damage must produce (the truth says what was damaged; ckpt must name it). */
function expectedFindings(truth: Truth): Array<Partial<ShardedFinding>> {
  const damage = truth.damage;
  if (!damage) return [];
  switch (`${truth.kind}/${damage.kind}`) {
    case "dcp/rank-file-missing":
      return [{ code: "file-missing", file: damage.file as string, rank: damage.rank as number }];
    case "dcp/file-truncated":
      return [
        {
          code: "file-too-short",
          file: damage.file as string,
          rank: damage.rank as number,
          size: damage.size as number,
        },
      ];
    case "dcp/metadata-missing":
      return [{ code: "metadata-missing", dataFiles: damage.dataFiles as string[] }];
    case "deepspeed/rank-file-missing":
      return [
        {
          code: "rank-file-missing",
          file: (damage.file as string).split("/").pop() as string,
          rank: damage.rank as number,
          role: "optim-states",
        },
        { code: "world-size-mismatch", expected: 2, found: 1 },
      ];
    case "hf-index/shard-missing":
      return [{ code: "shard-missing", file: damage.file as string, tensors: damage.tensors as string[] }];
    case "hf-index/index-key-not-in-shard":
      return [{ code: "tensor-missing", name: damage.name as string, shard: damage.shard as string }];
    case "dcp/malicious-bytes-item":
      // Complete as a checkpoint: the danger is for the scanner (sharded-commands.test.ts), not completeness.
      return [];
    default:
      throw new Error(`no expectation for damage ${damage.kind}`);
  }
}

/** The findings a healthy sample may have: none that says it cannot be loaded, except what its producer notes. */
function allowedFindings(truth: Truth): ReadonlyArray<ShardedFinding["code"]> {
  return truth.metadata && JSON.stringify(truth.tensors).includes("transformDescriptors")
    ? ["transform-unsupported"]
    : [];
}

function expectDcp(label: string, checkpoint: DcpCheckpoint, truth: Truth) {
  truth.tensors.forEach((expected, i) => {
    const actual = checkpoint.tensors[i];
    const where = `${label} ${expected.name}`;
    expect(actual?.properties.requiresGrad, where).toBe(expected.requiresGrad);
    const chunks = actual?.chunks.map((c) => ({
      offsets: c.offsets,
      sizes: c.sizes,
      file: c.storage?.relativePath ?? null,
      ...(c.storage ? { offset: c.storage.offset, length: c.storage.length } : {}),
      ...(c.storage?.transformDescriptors ? { transformDescriptors: c.storage.transformDescriptors } : {}),
    }));
    expect(chunks, where).toEqual(expected.chunks);
  });
  const metadata = truth.metadata;
  if (metadata && checkpoint.metadata) {
    expect(checkpoint.metadata.version, label).toBe(metadata.version);
    expect(`${checkpoint.metadata.classModule}.Metadata`, label).toBe(metadata.classes[0]);
    expect(
      checkpoint.metadata.storageMeta && {
        checkpointId: checkpoint.metadata.storageMeta.checkpointId,
        saveId: checkpoint.metadata.storageMeta.saveId,
        modules: checkpoint.metadata.storageMeta.modules,
      },
      label,
    ).toEqual(
      metadata.storageMeta && {
        checkpointId: metadata.storageMeta.checkpointId,
        saveId: metadata.storageMeta.saveId,
        modules: metadata.storageMeta.modules,
      },
    );
    expect(
      checkpoint.metadata.plannerData && Object.fromEntries(checkpoint.metadata.plannerData),
      label,
    ).toEqual(metadata.plannerData);
  }
  const bytes = truth.bytes ?? [];
  expect(checkpoint.bytesItems.map((b) => b.fqn).sort(), label).toEqual(bytes.map((b) => b.name).sort());
  for (const expected of bytes) {
    const item = checkpoint.bytesItems.find((b) => b.fqn === expected.name);
    const where = `${label} ${expected.name}`;
    expect(
      { file: item?.storage?.relativePath, offset: item?.storage?.offset, length: item?.storage?.length },
      where,
    ).toEqual({
      file: expected.file,
      offset: expected.offset,
      length: expected.length,
    });
    if (!item || truth.damage) continue;
    if (item.storage?.transformDescriptors) {
      // Written through a stream extension ckpt cannot undo: it says so rather than reading raw bytes.
      expect(() => readDcpBytesItem(checkpoint, item), where).toThrow(
        expect.objectContaining({ code: "unsupported-format" }),
      );
      continue;
    }
    const value = readDcpBytesItem(checkpoint, item);
    expect(value.format, where).toBe("torch-zip");
    const summary = summarize(value.format === "torch-zip" ? value.root : null);
    expect(summary.type, where).toBe(expected.loaded.type);
    if ("value" in expected.loaded) expect(summary.value, where).toEqual(expected.loaded.value);
    expectNestedTensors(where, value, expected.loaded.tensors ?? []);
  }
}

/** Tensors inside a bytes item: the same paths, dtypes, shapes and sha256 as torch.load of the item gives. */
function expectNestedTensors(
  where: string,
  value: ReturnType<typeof readDcpBytesItem>,
  expected: NonNullable<NonNullable<Truth["bytes"]>[number]["loaded"]["tensors"]>,
) {
  const found = "root" in value ? findTensors(value.root).tensors : [];
  expect(
    found.map((t) => ({ path: t.path, dtype: t.tensor.dtype, shape: t.tensor.shape })),
    where,
  ).toEqual(expected.map(({ path, dtype, shape }) => ({ path, dtype, shape })));
  if (!hasTensors(value)) return;
  found.forEach(({ tensor }, i) => {
    expect(tensorSha256(value, tensor), `${where} [${i}]`).toBe(expected[i]?.sha256);
  });
}

function expectDeepSpeed(label: string, checkpoint: DeepSpeedCheckpoint, truth: Truth) {
  const ds = truth.deepspeed;
  expect(ds, label).toBeDefined();
  if (!ds) return;
  expect(
    {
      latest: checkpoint.latest,
      tags: checkpoint.tags,
      tag: checkpoint.tag,
      recoveryScript: checkpoint.recoveryScript,
    },
    label,
  ).toEqual({
    latest: ds.latest,
    tags: ds.tags,
    tag: ds.tag,
    recoveryScript: ds.recoveryScript,
  });
  expect(
    checkpoint.optimFiles.map((f) => f.name),
    label,
  ).toEqual(ds.optimFiles);
  expect(
    checkpoint.modelFiles.map((f) => f.name),
    label,
  ).toEqual(ds.modelFiles);
  expect({ dsVersion: checkpoint.dsVersion, globalSteps: checkpoint.globalSteps }, label).toEqual({
    dsVersion: ds.dsVersion,
    globalSteps: ds.globalSteps,
  });
  if (ds.stage === undefined) return; // zero_to_fp32 refused it: the findings say why
  expect({ stage: checkpoint.stage, worldSize: checkpoint.worldSize }, label).toEqual({
    stage: ds.stage,
    worldSize: ds.worldSize,
  });
  expect(checkpoint.groups, label).toEqual(ds.groups);
  truth.tensors.forEach((expected, i) => {
    const actual = checkpoint.tensors[i];
    const where = `${label} ${expected.name}`;
    expect(actual?.source, where).toBe(expected.source);
    if (actual?.source === "param") {
      expect(
        { group: actual.group, offset: actual.offset, numel: actual.numel, segments: actual.segments },
        where,
      ).toEqual({
        group: expected.group,
        offset: expected.offset,
        numel: expected.numel,
        segments: expected.segments,
      });
      if (expected.partitionedNumel !== undefined) {
        expect({ partitionedNumel: actual.partitionedNumel, padding: actual.padding }, where).toEqual({
          partitionedNumel: expected.partitionedNumel,
          padding: expected.padding,
        });
      }
    }
    if (actual?.source === "shared") expect(actual.target, where).toBe(expected.target);
  });
}

function expectHf(label: string, checkpoint: HfIndexCheckpoint, truth: Truth) {
  const hf = truth.hf;
  expect(hf, label).toBeDefined();
  if (!hf) return;
  expect(checkpoint.indexFile, label).toBe(hf.index);
  expect(checkpoint.totalSize, label).toBe(hf.metadata.total_size);
  expect(Object.fromEntries(checkpoint.weightMap), label).toEqual(hf.weightMap);
  expect(
    checkpoint.shards.map((s) => ({ file: s.file, present: s.present, tensors: [...s.listed].sort() })),
    label,
  ).toEqual(hf.shards);
  const shards = new Map(checkpoint.tensors.map((t) => [t.name, t.shard]));
  for (const expected of truth.tensors)
    expect(shards.get(expected.name), `${label} ${expected.name}`).toBe(expected.shard);
}

/** The step counter where the truth says it is: a bytes item, a 0-d tensor, Lightning's meta.pt, global_steps. */
function stepOf(dir: string, checkpoint: ShardedCheckpoint, name: string): number | undefined {
  if (checkpoint.kind === "deepspeed") return checkpoint.globalSteps ?? undefined;
  if (checkpoint.kind !== "dcp") return undefined;
  if (name === "meta.pt global_step") {
    const meta = openCheckpoint(join(dir, "meta.pt"));
    try {
      const root = meta.format === "torch-zip" ? meta.root : null;
      const value = isBoxed(root, "dict") ? dictGet(root, "global_step") : undefined;
      return typeof value === "number" ? value : undefined;
    } finally {
      meta.source.close();
    }
  }
  const item = checkpoint.bytesItems.find((b) => b.fqn === name);
  if (item) {
    const value = readDcpBytesItem(checkpoint, item);
    return hasTensors(value) && typeof (value.root as PyValue) === "number"
      ? (value.root as number)
      : undefined;
  }
  const tensor = checkpoint.tensors.find((t) => t.fqn === name);
  if (!tensor) return undefined;
  const bytes = Buffer.concat([...logicalTensorBytes(checkpoint, name)].map((c) => Buffer.from(c)));
  return tensor.dtype === "int64" ? Number(bytes.readBigInt64LE(0)) : bytes.readInt32LE(0);
}

describe("sharded checkpoints agree with torch's own consolidation", () => {
  it("has samples of every kind, healthy and damaged", () => {
    const kinds = new Set(samples.map((s) => s.truth.kind));
    expect(kinds).toEqual(new Set(["dcp", "deepspeed", "hf-index"]));
    expect(samples.filter((s) => s.truth.damage).length).toBeGreaterThanOrEqual(6);
    expect(samples.length).toBeGreaterThanOrEqual(20);
  });

  for (const { dir, name, truth } of samples) {
    it(name, () => {
      expect(truth.schema).toBe("ckpt.sharded-truth/1");
      const checkpoint = open(dir);
      expect(checkpoint.kind).toBe(truth.kind);
      // Every logical tensor, with its global shape and dtype (an index lists them shard by shard).
      const logical = shardedTensors(checkpoint).map(({ name, shape, dtype }) => ({ name, shape, dtype }));
      const expected = truth.tensors.map(({ name, shape, dtype }) => ({ name, shape, dtype }));
      const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : 1);
      if (checkpoint.kind === "hf-index") {
        logical.sort(byName);
        expected.sort(byName);
      }
      if (!truth.zeroToFp32) expect(logical, name).toEqual(expected);
      if (checkpoint.kind === "dcp") expectDcp(name, checkpoint, truth);
      else if (checkpoint.kind === "deepspeed") expectDeepSpeed(name, checkpoint, truth);
      else expectHf(name, checkpoint, truth);

      const damage = expectedFindings(truth);
      for (const finding of damage)
        expect(checkpoint.findings, name).toContainEqual(expect.objectContaining(finding));
      if (damage.length === 0) {
        const allowed = allowedFindings(truth);
        const serious = checkpoint.findings.filter((f) => f.severity !== "info" && !allowed.includes(f.code));
        expect(serious, name).toEqual([]);
      }

      const transformed = allowedFindings(truth).includes("transform-unsupported");
      for (const tensor of truth.tensors) {
        if (tensor.sha256 === null) continue;
        const where = `${name} ${tensor.name}`;
        if (transformed) {
          expect(() => hashLogical(checkpoint, tensor.name), where).toThrow(
            expect.objectContaining({ code: "unsupported-format" }),
          );
        } else expect(hashLogical(checkpoint, tensor.name).sha256, where).toBe(tensor.sha256);
      }
      if (truth.step && !transformed)
        expect(stepOf(dir, checkpoint, truth.step.name), `${name} step`).toBe(truth.step.value);
    });
  }
});
