import { type Checkpoint, hasTensors, type TensorCheckpoint } from "../../checkpoint.js";
import { ReaderError } from "../../errors.js";
import { isBoxed, type TorchTensor } from "../../pickle/value.js";
import { readCheckpoint } from "../../read.js";
import { elementCount } from "../../tensorData.js";
import { elementSize } from "../../torch/dtypes.js";
import { baseName, isPlainName, joinPath, parentPath, type TreeEntry, type TreeSource } from "../../tree.js";
import type { ShardedFinding } from "../findings.js";
import { attachSources, SourceCache } from "../sources.js";

/**
 * A Hugging Face sharded save: `model.safetensors.index.json` or `pytorch_model.bin.index.json`
 * (`{"metadata": {"total_size": ...}, "weight_map": {tensor: shard}}`, written by transformers'
 * save_pretrained and accelerate's save_model through huggingface_hub's split_torch_state_dict_into_shards)
 * beside shards named `<stem>-NNNNN-of-NNNNN.<ext>`. huggingface_hub always writes 5 digits; 6-digit names come
 * from other tools. Each shard is read by its own reader (safetensors header, torch zip).
 */

export interface HfShard {
  readonly file: string;
  readonly present: boolean;
  readonly size: number;
  /** From the name: its number, the total, and how many digits (null when the name is irregular). */
  readonly number: number | null;
  readonly total: number | null;
  readonly digits: number | null;
  /** What the index says the shard holds, in index order. */
  readonly listed: readonly string[];
}

export interface HfTensor {
  readonly name: string;
  readonly shard: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  /** Bytes of its elements (what total_size counts). */
  readonly byteLength: number;
}

export interface HfIndexCheckpoint {
  readonly kind: "hf-index";
  readonly tree: TreeSource;
  /** The directory the index and its shards are in. */
  readonly dir: string;
  readonly indexFile: string;
  readonly format: "safetensors" | "torch";
  /** `metadata.total_size`, or null. */
  readonly totalSize: number | null;
  /** The rest of `metadata` (transformers 5 adds `total_parameters`). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** `weight_map` in file order. */
  readonly weightMap: ReadonlyArray<readonly [string, string]>;
  readonly shards: readonly HfShard[];
  /** Every tensor the present shards hold, shard by shard, in each shard's own order. */
  readonly tensors: readonly HfTensor[];
  readonly findings: readonly ShardedFinding[];
}

const INDEX_NAMES = ["model.safetensors.index.json", "pytorch_model.bin.index.json"];
const SHARD_NAME = /^(.+)-(\d{5,6})-of-(\d{5,6})(\.[A-Za-z0-9]+)$/;
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** The index file of a directory: transformers' names first (safetensors preferred), else any `*.index.json`. */
export function findIndexFile(entries: readonly TreeEntry[]): string | undefined {
  const files = entries.filter((e) => e.kind === "file").map((e) => e.name);
  return INDEX_NAMES.find((n) => files.includes(n)) ?? files.find((n) => n.endsWith(".index.json"));
}

function shardNumbers(
  file: string,
): Pick<HfShard, "number" | "total" | "digits"> & { stem?: string; ext?: string } {
  const match = SHARD_NAME.exec(file);
  if (!match || (match[2] as string).length !== (match[3] as string).length)
    return { number: null, total: null, digits: null };
  return {
    number: Number(match[2]),
    total: Number(match[3]),
    digits: (match[2] as string).length,
    stem: match[1] as string,
    ext: match[4] as string,
  };
}

interface OpenedShard {
  readonly checkpoint: TensorCheckpoint;
  readonly tensors: Map<string, TorchTensor>;
}

const opened = new WeakMap<HfIndexCheckpoint, Map<string, OpenedShard>>();

/**
 * Opens the index at `path` (the index file, or a directory holding one) and every shard's header: the
 * safetensors JSON header, or a torch file's zip directory and pickle. No tensor bytes are read.
 */
