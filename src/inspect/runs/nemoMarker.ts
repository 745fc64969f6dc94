import { basename, dirname, join } from "../../reader/posixPath.js";

/**
 * NeMo's marker of a save in progress (`format_checkpoint_unfinished_marker_path`): the checkpoint's path
 * without its model-parallel rank directory (`uninject_model_parallel_rank`: `mp_rank_00/x.ckpt` is `x.ckpt`),
 * then without `.nemo`, `.ckpt` and `-EMA`, plus `-unfinished`; an EMA copy shares its checkpoint's marker.
 */
export function unfinishedMarker(path: string): string {
  const rankDir = /(?:mp_rank|tp_rank|fsdp_shard)/.test(basename(dirname(path)));
  const uninjected = rankDir ? join(dirname(dirname(path)), basename(path)) : path;
  return `${uninjected
    .replace(/\.nemo$/, "")
    .replace(/\.ckpt$/, "")
    .replace(/-EMA$/, "")}-unfinished`;
}
