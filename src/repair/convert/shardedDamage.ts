import { completenessFindings } from "../../inspect/sharded/completeness.js";
import { shardedFindingMessage } from "../../inspect/sharded/findingText.js";
import { ReaderError } from "../../reader/errors.js";
import type { ShardedCheckpoint } from "../../reader/sharded/index.js";

/**
 * A sharded checkpoint that torch could not load whole is not converted at all: one error naming every
 * problem (the missing rank's file, the missing shard, the short file), so nothing partial is ever written.
 * @throws ReaderError `sharded-incomplete` when any finding is an error.
 */
export function refuseDamaged(checkpoint: ShardedCheckpoint, path: string): void {
  // Tensor-parallel slices are not one model: writing rank 0's as the whole would be a wrong file.
  const problems = completenessFindings(checkpoint)
    .filter((f) => f.severity === "error" || f.code === "model-parallel-ranks")
    .map(shardedFindingMessage);
  if (problems.length === 0) return;
  const what = { dcp: "DCP checkpoint", deepspeed: "DeepSpeed checkpoint", "hf-index": "sharded checkpoint" };
  throw new ReaderError(
    "sharded-incomplete",
    `the ${what[checkpoint.kind]} cannot be loaded whole: ${problems.join("; ")}`,
    { file: path },
  );
}
