import type { TensorCheckpoint } from "../reader/checkpoint.js";
import { codecs } from "../reader/codecs.js";
import type { TorchTensor } from "../reader/pickle/value.js";
import { tensorBytes } from "../reader/tensorData.js";
import { StatsAccumulator, type TensorStats } from "./stats.js";

/** A tensor's values, streamed from its checkpoint: what `--hash` and `--stats` print for it. */

/** sha256 of the tensor's row-major bytes, streamed (what `--hash` prints, and what the page hashes on demand). */
export function tensorSha256(checkpoint: TensorCheckpoint, tensor: TorchTensor): string {
  const hash = codecs().sha256();
  for (const chunk of tensorBytes(checkpoint, tensor)) hash.update(chunk);
  return hash.hex();
}

export function tensorStats(checkpoint: TensorCheckpoint, tensor: TorchTensor): TensorStats {
  const accumulator = new StatsAccumulator(tensor.dtype);
  for (const chunk of tensorBytes(checkpoint, tensor)) accumulator.add(chunk);
  return accumulator.result();
}
