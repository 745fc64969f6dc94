/**
 * DeepSpeed's checkpoint file names (deepspeed/runtime/engine.py `_get_ckpt_name`, `_get_zero_ckpt_name`,
 * `_get_zero_ckpt_prefix`; deepspeed/checkpoint/constants.py): in `<save_dir>/<tag>/`,
 * `mp_rank_<mp:02d>_model_states.pt` (ZeRO-1/2, data-parallel rank 0 only) or
 * `zero_pp_rank_<dp>_mp_rank_<mp:02d>_model_states.pt` (ZeRO-3, every rank), and
 * `[bf16_]zero_pp_rank_<dp>_mp_rank_<mp:02d>_optim_states.pt` (every rank; `bf16_` when bf16 is enabled).
 * Releases before 0.3.x wrote `..._mp_rank_00optim_states.pt` (no underscore), which the engine still loads.
 */

export type DeepSpeedRole = "model-states" | "optim-states";

export interface DeepSpeedFileName {
  readonly role: DeepSpeedRole;
  /** Data-parallel rank, or null for ZeRO-1/2's single `mp_rank_00_model_states.pt`. */
  readonly rank: number | null;
  readonly mpRank: number;
  /** `bf16_`, `fp16_` or "". */
  readonly prefix: string;
}

const OPTIM = /^((?:bf16|fp16)_)?zero_pp_rank_(\d+)_mp_rank_(\d+)_?optim_states\.pt$/;
const ZERO3_MODEL = /^zero_pp_rank_(\d+)_mp_rank_(\d+)_model_states\.pt$/;
const MODEL = /^mp_rank_(\d+)_model_states\.pt$/;

export function parseDeepSpeedName(name: string): DeepSpeedFileName | undefined {
  let match = OPTIM.exec(name);
  if (match)
    return { role: "optim-states", rank: Number(match[2]), mpRank: Number(match[3]), prefix: match[1] ?? "" };
  match = ZERO3_MODEL.exec(name);
  if (match) return { role: "model-states", rank: Number(match[1]), mpRank: Number(match[2]), prefix: "" };
  match = MODEL.exec(name);
  if (match) return { role: "model-states", rank: null, mpRank: Number(match[1]), prefix: "" };
  return undefined;
}

export function optimFileName(prefix: string, rank: number, mpRank = 0): string {
  return `${prefix}zero_pp_rank_${rank}_mp_rank_${String(mpRank).padStart(2, "0")}_optim_states.pt`;
}

export function zero3ModelFileName(rank: number, mpRank = 0): string {
  return `zero_pp_rank_${rank}_mp_rank_${String(mpRank).padStart(2, "0")}_model_states.pt`;
}

/** zero_to_fp32's `natural_keys` order: digit runs compare as numbers. */
export function naturalCompare(a: string, b: string): number {
  const split = (text: string) => text.split(/(\d+)/).map((part, i) => (i % 2 === 1 ? Number(part) : part));
  const pa = split(a);
  const pb = split(b);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string | number;
    const y = pb[i] as string | number;
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return pa.length - pb.length;
}
