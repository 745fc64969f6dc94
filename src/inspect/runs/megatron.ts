import { dictGet, dictSet, isBoxed, type PyDict, type PyValue, pyDict } from "../../reader/pickle/value.js";
import { join } from "../../reader/posixPath.js";
import { closeSharded } from "../../reader/sharded/index.js";
import { intValue, lookup } from "../resume/lookup.js";
import type { TreeFiles } from "../treeFiles.js";
import type { FileProblem } from "./integrity.js";
import { openShardedCandidate, type ShardedOpen, shardedState } from "./shardedDirs.js";

/**
 * One Megatron-LM checkpoint directory (`iter_NNNNNNN/` or `release/`) as load_checkpoint reads it
 * (megatron/training/checkpointing.py, `_get_checkpoint_format`, `_load_base_checkpoint`):
 *
 * - `torch` (legacy): one `mp_rank_TT[_PPP][_EEE]/model_optim_rng.pt` per tensor, pipeline and expert rank,
 *   each rank loading its own, plus `distrib_optim.pt` beside each with the distributed optimizer. Every rank
 *   of the grid the run's `args` describe must be there: a rank whose file is gone fails its load.
 * - `torch_dist`: a DCP directory (`.metadata`, `__R_N.distcp`) plus `common.pt`, the state that is not
 *   sharded (args, iteration, opt_param_scheduler), and `metadata.json` naming the backend. The sharded keys
 *   are the model's own FQNs; the optimizer's start with `optimizer.`, the RNG's with `rng_state`.
 */

/** Checks one file of the directory (relative to it) as a load would meet it; its root, or undefined if broken. */
export type MegatronCheck = (name: string) => Promise<PyValue | undefined>;

export type MegatronDir =
  | { readonly ok: true; readonly state: PyDict; readonly sizeBytes: number }
  | {
      readonly ok: false;
      readonly problem: FileProblem;
      readonly opened?: Extract<ShardedOpen, { ok: false }>;
    };

const LEGACY_FILE = "model_optim_rng.pt";
const DISTRIB_OPTIM = "distrib_optim.pt";
const RANK_DIR = /^mp_rank_(\d{2})(?:_(\d{3}))?(?:_(\d{3}))?$/;

export async function megatronDirState(
  fs: TreeFiles,
  dir: string,
  check: MegatronCheck,
): Promise<MegatronDir> {
  const names = fs.list(dir);
  // _get_checkpoint_format's order: metadata.json (torch_dist), mp_rank_0* (torch), .metadata (torch_dcp).
  let state: MegatronDir;
  if (names.includes("metadata.json") || names.includes("common.pt"))
    state = await torchDistState(fs, dir, check);
  else if (rankDirs(fs, dir, names).length > 0 || !names.includes(".metadata"))
    state = await legacyState(fs, dir, names, check);
  else state = torchDcpState(fs, dir);
  return /(?:^|\/)release$/.test(dir) && state.ok ? { ...state, state: releaseState(state.state) } : state;
}

/**
 * A release checkpoint loads its weights only: `if not release and not args.finetune` guards the optimizer,
 * scheduler and RNG, and the iteration is set to 0.
 */
function releaseState(state: PyDict): PyDict {
  return assign(pyDict(), state, (key) => !(typeof key === "string" && /^model\d*$/.test(key)));
}

/** --ckpt-format torch_dcp: one flat DCP save whose top-level keys are generate_state_dict's own. */
function torchDcpState(fs: TreeFiles, dir: string): MegatronDir {
  const opened = openShardedCandidate(fs, dir);
  if (!opened.ok) return { ok: false, problem: opened.problem, opened };
  const state = shardedState(opened.checkpoint);
  const sizeBytes = opened.sizeBytes;
  closeSharded(opened.checkpoint);
  return { ok: true, state, sizeBytes };
}

/** `source`'s entries added to `target`, except those `skip` names. */
function assign(target: PyDict, source: PyDict, skip: (key: PyValue) => boolean = () => false): PyDict {
  source.keys.forEach((key, i) => {
    if (!skip(key)) dictSet(target, key, source.values[i] as PyValue);
  });
  return target;
}

/** A rank directory's numbers: the tensor rank, then the pipeline and/or expert rank groups (3 digits each). */
interface RankDir {
  readonly name: string;
  readonly ranks: readonly number[];
}

/** `dir`'s model-parallel rank directories (`mp_rank_TT[_PPP][_EEE]`), with the ranks their names give. */
export function rankDirs(fs: TreeFiles, dir: string, names: readonly string[] = fs.list(dir)): RankDir[] {
  return names.flatMap((name) => {
    const m = RANK_DIR.exec(name);
    if (!m || !fs.isDirectory(join(dir, name))) return [];
    const ranks = [m[1], m[2], m[3]].filter((g): g is string => g !== undefined).map(Number);
    return [{ name, ranks }];
  });
}

