import { volume } from "../assemble.js";
import type { ShardedFinding } from "../findings.js";
import type { ModelStates, OptimStates } from "./parse.js";

/**
 * Where zero_to_fp32 (deepspeed/utils/zero_to_fp32.py) takes each tensor of the fp32 state dict from, in the
 * order it builds it: buffers (`.float()`), frozen parameters, trainable parameters from the flat fp32 groups,
 * then tied names.
 *
 * ZeRO-1/2 (`_zero2_merge_trainable_params`): per group, every rank's padding-stripped partition is concatenated
 * and the group's parameters are read in `param_shapes` order from offset 0; the engine aligned each flat
 * group to `2 * world_size` elements, and the consumed count must equal the available one once both are
 * rounded up to that alignment. ZeRO-3 (`_zero3_merge_trainable_params`): each parameter is cut into
 * `ceil(numel / world_size)` elements per rank (the last ranks padded), laid out one after another in every
 * rank's flat groups; a parameter is its ranks' slices concatenated and truncated to its numel.
 */

/** Elements `[offset, offset + numel)` of one rank's flat group `group`. */
export interface DeepSpeedSegment {
  readonly rank: number;
  readonly group: number;
  readonly offset: number;
  readonly numel: number;
}

export type DeepSpeedTensor =
  /** Without ZeRO (stage 0): a tensor of the model-states `module`, as DeepSpeed's load_checkpoint loads it. */
  | {
      readonly source: "module";
      readonly name: string;
      readonly shape: readonly number[];
      readonly dtype: string;
      readonly file: string;
    }
  /** A persistent buffer from the model-states `module`, converted to float32 as zero_to_fp32 does. */
  | {
      readonly source: "buffer";
      readonly name: string;
      readonly shape: readonly number[];
      readonly dtype: "float32";
      readonly savedDtype: string;
      readonly file: string;
    }
  /** A frozen parameter from `frozen_param_fragments`, in its saved dtype (ZeRO-3: one fragment per rank). */
  | {
      readonly source: "frozen";
      readonly name: string;
      readonly shape: readonly number[];
      readonly dtype: string;
      readonly fragments: ReadonlyArray<{ readonly rank: number | null; readonly file: string }>;
    }
  /** A trainable parameter rebuilt from the fp32 master partitions. */
  | {
      readonly source: "param";
      readonly name: string;
      readonly shape: readonly number[];
      readonly dtype: string;
      readonly group: number;
      /** ZeRO-1/2: offset in the group's concatenated partitions; ZeRO-3: in every rank's flat group. */
      readonly offset: number;
      readonly numel: number;
      readonly segments: readonly DeepSpeedSegment[];
      /** ZeRO-3: elements per rank, and the padding of the last ranks. */
      readonly partitionedNumel: number | null;
      readonly padding: number | null;
    }
  /** A tied name (`shared_params`): the same tensor as `target`. */
  | {
      readonly source: "shared";
      readonly name: string;
      readonly shape: readonly number[];
      readonly dtype: string;
      readonly target: string;
    };

export interface DeepSpeedGroup {
  readonly index: number;
  /** Per rank: the flat group's element count and dtype as saved (null where the rank's file is missing). */
  readonly partitions: ReadonlyArray<{
    readonly rank: number;
    readonly numel: number | null;
    readonly dtype: string | null;
  }>;
}

export interface ZeroLayout {
  readonly tensors: DeepSpeedTensor[];
  readonly groups: DeepSpeedGroup[];
  readonly findings: ShardedFinding[];
}

/**
 * The layout from the first model-states file, every rank's optimizer states (`undefined` where the file is
 * missing: its sizes then follow the engine's partitioning rule, so the layout is still described) and, for
 * ZeRO-3 frozen parameters, every rank's model states.
 */
export function zeroLayout(
  stage: number,
  worldSize: number,
  model: ModelStates,
  optim: ReadonlyArray<OptimStates | undefined>,
  zero3Models: ReadonlyArray<ModelStates | undefined>,
): ZeroLayout {
  const tensors: DeepSpeedTensor[] = [];
  const findings: ShardedFinding[] = [];
  const known = optim.find((o) => o !== undefined);
  for (const name of model.bufferNames) {
    const tensor = model.module.get(name);
    if (tensor)
      tensors.push({
        source: "buffer",
        name,
        shape: tensor.shape,
        dtype: "float32",
        savedDtype: tensor.dtype,
        file: model.file,
      });
  }
  for (const [name, shape] of model.frozenShapes ?? []) {
    if (stage <= 2) {
      const fragment = model.frozenFragments?.get(name);
      if (fragment)
        tensors.push({
          source: "frozen",
          name,
          shape,
          dtype: fragment.dtype,
          fragments: [{ rank: null, file: model.file }],
        });
      continue;
    }
    const fragments = zero3Models.map((m, rank) => ({ rank, file: m?.file ?? "" }));
    const dtype = zero3Models.find((m) => m)?.frozenFragments?.get(name)?.dtype ?? "float32";
    tensors.push({ source: "frozen", name, shape, dtype, fragments });
  }
  const groupCount = known?.flatGroups.length ?? model.paramShapes.length;
  const dtypeOf = (group: number) => known?.flatGroups[group]?.dtype ?? "float32";
  const groups: DeepSpeedGroup[] = [];
  const numels: number[][] = [];
  for (let g = 0; g < groupCount; g++) {
    const expected = expectedPartitions(stage, worldSize, model.paramShapes[g] ?? []);
    const row = Array.from({ length: worldSize }, (_, r) => {
      const tensor = optim[r]?.flatGroups[g];
      return tensor ? volume(tensor.shape) : (expected[r] as number);
    });
    numels.push(row);
    groups.push({
      index: g,
      partitions: row.map((_, r) => {
        const tensor = optim[r]?.flatGroups[g];
        return { rank: r, numel: tensor ? volume(tensor.shape) : null, dtype: tensor?.dtype ?? null };
      }),
    });
  }
  const context: ParamContext = { model, worldSize, numels, dtypeOf, tensors, findings };
  if (stage <= 2) zero2Params(context);
  else zero3Params(context);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  for (const [name, target] of model.shared) {
    const held = byName.get(target);
    if (held) tensors.push({ source: "shared", name, shape: held.shape, dtype: held.dtype, target });
  }
  return { tensors, groups, findings };
}

