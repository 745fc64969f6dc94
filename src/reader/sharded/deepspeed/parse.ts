import { hasTensors, type TensorCheckpoint } from "../../checkpoint.js";
import { ReaderError } from "../../errors.js";
import { dictGet, isBoxed, type PyDict, type PyValue, type TorchTensor } from "../../pickle/value.js";
import { readCheckpoint } from "../../read.js";
import { asInt, asIntTuple } from "../../torch/rebuild.js";
import { asString, asStringList, intOrEnum, itemsOf } from "../pyData.js";
import type { SourceCache } from "../sources.js";

/**
 * The two kinds of files `engine.save_checkpoint` writes, read as data (keys from
 * deepspeed/checkpoint/constants.py, as zero_to_fp32's `parse_model_states` / `parse_optim_states` read them).
 */

/** `*_model_states.pt`: the module state dict and what zero_to_fp32 needs to rebuild fp32 weights. */
export interface ModelStates {
  readonly file: string;
  readonly checkpoint: TensorCheckpoint;
  /** `module`: the state dict (ZeRO-3: parameters are empty placeholders, buffers whole). */
  readonly module: ReadonlyMap<string, TorchTensor>;
  readonly bufferNames: readonly string[];
  /** `param_shapes`: one ordered name -> shape list per optimizer group (ZeRO-3: per sub-group). */
  readonly paramShapes: ReadonlyArray<ReadonlyArray<readonly [string, readonly number[]]>>;
  /**
   * Whether the engine saved this file for a ZeRO (or bf16) optimizer: it then writes `param_shapes` and keeps
   * the optimizer in the `*_optim_states.pt` files. Without ZeRO both are None and `optimizer` holds the
   * optimizer's whole state_dict (engine._save_checkpoint's `zero_optimizer_state`).
   */
  readonly zeroOptimizerState: boolean;
  readonly frozenShapes: ReadonlyArray<readonly [string, readonly number[]]> | null;
  readonly frozenFragments: ReadonlyMap<string, TorchTensor> | null;
  /** `shared_params`: tied name -> the name that holds the data. */
  readonly shared: ReadonlyArray<readonly [string, string]>;
  readonly dsVersion: string | null;
  readonly globalSteps: number | null;
  readonly dpWorldSize: number | null;
}

/** `*_optim_states.pt`: one rank's partition of the fp32 master weights. */
export interface OptimStates {
  readonly file: string;
  readonly rank: number;
  readonly checkpoint: TensorCheckpoint;
  readonly stage: number;
  /** `partition_count` (an int, or one per group in ZeRO-1/2: zero_to_fp32 takes the largest). */
  readonly partitionCount: number;
  /** `single_partition_of_fp32_groups` (ZeRO-1/2, padding already stripped) or `fp32_flat_groups` (ZeRO-3). */
  readonly flatGroups: readonly TorchTensor[];
}

function unreadable(file: string, reason: string): ReaderError {
  return new ReaderError("not-a-checkpoint", `${file} is not a DeepSpeed checkpoint file: ${reason}`, {
    file,
  });
}

function openTensorFile(sources: SourceCache, path: string): TensorCheckpoint {
  const checkpoint = readCheckpoint(sources.get(path));
  if (!hasTensors(checkpoint) || !isBoxed(checkpoint.root, "dict"))
    throw unreadable(path, "no torch.save'd dict");
  return checkpoint;
}

function tensorMap(value: PyValue | undefined): Map<string, TorchTensor> | null {
  if (!isBoxed(value, "dict")) return null;
  const out = new Map<string, TorchTensor>();
  value.keys.forEach((key, i) => {
    const tensor = value.values[i];
    if (typeof key === "string" && isBoxed(tensor, "tensor")) out.set(key, tensor);
  });
  return out;
}

function shapeList(value: PyValue | undefined): Array<readonly [string, readonly number[]]> | null {
  if (!isBoxed(value, "dict")) return null;
  const out: Array<readonly [string, readonly number[]]> = [];
  value.keys.forEach((key, i) => {
    const shape = asIntTuple(value.values[i]);
    if (typeof key === "string" && shape) out.push([key, shape]);
  });
  return out;
}

export function readModelStates(sources: SourceCache, path: string): ModelStates {
  const checkpoint = openTensorFile(sources, path);
  const root = checkpoint.root as PyDict;
  const bufferNames = asStringList(dictGet(root, "buffer_names"));
  const module = tensorMap(dictGet(root, "module"));
  if (!bufferNames || !module) throw unreadable(path, "no buffer_names or module");
  const savedShapes = itemsOf(dictGet(root, "param_shapes"));
  const paramShapes = (savedShapes ?? []).map((group) => shapeList(group) ?? []);
  const shared = dictGet(root, "shared_params");
  return {
    file: path,
    checkpoint,
    module,
    bufferNames,
    paramShapes,
    zeroOptimizerState: savedShapes !== undefined,
    frozenShapes: shapeList(dictGet(root, "frozen_param_shapes")),
    frozenFragments: tensorMap(dictGet(root, "frozen_param_fragments")),
    shared: isBoxed(shared, "dict")
      ? shared.keys.flatMap((key, i) => {
          const target = shared.values[i];
          return typeof key === "string" && typeof target === "string" ? [[key, target] as const] : [];
        })
      : [],
    dsVersion: asString(dictGet(root, "ds_version")) ?? null,
    globalSteps: asInt(dictGet(root, "global_steps")) ?? null,
    dpWorldSize: asInt(dictGet(root, "dp_world_size")) ?? null,
  };
}

export function readOptimStates(sources: SourceCache, path: string, rank: number): OptimStates {
  const checkpoint = openTensorFile(sources, path);
  const state = dictGet(checkpoint.root as PyDict, "optimizer_state_dict");
  if (!isBoxed(state, "dict")) throw unreadable(path, "no optimizer_state_dict");
  const stage = intOrEnum(dictGet(state, "zero_stage"));
  if (stage === undefined) throw unreadable(path, "no zero_stage: not a ZeRO checkpoint");
  const count = dictGet(state, "partition_count");
  const counts = (itemsOf(count) ?? [count]).map((c) => asInt(c)).filter((c): c is number => c !== undefined);
  if (counts.length === 0) throw unreadable(path, "no partition_count");
  const key = stage <= 2 ? "single_partition_of_fp32_groups" : "fp32_flat_groups";
  const groups = itemsOf(dictGet(state, key));
  if (!groups?.every((g) => isBoxed(g, "tensor"))) throw unreadable(path, `no ${key}`);
  return {
    file: path,
    rank,
    checkpoint,
    stage,
    partitionCount: Math.max(...counts),
    flatGroups: groups as TorchTensor[],
  };
}
