import { ReaderError } from "../errors.js";
import { elementSize } from "../torch/dtypes.js";
import { joinPath, type TreeSource } from "../tree.js";
import { type AssembleOptions, assembleRowMajor } from "./assemble.js";
import { dcpTensorBytes } from "./dcp/items.js";
import { type DcpCheckpoint, type DcpTensor, looksLikeDcp, openDcp } from "./dcp/open.js";
import type { DeepSpeedTensor } from "./deepspeed/layout.js";
import { type DeepSpeedCheckpoint, looksLikeDeepSpeed, openDeepSpeed } from "./deepspeed/open.js";
import { deepSpeedTensorBytes } from "./deepspeed/values.js";
import {
  findIndexFile,
  type HfIndexCheckpoint,
  type HfTensor,
  hfShardTensor,
  openHfIndex,
} from "./hf/open.js";
import { assertSourcesUnchanged, closeSources } from "./sources.js";
import { rowMajorReader } from "./tensorReader.js";

/** One logical checkpoint spread over many files. */
export type ShardedCheckpoint = DcpCheckpoint | DeepSpeedCheckpoint | HfIndexCheckpoint;
export type ShardedKind = ShardedCheckpoint["kind"];

/** A tensor of the consolidated state dict, whatever the layout: its name, global shape and dtype. */
export interface LogicalTensor {
  /** DCP: the flattened FQN; DeepSpeed: the state-dict name zero_to_fp32 gives; HF: the shard's key. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
}

/**
 * What `path` (a directory, or an `*.index.json` file) is, without reading any file: `dcp` for `.metadata`
 * or `__<rank>_<n>.distcp` files, `deepspeed` for `latest` / tag directories of ZeRO files (or a tag
 * directory itself), `hf-index` for an index file; `undefined` for anything else.
 */
export function detectSharded(tree: TreeSource, path = ""): ShardedKind | undefined {
  const stat = tree.stat(path);
  if (stat?.kind === "file") return path.endsWith(".index.json") ? "hf-index" : undefined;
  const entries = tree.list(path);
  if (!entries) return undefined;
  if (looksLikeDcp(entries)) return "dcp";
  if (looksLikeDeepSpeed(tree, path)) return "deepspeed";
  if (findIndexFile(entries) !== undefined) return "hf-index";
  return undefined;
}

/**
 * Opens `path` as one logical checkpoint: its structure (metadata, indexes, headers), every tensor's name,
 * shape and dtype, and the completeness findings. Tensor bytes are read only by `logicalTensorBytes`.
 * Close it with `closeSharded`.
 * @throws ReaderError `not-a-checkpoint` when `path` is none of the sharded layouts, and what the readers throw
 * for files that cannot be parsed at all.
 */
export function openSharded(tree: TreeSource, path = ""): ShardedCheckpoint {
  switch (detectSharded(tree, path)) {
    case "dcp":
      return openDcp(tree, path);
    case "deepspeed":
      return openDeepSpeed(tree, path);
    case "hf-index":
      return openHfIndex(tree, path);
    default: {
      const files = weightFilesIn(tree, path);
      const holds = files.length === 0 ? "" : `; it holds ${files.join(", ")} (not shards)`;
      throw new ReaderError(
        "not-a-checkpoint",
        `not a DCP, DeepSpeed or Hugging Face sharded checkpoint${holds}`,
        {
          file: path === "" ? tree.name : `${tree.name}/${path}`,
          ...(files.length === 0
            ? {}
            : {
                next: `pass the file itself: ${path === "" ? `${tree.name}/${files[0]}` : joinPath(path, files[0] as string)}`,
              }),
        },
      );
    }
  }
}

/**
 * A directory that is no sharded layout may still hold a checkpoint file (a Trainer's `checkpoint-N/` with an
 * unsharded `model.safetensors`): its weight files, the model's first, so the error can name one.
 */
function weightFilesIn(tree: TreeSource, path: string): string[] {
  const names = (tree.list(path) ?? [])
    .filter((e) => e.kind === "file" && WEIGHT_FILE.test(e.name))
    .map((e) => e.name)
    .sort();
  const model = names.filter((n) => MODEL_FILE.test(n));
  return [...model, ...names.filter((n) => !MODEL_FILE.test(n))].slice(0, 4);
}

const WEIGHT_FILE = /\.(?:safetensors|bin|pt|pth|ckpt|th)$/;
const MODEL_FILE = /^(?:model|pytorch_model|diffusion_pytorch_model)\.(?:safetensors|bin)$/;

/** Every logical tensor, in the order the format lists them. */
export function shardedTensors(checkpoint: ShardedCheckpoint): LogicalTensor[] {
  switch (checkpoint.kind) {
    case "dcp":
      return checkpoint.tensors.map((t) => ({ name: t.fqn, shape: t.shape, dtype: t.dtype }));
    case "deepspeed":
    case "hf-index":
      return checkpoint.tensors.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
  }
}

/** Each checkpoint's tensors by name, built on the first lookup (checkpoints can hold 200,000 tensors). */
const byName = new WeakMap<ShardedCheckpoint, Map<string, number>>();

function indexOf(checkpoint: ShardedCheckpoint, name: string): number | undefined {
  let index = byName.get(checkpoint);
  if (!index) {
    index = new Map(shardedTensors(checkpoint).map((t, i) => [t.name, i]));
    byName.set(checkpoint, index);
  }
  return index.get(name);
}

/**
 * A logical tensor's bytes in row-major order, exactly as torch's consolidation builds it (`dcp_to_torch_save`,
 * zero_to_fp32, the shard's own tensor), streamed in buffers of at most `chunkBytes` (reused: consume each
 * before the next).
 * @throws ReaderError `storage-missing` for a name that is not there or whose pieces are not all present.
 */
export function logicalTensorBytes(
  checkpoint: ShardedCheckpoint,
  name: string,
  options: AssembleOptions = {},
): Generator<Uint8Array> {
  const at = indexOf(checkpoint, name);
  if (at === undefined) throw new ReaderError("storage-missing", `no tensor named ${name}`);
  switch (checkpoint.kind) {
    case "dcp":
      return dcpTensorBytes(checkpoint, checkpoint.tensors[at] as DcpTensor, options);
    case "deepspeed":
      return deepSpeedTensorBytes(checkpoint, checkpoint.tensors[at] as DeepSpeedTensor, options);
    case "hf-index": {
      const { checkpoint: shard, tensor } = hfShardTensor(checkpoint, checkpoint.tensors[at] as HfTensor);
      const read = rowMajorReader(shard, tensor);
      const whole = [{ offsets: tensor.shape.map(() => 0), sizes: tensor.shape, read }];
      return assembleRowMajor(tensor.shape, elementSize(tensor.dtype), whole, options);
    }
  }
}

/** Closes every file the checkpoint's readers opened. */
export function closeSharded(checkpoint: ShardedCheckpoint): void {
  closeSources(checkpoint);
}

/** Bytes of the files the checkpoint is made of (present ones: a missing file counts 0). */
export function shardedFileBytes(checkpoint: ShardedCheckpoint): number {
  switch (checkpoint.kind) {
    case "dcp":
      return checkpoint.files.reduce((n, f) => n + f.size, 0);
    case "deepspeed":
      return [...checkpoint.modelFiles, ...checkpoint.optimFiles].reduce((n, f) => n + f.size, 0);
    case "hf-index":
      return checkpoint.shards.reduce((n, s) => n + s.size, 0);
  }
}

/** Throws `file-changed` when a file read so far has changed since it was opened: a save still in progress. */
export function assertShardedUnchanged(checkpoint: ShardedCheckpoint): void {
  assertSourcesUnchanged(checkpoint);
}
