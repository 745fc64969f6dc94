import { dirname, join } from "node:path";
import type { PartSummary } from "../../inspect/parts.js";
import { lookup } from "../../inspect/resume/lookup.js";
import { findTensors } from "../../inspect/walk.js";
import { ReaderError } from "../../reader/errors.js";
import { openShardedPath } from "../../reader/nodeTree.js";
import type { PyValue, TorchTensor } from "../../reader/pickle/value.js";
import {
  assertShardedUnchanged,
  closeSharded,
  type DcpCheckpoint,
  type DeepSpeedCheckpoint,
  deepSpeedParsed,
  type HfIndexCheckpoint,
  type HfTensor,
  hfShardTensor,
  type LogicalTensor,
  logicalTensorBytes,
  readDcpBytesItem,
  type ShardedCheckpoint,
  shardedTensors,
} from "../../reader/sharded/index.js";
import { elementCount } from "../../reader/tensorData.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { joinPath } from "../../reader/tree.js";
import { dcpNestedTensors, nestedConvertTensor, nestedLogical } from "./dcpNested.js";
import { metadataValue, type SelectOptions } from "./select.js";
import { refuseDamaged } from "./shardedDamage.js";
import { selectSharded } from "./shardedSelect.js";
import type { ConvertSource, SourceRequest } from "./source.js";
import { type ConvertTensor, checkpointTensors, refusalText } from "./tensors.js";

/**
 * A sharded checkpoint (DCP, DeepSpeed, Hugging Face index) as the input of a conversion: every chosen logical
 * tensor streams through `logicalTensorBytes`, assembled from its chunks or partitions in buffers of
 * `chunkBytes`, so memory stays one buffer however large the tensor. Damaged checkpoints are refused before
 * anything is written.
 */

/** Buffer size for assembling a tensor: large enough that each write is one system call of a few MiB. */
const CHUNK_BYTES = 8 * 1024 * 1024;

/** The files the checkpoint is made of, and their bytes. */
function checkpointSize(checkpoint: ShardedCheckpoint): number {
  const sizeOf = (path: string) => checkpoint.tree.stat(path)?.size ?? 0;
  switch (checkpoint.kind) {
    case "dcp":
      return (
        checkpoint.files.reduce((n, f) => n + f.size, 0) +
        (checkpoint.metadataFile ? sizeOf(joinPath(checkpoint.dir, checkpoint.metadataFile)) : 0)
      );
    case "deepspeed":
      return [...checkpoint.modelFiles, ...checkpoint.optimFiles].reduce((n, f) => n + f.size, 0);
    case "hf-index":
      return (
        checkpoint.shards.reduce((n, s) => n + s.size, 0) +
        sizeOf(joinPath(checkpoint.dir, checkpoint.indexFile))
      );
  }
}

function logicalTensor(
  checkpoint: ShardedCheckpoint,
  ties: ReadonlyMap<string, string>,
  logical: LogicalTensor,
  name: string,
  request: SourceRequest,
): ConvertTensor {
  if (!request.canHold(logical.dtype)) {
    throw new ReaderError(
      "convert-refused",
      refusalText(name, { kind: "dtype", dtype: logical.dtype }, request.target),
    );
  }
  const byteLength = elementCount(logical.shape) * elementSize(logical.dtype);
  return {
    name,
    dtype: logical.dtype,
    shape: logical.shape,
    byteLength,
    bytes: () => logicalTensorBytes(checkpoint, logical.name, { chunkBytes: CHUNK_BYTES, inBulk: true }),
    region: tiedRegion(ties, logical.name, byteLength),
  };
}

/** DeepSpeed's tied names (`shared_params`): name -> the name holding the data, for both ends of each tie. */
function tiesOf(checkpoint: ShardedCheckpoint): Map<string, string> {
  const ties = new Map<string, string>();
  if (checkpoint.kind !== "deepspeed") return ties;
  for (const t of checkpoint.tensors) {
    if (t.source !== "shared") continue;
    ties.set(t.name, t.target);
    ties.set(t.target, t.target);
  }
  return ties;
}

/** zero_to_fp32 makes a tied name the same tensor as its target: both read one region, so one is written. */
function tiedRegion(
  ties: ReadonlyMap<string, string>,
  name: string,
  byteLength: number,
): ConvertTensor["region"] {
  const owner = ties.get(name);
  if (owner === undefined) return undefined;
  return { storage: `tied:${owner}`, storageBytes: byteLength, start: 0, end: byteLength, view: "whole" };
}

/** A Hugging Face shard's tensor, read by that shard's own reader (so a view or a tie in a .bin shard is kept). */
function hfTensor(
  checkpoint: HfIndexCheckpoint,
  entry: HfTensor | undefined,
  name: string,
  request: SourceRequest,
): ConvertTensor {
  if (!entry) throw new ReaderError("storage-missing", `no shard holds ${name}`);
  const { checkpoint: shard, tensor } = hfShardTensor(checkpoint, entry);
  const [converted] = checkpointTensors(shard, [{ name, tensor, path: [] }], request.target, request.canHold);
  const out = converted as ConvertTensor;
  // Storage keys are per file: two shards' "0" records are different storages.
  return out.region
    ? { ...out, region: { ...out.region, storage: `${entry.shard}/${out.region.storage}` } }
    : out;
}

