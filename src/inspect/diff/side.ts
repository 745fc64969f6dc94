import { type Checkpoint, hasTensors, type TensorCheckpoint } from "../../reader/checkpoint.js";
import type { TorchTensor } from "../../reader/pickle/value.js";
import { readDcpBytesItem } from "../../reader/sharded/dcp/items.js";
import { hfShardTensor } from "../../reader/sharded/hf/open.js";
import { logicalTensorBytes, type ShardedCheckpoint } from "../../reader/sharded/open.js";
import type { ByteSource, FileIdentity } from "../../reader/source.js";
import { contiguousByteRange, tensorBytes } from "../../reader/tensorData.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { pathBelow } from "../select.js";
import type { TreeNode } from "../tree.js";
import { findTensors, formatKeyPath, type KeyPath, type WalkLimit } from "../walk.js";
import { findLeaves } from "./leaves.js";

/**
 * One side of a diff: its tensors and non-tensor values by name, whatever it was read from (a file, a sharded
 * directory). Names are key paths as ckpt prints them (`model.backbone.conv1.weight`, `optimizer.state[0].
 * exp_avg`), below the selected key, with a saved module's `_modules`/`_parameters`/`_buffers` levels folded
 * away so that a whole-module save and a state dict name their tensors alike. Nothing is read until asked.
 */
export interface SideTensor {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** What keeps its values from being compared (a sparse layout, no stored data), or undefined. */
  readonly unreadable: string | undefined;
  /** Its row-major little-endian bytes, in reused buffers (consume each before asking for the next). */
  readonly bytes: () => Iterable<Uint8Array>;
  /** Where those bytes are one plain range of a file: another thread can read them by path. */
  readonly range: FileRange | undefined;
}

export interface FileRange {
  readonly identity: FileIdentity;
  readonly offset: number;
  readonly length: number;
}

export interface SideValue {
  readonly name: string;
  readonly node: TreeNode;
  readonly fingerprint: string;
}

export interface DiffSide {
  readonly tensors: SideTensor[];
  readonly values: SideValue[];
  /** Set when the walk of the object stopped at a limit (what lies beyond it is not compared). */
  readonly truncated: WalkLimit | undefined;
}

const MODULE_LEVELS = new Set(["_modules", "_parameters", "_buffers"]);

function nameOf(path: KeyPath): string {
  return formatKeyPath(path.filter((segment) => typeof segment !== "string" || !MODULE_LEVELS.has(segment)));
}

function fileRange(checkpoint: TensorCheckpoint, tensor: TorchTensor): FileRange | undefined {
  const range = contiguousByteRange(checkpoint, tensor);
  const identity = checkpoint.source.identity?.();
  return range && identity ? { identity, ...range } : undefined;
}

function unreadable(tensor: TorchTensor): string | undefined {
  if (tensor.layout !== "strided") return `a ${tensor.layout} tensor: its values are not compared`;
  if (!tensor.storage) return `no stored data (${tensor.rebuild})`;
  return undefined;
}

/** 256 KiB per read: both sides' chunks stay in L2 while they are compared (4 MiB reads ran at half the speed). */
export const RANGE_CHUNK_BYTES = 256 * 1024;

/** A plain byte range of a source in reused chunks of whole elements. */
export function* rangeBytes(
  source: Pick<ByteSource, "readInto">,
  offset: number,
  length: number,
  elementBytes: number,
): Generator<Uint8Array> {
  const step = Math.max(elementBytes, RANGE_CHUNK_BYTES - (RANGE_CHUNK_BYTES % elementBytes));
  const buffer = new Uint8Array(Math.min(step, length));
  for (let done = 0; done < length; done += step) {
    const size = Math.min(step, length - done);
    yield source.readInto(size === buffer.length ? buffer : buffer.subarray(0, size), offset + done);
  }
}

function savedTensor(checkpoint: TensorCheckpoint, name: string, tensor: TorchTensor): SideTensor {
  const range = fileRange(checkpoint, tensor);
  const plain = contiguousByteRange(checkpoint, tensor);
  return {
    name,
    dtype: tensor.dtype,
    shape: tensor.shape,
    unreadable: unreadable(tensor),
    bytes: plain
      ? () => rangeBytes(checkpoint.source, plain.offset, plain.length, elementSize(tensor.dtype))
      : () => tensorBytes(checkpoint, tensor),
    range,
  };
}

