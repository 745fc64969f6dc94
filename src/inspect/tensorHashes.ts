import { type Checkpoint, hasTensors } from "../reader/checkpoint.js";
import type { TorchTensor } from "../reader/pickle/value.js";
import { type ByteRange, digestRanges } from "../reader/rangeDigest.js";
import { contiguousByteRange } from "../reader/tensorData.js";
import { findTensors, type KeyPath } from "./walk.js";

/** `--hash` in Node: the tensors' sha256 on two threads (worker_threads), kept out of the portable report. */

/**
 * sha256 of every tensor `--hash` lists whose bytes are one plain range of the file, computed on two threads
 * (`digestRanges`): hashing, not reading, bounds `--hash`. Pass the result as `InspectOptions.sha256`.
 */
export async function tensorSha256s(
  checkpoint: Checkpoint,
  filter?: (path: KeyPath) => boolean,
): Promise<ReadonlyMap<TorchTensor, string>> {
  if (!hasTensors(checkpoint)) return new Map();
  const tensors = new Set<TorchTensor>();
  for (const { path, tensor } of findTensors(checkpoint.root).tensors) {
    if (filter && !filter(path)) continue;
    if (tensor.sparse) tensors.add(tensor.sparse.indices).add(tensor.sparse.values);
    else tensors.add(tensor);
  }
  const ranged: TorchTensor[] = [];
  const ranges: ByteRange[] = [];
  for (const tensor of tensors) {
    const range = contiguousByteRange(checkpoint, tensor);
    if (range) {
      ranged.push(tensor);
      ranges.push(range);
    }
  }
  const digests = await digestRanges(checkpoint.source, ranges, "sha256");
  return new Map(ranged.map((tensor, i) => [tensor, digests[i] as string]));
}
