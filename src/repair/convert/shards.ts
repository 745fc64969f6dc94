import { ReaderError } from "../../reader/errors.js";

/**
 * Splitting into shards exactly as `huggingface_hub.split_torch_state_dict_into_shards` (what transformers'
 * `save_pretrained` calls) splits, so a directory ckpt writes has the files and index transformers would:
 * tensors in state-dict order; a tensor larger than the limit gets a shard of its own, listed at once (before
 * the shard being filled); otherwise a shard closes when the next tensor would push it over the limit. Shards are named
 * `model-00001-of-00003.safetensors`; a single shard is `model.safetensors` with no index.
 */
export interface ShardPlan<T> {
  readonly files: ReadonlyArray<{ readonly name: string; readonly tensors: T[] }>;
  readonly totalSize: number;
  readonly sharded: boolean;
}

const UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KIB: 2 ** 10,
  MIB: 2 ** 20,
  GIB: 2 ** 30,
  TIB: 2 ** 40,
};

/** `5GB` (10^9, as huggingface_hub reads it), `500MiB`, `1.5GB` or a byte count. */
export function parseShardSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)?\s*$/i.exec(text);
  const unit = UNITS[(match?.[2] ?? "B").toUpperCase()];
  if (!match || unit === undefined || Number(match[1]) * unit < 1) {
    throw new ReaderError(
      "invalid-shard-size",
      `--max-shard-size takes a size such as 5GB, 500MB or 2GiB, not ${JSON.stringify(text)}`,
    );
  }
  return Math.floor(Number(match[1]) * unit);
}

export function planShards<T>(
  tensors: readonly T[],
  sizeOf: (tensor: T) => number,
  maxShardSize: number,
  pattern: (suffix: string) => string = (suffix) => `model${suffix}.safetensors`,
): ShardPlan<T> {
  const shards: T[][] = [];
  let current: T[] = [];
  let currentSize = 0;
  let totalSize = 0;
  for (const tensor of tensors) {
    const size = sizeOf(tensor);
    totalSize += size;
    if (size > maxShardSize) {
      shards.push([tensor]);
      continue;
    }
    if (currentSize + size > maxShardSize) {
      shards.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(tensor);
    currentSize += size;
  }
  if (current.length > 0) shards.push(current);
  const count = shards.length;
  if (count <= 1)
    return { files: [{ name: pattern(""), tensors: shards[0] ?? [] }], totalSize, sharded: false };
  const digits = (n: number) => String(n).padStart(5, "0");
  return {
    files: shards.map((list, i) => ({
      name: pattern(`-${digits(i + 1)}-of-${digits(count)}`),
      tensors: list,
    })),
    totalSize,
    sharded: true,
  };
}