/** Per rank, the element count the engine's partitioning gives a group (for a rank whose file is missing). */
function expectedPartitions(
  stage: number,
  worldSize: number,
  shapes: ReadonlyArray<readonly [string, readonly number[]]>,
): number[] {
  if (stage >= 3) {
    const perRank = shapes.reduce((sum, [, shape]) => sum + Math.ceil(volume(shape) / worldSize), 0);
    return Array.from({ length: worldSize }, () => perRank);
  }
  const numel = shapes.reduce((sum, [, shape]) => sum + volume(shape), 0);
  const align = 2 * worldSize;
  const part = (Math.ceil(numel / align) * align) / worldSize;
  return Array.from({ length: worldSize }, (_, r) => Math.max(0, Math.min(part, numel - r * part)));
}

/** What both ZeRO layouts read and where they put what they find. */
interface ParamContext {
  readonly model: ModelStates;
  readonly worldSize: number;
  /** Per group, per rank: the flat group's element count. */
  readonly numels: readonly number[][];
  readonly dtypeOf: (group: number) => string;
  readonly tensors: DeepSpeedTensor[];
  readonly findings: ShardedFinding[];
}

/** `[0, a, a + b, ...]`: where each of `sizes` starts, and (last) their total. */
function starts(sizes: readonly number[]): number[] {
  const out = [0];
  for (const n of sizes) out.push((out[out.length - 1] as number) + n);
  return out;
}

function zero2Params({ model, worldSize, numels, dtypeOf, tensors, findings }: ParamContext): void {
  const align = 2 * worldSize;
  const aligned = (n: number) => align * Math.ceil(n / align);
  model.paramShapes.forEach((shapes, group) => {
    const row = numels[group] ?? [];
    const bounds = starts(row);
    const available = bounds[bounds.length - 1] as number;
    let offset = 0;
    for (const [name, shape] of shapes) {
      const numel = volume(shape);
      const segments: DeepSpeedSegment[] = [];
      for (let rank = 0; rank < row.length; rank++) {
        const low = Math.max(offset, bounds[rank] as number);
        const high = Math.min(offset + numel, bounds[rank + 1] as number);
        if (low < high)
          segments.push({ rank, group, offset: low - (bounds[rank] as number), numel: high - low });
      }
      tensors.push(param(name, shape, dtypeOf(group), group, offset, segments, null, worldSize));
      offset += numel;
    }
    if (aligned(offset) !== aligned(available)) {
      findings.push({ code: "zero-layout-mismatch", severity: "error", group, consumed: offset, available });
    }
  });
}

function zero3Params({ model, worldSize, numels, dtypeOf, tensors, findings }: ParamContext): void {
  // zero_to_fp32 merges the per-group shape dicts and finds each parameter's group by its running offset.
  const groupStarts = starts(numels.map((row) => row[0] ?? 0));
  const available = groupStarts[groupStarts.length - 1] as number;
  let offset = 0;
  for (const [name, shape] of model.paramShapes.flat()) {
    const numel = volume(shape);
    const perRank = Math.ceil(numel / worldSize);
    let group = 0;
    while (group + 1 < numels.length && (groupStarts[group + 1] as number) <= offset) group++;
    const inGroup = offset - (groupStarts[group] as number);
    const segments: DeepSpeedSegment[] = [];
    let remaining = numel;
    for (let rank = 0; rank < worldSize && remaining > 0; rank++) {
      const take = Math.min(perRank, remaining);
      segments.push({ rank, group, offset: inGroup, numel: take });
      remaining -= take;
    }
    tensors.push(param(name, shape, dtypeOf(group), group, inGroup, segments, perRank, worldSize));
    offset += perRank;
  }
  if (offset !== available) {
    findings.push({
      code: "zero-layout-mismatch",
      severity: "error",
      group: numels.length - 1,
      consumed: offset,
      available,
    });
  }
}

function param(
  name: string,
  shape: readonly number[],
  dtype: string,
  group: number,
  offset: number,
  segments: DeepSpeedSegment[],
  partitionedNumel: number | null,
  worldSize: number,
): DeepSpeedTensor {
  const numel = volume(shape);
  const padding = partitionedNumel === null ? null : partitionedNumel * worldSize - numel;
  return { source: "param", name, shape, dtype, group, offset, numel, segments, partitionedNumel, padding };
}

/**
 * Stage 0 (no ZeRO): the model states' `module` is the state dict load_checkpoint restores, every tensor in
 * its saved dtype and order; there are no partitions to assemble (zero_to_fp32 refuses such a directory).
 */
export function moduleLayout(model: ModelStates): ZeroLayout {
  const tensors: DeepSpeedTensor[] = [...model.module].map(([name, tensor]) => ({
    source: "module",
    name,
    shape: tensor.shape,
    dtype: tensor.dtype,
    file: model.file,
  }));
  return { tensors, groups: [], findings: [] };
}