export function openHfIndex(tree: TreeSource, path: string): HfIndexCheckpoint {
  let dir = path;
  let indexFile = tree.stat(path)?.kind === "file" ? baseName(path) : undefined;
  if (indexFile !== undefined) dir = parentPath(path);
  const entries = tree.list(dir) ?? [];
  indexFile ??= findIndexFile(entries);
  if (indexFile === undefined)
    throw new ReaderError("not-a-checkpoint", "no *.index.json here", { file: `${tree.name}/${dir}` });
  const index = readIndex(tree, joinPath(dir, indexFile));
  const findings: ShardedFinding[] = [];
  const sizes = new Map(entries.filter((e) => e.kind === "file").map((e) => [e.name, e.size]));
  const listedBy = new Map<string, string[]>();
  for (const [name, shard] of index.weightMap) {
    const list = listedBy.get(shard) ?? [];
    list.push(name);
    listedBy.set(shard, list);
  }
  const sources = new SourceCache(tree);
  const shardReaders = new Map<string, OpenedShard>();
  const shards: HfShard[] = [];
  const tensors: HfTensor[] = [];
  const files = [...listedBy.keys()].sort();
  for (const file of files) {
    const listed = listedBy.get(file) as string[];
    const numbers = shardNumbers(file);
    const size = isPlainName(file) ? sizes.get(file) : undefined;
    shards.push({
      file,
      present: size !== undefined,
      size: size ?? 0,
      number: numbers.number,
      total: numbers.total,
      digits: numbers.digits,
      listed,
    });
    if (size === undefined) {
      findings.push({ code: "shard-missing", severity: "error", file, tensors: listed });
      continue;
    }
    let shard: OpenedShard;
    try {
      shard = openShard(sources, joinPath(dir, file));
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      findings.push({
        code: "shard-unreadable",
        severity: "error",
        file,
        error: error.code,
        message: error.message,
      });
      continue;
    }
    shardReaders.set(file, shard);
    for (const [name, tensor] of shard.tensors) {
      tensors.push({
        name,
        shard: file,
        shape: tensor.shape,
        dtype: tensor.dtype,
        byteLength: elementCount(tensor.shape) * elementSize(tensor.dtype),
      });
    }
    const held = new Set(shard.tensors.keys());
    const listedHere = new Set(listed);
    for (const name of listed)
      if (!held.has(name)) findings.push({ code: "tensor-missing", severity: "error", name, shard: file });
    for (const name of held)
      if (!listedHere.has(name))
        findings.push({ code: "tensor-unlisted", severity: "warning", name, shard: file });
  }
  findings.push(...nameFindings(shards, entries, files));
  if (index.totalSize !== null && shards.every((s) => s.present && shardReaders.has(s.file))) {
    const actual = tensors.reduce((sum, t) => sum + t.byteLength, 0);
    if (actual !== index.totalSize) {
      findings.push({ code: "total-size-mismatch", severity: "warning", declared: index.totalSize, actual });
    }
  }
  const checkpoint: HfIndexCheckpoint = {
    kind: "hf-index",
    tree,
    dir,
    indexFile,
    format: indexFile.includes(".safetensors") ? "safetensors" : "torch",
    totalSize: index.totalSize,
    metadata: index.metadata,
    weightMap: index.weightMap,
    shards,
    tensors,
    findings,
  };
  attachSources(checkpoint, sources);
  opened.set(checkpoint, shardReaders);
  return checkpoint;
}

interface IndexJson {
  readonly totalSize: number | null;
  readonly metadata: Record<string, unknown>;
  readonly weightMap: Array<readonly [string, string]>;
}

function readIndex(tree: TreeSource, path: string): IndexJson {
  const source = tree.open(path);
  let json: unknown;
  try {
    if (source.size > MAX_INDEX_BYTES)
      throw new ReaderError("not-a-checkpoint", `an index of ${source.size} bytes`);
    json = JSON.parse(new TextDecoder().decode(source.read(0, source.size)));
  } catch (error) {
    if (error instanceof ReaderError) throw error;
    throw new ReaderError("not-a-checkpoint", `the index is not JSON (${(error as Error).message})`, {
      file: path,
    });
  } finally {
    source.close();
  }
  const map = (json as { weight_map?: unknown })?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new ReaderError("not-a-checkpoint", "the index has no weight_map object", { file: path });
  }
  const weightMap = Object.entries(map as Record<string, unknown>).filter(
    (pair): pair is [string, string] => typeof pair[1] === "string",
  );
  const metadata = { ...((json as { metadata?: Record<string, unknown> }).metadata ?? {}) };
  const total = metadata.total_size;
  delete metadata.total_size;
  return { totalSize: typeof total === "number" ? total : null, metadata, weightMap };
}

function openShard(sources: SourceCache, path: string): OpenedShard {
  const checkpoint: Checkpoint = readCheckpoint(sources.get(path));
  if (!hasTensors(checkpoint) || !isBoxed(checkpoint.root, "dict")) {
    throw new ReaderError("not-a-checkpoint", "the shard holds no state dict", { file: path });
  }
  const tensors = new Map<string, TorchTensor>();
  const root = checkpoint.root;
  root.keys.forEach((key, i) => {
    const value = root.values[i];
    if (typeof key === "string" && isBoxed(value, "tensor")) tensors.set(key, value);
  });
  return { checkpoint, tensors };
}

/** Irregular or inconsistent shard names, and files named like this index's shards that it never mentions. */
function nameFindings(
  shards: readonly HfShard[],
  entries: readonly TreeEntry[],
  files: readonly string[],
): ShardedFinding[] {
  const findings: ShardedFinding[] = [];
  const totals = new Set(shards.map((s) => s.total));
  const numbers = new Set(shards.map((s) => s.number));
  const stems = new Set<string>();
  for (const shard of shards) {
    const parsed = shardNumbers(shard.file);
    const regular =
      shard.number !== null &&
      totals.size === 1 &&
      shard.number >= 1 &&
      shard.number <= (shard.total as number) &&
      numbers.size === shards.length;
    if (!regular) findings.push({ code: "shard-name-irregular", severity: "info", file: shard.file });
    if (parsed.stem !== undefined) stems.add(`${parsed.stem}\u0000${parsed.ext}`);
  }
  const listed = new Set(files);
  for (const entry of entries) {
    const parsed = entry.kind === "file" ? shardNumbers(entry.name) : undefined;
    if (
      parsed?.stem !== undefined &&
      stems.has(`${parsed.stem}\u0000${parsed.ext}`) &&
      !listed.has(entry.name)
    ) {
      findings.push({ code: "shard-unreferenced", severity: "info", file: entry.name });
    }
  }
  return findings;
}

/** The shard a tensor is read from (opened with the index) and the tensor as that shard's reader describes it. */
export function hfShardTensor(
  checkpoint: HfIndexCheckpoint,
  entry: HfTensor,
): { checkpoint: TensorCheckpoint; tensor: TorchTensor } {
  const shard = opened.get(checkpoint)?.get(entry.shard);
  const tensor = shard?.tensors.get(entry.name);
  if (!shard || !tensor) throw new ReaderError("storage-missing", `no present shard holds ${entry.name}`);
  return { checkpoint: shard.checkpoint, tensor };
}