/**
 * The rank directories the run's grid needs, named as get_checkpoint_name names them: `mp_rank_TT`, then
 * `_PPP` when pipeline parallel, then `_EEE` when expert parallel. With `args`, its sizes say which groups a
 * name has; without, each group position spans 0..the highest rank found there.
 */
function expectedRankDirs(args: PyValue | undefined, found: readonly RankDir[]): string[] {
  const saved = (key: string) => {
    const value = intValue(lookup(args, [key]));
    return value !== undefined && value > 0 ? value : undefined;
  };
  const tp = saved("tensor_model_parallel_size");
  const pp = saved("pipeline_model_parallel_size") ?? 1;
  const ep = saved("expert_model_parallel_size") ?? 1;
  const groups = Math.max(...found.map((r) => r.ranks.length));
  let sizes: number[] = tp === undefined ? [] : [tp, ...(pp > 1 ? [pp] : []), ...(ep > 1 ? [ep] : [])];
  // Names with other groups than the args explain: the args are not the grid's; the names tell it.
  if (sizes.length !== groups)
    sizes = Array.from({ length: groups }, (_, i) => Math.max(...found.map((r) => r.ranks[i] ?? 0)) + 1);
  let names = [""];
  sizes.forEach((size, i) => {
    const width = i === 0 ? 2 : 3;
    names = names.flatMap((prefix) =>
      Array.from({ length: size }, (_, r) => `${prefix}_${String(r).padStart(width, "0")}`),
    );
  });
  return names.map((suffix) => `mp_rank${suffix}`);
}

async function legacyState(
  fs: TreeFiles,
  dir: string,
  names: readonly string[],
  check: MegatronCheck,
): Promise<MegatronDir> {
  const ranks = rankDirs(fs, dir, names).filter((r) => fs.exists(join(dir, r.name, LEGACY_FILE)));
  const first = ranks.find((r) => r.ranks.every((n) => n === 0));
  if (!first) {
    return {
      ok: false,
      problem: { code: "model-file-missing", message: `no mp_rank_00*/${LEGACY_FILE} (rank 0's checkpoint)` },
    };
  }
  const states = await check(`${first.name}/${LEGACY_FILE}`);
  if (!isBoxed(states, "dict")) {
    // Unreadable: the caller reports the file's own problem. Readable but no dict: not Megatron's save.
    return {
      ok: false,
      problem: { code: "not-a-checkpoint", message: `${first.name}/${LEGACY_FILE} holds no state dict` },
    };
  }
  const args = dictGet(states, "args");
  const present = new Set(ranks.map((r) => r.name));
  const missing = expectedRankDirs(args, ranks).filter((name) => !present.has(name));
  if (missing.length > 0) {
    return {
      ok: false,
      problem: {
        code: "rank-file-missing",
        message: `${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` and ${missing.length - 3} more` : ""}: ${LEGACY_FILE} missing (a rank of the saved grid; its load fails)`,
      },
    };
  }
  for (const rank of ranks) if (rank !== first) await check(`${rank.name}/${LEGACY_FILE}`);
  // The distributed optimizer keeps each rank's parameter state (fp32 weights, Adam moments) beside it: with
  // one of those gone, the optimizer in model_optim_rng.pt is only its shell.
  const distributed =
    lookup(args, ["use_distributed_optimizer"]) === true ||
    ranks.some((r) => fs.exists(join(dir, r.name, DISTRIB_OPTIM)));
  const lostParamState = distributed && ranks.some((r) => !fs.exists(join(dir, r.name, DISTRIB_OPTIM)));
  if (distributed && !lostParamState) for (const rank of ranks) await check(`${rank.name}/${DISTRIB_OPTIM}`);
  const state = assign(pyDict(), states, (key) => lostParamState && key === "optimizer");
  return { ok: true, state, sizeBytes: 0 };
}

async function torchDistState(fs: TreeFiles, dir: string, check: MegatronCheck): Promise<MegatronDir> {
  if (!fs.exists(join(dir, "common.pt"))) {
    return {
      ok: false,
      problem: {
        code: "model-file-missing",
        message: "no common.pt: load_common_state_dict fails (iteration, args and scheduler are in it)",
      },
    };
  }
  const opened = openShardedCandidate(fs, dir);
  if (!opened.ok) return { ok: false, problem: opened.problem, opened };
  const sharded = shardedState(opened.checkpoint);
  const sizeBytes = opened.sizeBytes;
  closeSharded(opened.checkpoint);
  const common = await check("common.pt");
  const state = isBoxed(common, "dict") ? assign(pyDict(), common) : pyDict();
  const model = pyDict();
  sharded.keys.forEach((key, i) => {
    const value = sharded.values[i] as PyValue;
    if (key === "optimizer") dictSet(state, "optimizer", value);
    else if (typeof key === "string" && key.startsWith("rng_state")) dictSet(state, "rng_state", value);
    else if (key !== "rerun_state_machine_state") dictSet(model, key, value);
  });
  if (model.keys.length > 0) dictSet(state, "model", model);
  return { ok: true, state, sizeBytes };
}