/** `--metadata KEY`: a DCP bytes item, or a value of DeepSpeed's model states (`global_steps`). */
function metadataOf(checkpoint: ShardedCheckpoint, keys: readonly string[]): Map<string, string> {
  const metadata = new Map<string, string>();
  for (const key of keys) {
    switch (checkpoint.kind) {
      case "dcp": {
        const item = checkpoint.bytesItems.find((b) => b.fqn === key);
        if (!item) {
          const tensor = checkpoint.tensors.some((t) => t.fqn === key);
          throw new ReaderError(
            "convert-refused",
            `--metadata ${key}: ${tensor ? "it is a tensor, not a Python value" : "the checkpoint has no such value"}`,
          );
        }
        const value = readDcpBytesItem(checkpoint, item);
        metadata.set(key, metadataValue(key, value.format === "torch-zip" ? value.root : undefined));
        break;
      }
      case "deepspeed": {
        const model = deepSpeedParsed(checkpoint).model;
        metadata.set(key, metadataValue(key, lookup(model?.checkpoint.root, key.split("."))));
        break;
      }
      case "hf-index":
        throw new ReaderError(
          "convert-refused",
          `--metadata ${key}: an index of shards holds tensors only, no other values`,
        );
    }
  }
  return metadata;
}

/**
 * DeepSpeed: the optimizer's own states (Adam moments), not converted: in the ranks' optimizer files under
 * ZeRO (the fp32 master partitions aside, which are the converted weights), in the model states' `optimizer`
 * without it.
 */
function deepSpeedLeftOut(checkpoint: DeepSpeedCheckpoint): PartSummary[] {
  const parsed = deepSpeedParsed(checkpoint);
  const sizes = { tensors: 0, elements: 0, bytes: 0 };
  const count = (root: PyValue | undefined, skip: ReadonlySet<TorchTensor>) => {
    for (const { tensor } of findTensors(root ?? null).tensors) {
      if (skip.has(tensor)) continue;
      const n = elementCount(tensor.shape);
      sizes.tensors++;
      sizes.elements += n;
      sizes.bytes += n * elementSize(tensor.dtype);
    }
  };
  if (checkpoint.stage === 0) {
    count(lookup(parsed.model?.checkpoint.root, ["optimizer"]), new Set());
    return sizes.tensors === 0 ? [] : [{ part: "optimizer", key: "optimizer", ...sizes }];
  }
  for (const optim of parsed.optim) {
    if (optim) count(optim.checkpoint.root, new Set(optim.flatGroups));
  }
  return sizes.tensors === 0 ? [] : [{ part: "optimizer", key: "optimizer_state_dict", ...sizes }];
}

function valuesLeftOut(checkpoint: ShardedCheckpoint, metadata: ReadonlyMap<string, string>): string[] {
  return checkpoint.kind === "dcp"
    ? (checkpoint as DcpCheckpoint).bytesItems.map((b) => b.fqn).filter((fqn) => !metadata.has(fqn))
    : [];
}

/** Opens `path` (a sharded directory or an `*.index.json` file) as the input of a conversion. */
export function shardedSource(path: string, options: SelectOptions, request: SourceRequest): ConvertSource {
  const checkpoint = openShardedPath(path);
  try {
    refuseDamaged(checkpoint, path);
    const nested = checkpoint.kind === "dcp" ? dcpNestedTensors(checkpoint) : undefined;
    const everyTensor = [...shardedTensors(checkpoint), ...(nested ? nestedLogical(nested) : [])];
    const selection = selectSharded(checkpoint, everyTensor, options);
    const kept = selection.tensors.filter((t) => !request.isDropped(t.name));
    const dropped = selection.tensors.filter((t) => request.isDropped(t.name)).map((t) => t.name);
    if (kept.length === 0) throw new ReaderError("convert-refused", "--drop left no tensor to convert");
    const names = new Set<string>();
    const ties = tiesOf(checkpoint);
    const entries =
      checkpoint.kind === "hf-index" ? new Map(checkpoint.tensors.map((t) => [t.name, t])) : undefined;
    const tensors = kept.map(({ logical, name }) => {
      if (names.has(name)) {
        throw new ReaderError(
          "convert-refused",
          `two tensors would both be named ${name}: choose prefixes that keep names distinct`,
        );
      }
      names.add(name);
      const inItem = nested?.byName.get(logical.name);
      if (inItem) return nestedConvertTensor(inItem, name, request);
      return checkpoint.kind === "hf-index"
        ? hfTensor(checkpoint, entries?.get(logical.name), name, request)
        : logicalTensor(checkpoint, ties, logical, name, request);
    });
    const metadata = metadataOf(checkpoint, options.metadata ?? []);
    const leftOut =
      checkpoint.kind === "deepspeed" && !options.all ? deepSpeedLeftOut(checkpoint) : selection.leftOut;
    return {
      path,
      format: checkpoint.kind,
      sizeBytes: checkpointSize(checkpoint),
      directory: sourceDirectory(checkpoint),
      taken: selection.taken,
      selected: selection.key,
      tensors,
      dropped,
      leftOut,
      valuesLeftOut: valuesLeftOut(checkpoint, metadata).filter((fqn) => !nested?.tensorsOnly.has(fqn)),
      metadata,
      settle: () => assertShardedUnchanged(checkpoint),
      close: () => closeSharded(checkpoint),
    };
  } catch (error) {
    closeSharded(checkpoint);
    throw error;
  }
}

/**
 * The directory no output may go into: the checkpoint's own, and for DeepSpeed its save directory (where
 * `latest` is), which is the parent when a tag directory itself was given.
 */
function sourceDirectory(checkpoint: ShardedCheckpoint): string {
  const own = join(checkpoint.tree.name, checkpoint.dir);
  const isTagDir = checkpoint.kind === "deepspeed" && checkpoint.dir === "" && checkpoint.tags.length === 0;
  return isTagDir ? dirname(own) : own;
}