/** A checkpoint file's side: the tensors and values below `select` (a dotted key; "" for everything). */
export function checkpointSide(checkpoint: Checkpoint, select = ""): DiffSide {
  if (!("root" in checkpoint)) return { tensors: [], values: [], truncated: undefined };
  const walk = hasTensors(checkpoint) ? findTensors(checkpoint.root) : { tensors: [], truncated: undefined };
  const tensors: SideTensor[] = [];
  for (const { path, tensor } of walk.tensors) {
    const rest = pathBelow(path, select);
    if (rest && hasTensors(checkpoint)) tensors.push(savedTensor(checkpoint, nameOf(rest), tensor));
  }
  const leaves = findLeaves(checkpoint.root);
  const values: SideValue[] = [];
  for (const leaf of leaves.leaves) {
    const rest = pathBelow(leaf.path, select);
    if (rest) values.push({ name: nameOf(rest), node: leaf.node, fingerprint: leaf.fingerprint });
  }
  return { tensors, values, truncated: walk.truncated ?? leaves.truncated };
}

/**
 * A sharded checkpoint's side: its logical tensors as torch's consolidation builds them (named by the key
 * path DCP's planner recorded, so a DCP step and `dcp_to_torch_save`'s file name them alike), and DCP's
 * bytes items as values. DeepSpeed and Hugging Face shards hold tensors only.
 */
export function shardedSide(checkpoint: ShardedCheckpoint, select = ""): DiffSide {
  const tensors: SideTensor[] = [];
  const values: SideValue[] = [];
  const add = (path: KeyPath, tensor: Omit<SideTensor, "name">) => {
    const rest = pathBelow(path, select);
    if (rest) tensors.push({ name: nameOf(rest), ...tensor });
  };
  // A diff reads every tensor: chunks in file order, in large blocks where items are small.
  const logical = (name: string) => () => logicalTensorBytes(checkpoint, name, { inBulk: true });
  switch (checkpoint.kind) {
    case "dcp":
      for (const t of checkpoint.tensors) {
        add(t.path ? [...t.path] : [t.fqn], {
          dtype: t.dtype,
          shape: t.shape,
          unreadable: undefined,
          bytes: logical(t.fqn),
          range: undefined,
        });
      }
      for (const item of checkpoint.bytesItems) {
        const prefix = item.path ? [...item.path] : [item.fqn];
        for (const leaf of bytesItemLeaves(checkpoint, item)) {
          const rest = pathBelow([...prefix, ...leaf.path], select);
          if (rest) values.push({ name: nameOf(rest), node: leaf.node, fingerprint: leaf.fingerprint });
        }
      }
      break;
    case "deepspeed":
      for (const t of checkpoint.tensors) {
        add([t.name], {
          dtype: t.dtype,
          shape: t.shape,
          unreadable: undefined,
          bytes: logical(t.name),
          range: undefined,
        });
      }
      break;
    case "hf-index":
      for (const t of checkpoint.tensors) {
        const shard = hfShardTensor(checkpoint, t);
        add([t.name], { ...savedTensor(shard.checkpoint, t.name, shard.tensor) });
      }
      break;
  }
  return { tensors, values, truncated: undefined };
}

/** A DCP bytes item's value (what torch.load returns for its bytes) as leaves; an unreadable one as one leaf. */
function bytesItemLeaves(
  checkpoint: Extract<ShardedCheckpoint, { kind: "dcp" }>,
  item: Parameters<typeof readDcpBytesItem>[1],
) {
  let value: Checkpoint;
  try {
    value = readDcpBytesItem(checkpoint, item);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const node: TreeNode = { type: "str", value: `unreadable: ${message}`, length: message.length };
    return [{ path: [] as KeyPath, node, fingerprint: `unreadable:${message}` }];
  }
  return "root" in value ? findLeaves(value.root).leaves : [];
}
