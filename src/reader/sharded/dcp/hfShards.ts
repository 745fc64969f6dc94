import { ReaderError } from "../../errors.js";
import { readSafetensorsHeader, type SafetensorsFile } from "../../safetensors.js";
import { DimsCache } from "../../torch/dims.js";
import { joinPath, type TreeEntry, type TreeSource, withOpened } from "../../tree.js";
import type { ShardedFinding } from "../findings.js";
import { checkDcp } from "./check.js";
import type { DcpTensorProperties } from "./metadataTypes.js";
import { filesNamed, hfShardName, hfShardNumbers } from "./names.js";
import type { DcpCheckpoint, DcpChunk, DcpDataFile, DcpTensor } from "./open.js";

/**
 * DCP saved through `HuggingFaceStorageWriter(save_distributed=True)` (torch/distributed/checkpoint/
 * hf_storage.py; torchtitan's `last_save_in_hf`): every rank writes `shard-<rank+1>-model-<k>-of-<n>.safetensors`
 * files of its local shards, with `__metadata__.DCP_SHARDING_INFO` giving each tensor's `saved_offsets` in the
 * global tensor. No `.metadata` is written: `HuggingFaceStorageReader.read_metadata` rebuilds it from the
 * headers, a chunk per file entry, the global size the largest `offset + size` per dimension. With
 * `enable_consolidation` these files are in `sharded/` and the consolidated `model-<k>-of-<n>.safetensors`
 * with their index beside it (read as a Hugging Face index).
 *
 * Read as `read_metadata` reads it, so the checkpoint is the DCP checkpoint torch loads: chunks point at their
 * file's safetensors data (`offset` 0, where the file's blob starts, as with `SerializationFormat.SAFETENSORS`).
 * A rank whose files are all gone cannot be told from the files alone (torch then loads a smaller tensor); a
 * gap it leaves between other ranks' chunks is a `chunk-gap`.
 */

/** `CUSTOM_METADATA_KEY` in torch/distributed/checkpoint/_hf_utils.py. */
const SHARDING_INFO = "DCP_SHARDING_INFO";

/** Whether `entries` hold files `HuggingFaceStorageWriter` names when each rank saves its own shards. */
export function looksLikeDcpHfShards(entries: readonly TreeEntry[]): boolean {
  return entries.some((e) => e.kind === "file" && hfShardNumbers(e.name) !== null);
}

/** `TensorProperties(dtype=...)`: what `read_metadata` gives every tensor. */
function propertiesOf(dtype: string): DcpTensorProperties {
  return {
    dtype,
    layout: "strided",
    requiresGrad: false,
    memoryFormat: "contiguous_format",
    pinMemory: false,
  };
}

/** `saved_offsets` by tensor name, from a header's metadata; undefined when the file has none. */
function savedOffsets(header: SafetensorsFile, file: string): Map<string, number[]> | undefined {
  const text = header.metadata?.get(SHARDING_INFO);
  if (text === undefined) return undefined;
  const malformed = (why: string) =>
    new ReaderError("safetensors-malformed", `${SHARDING_INFO} in ${file}: ${why}`, { file });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw malformed("not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
    throw malformed("not an object");
  const out = new Map<string, number[]>();
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    const offsets = (entry as { saved_offsets?: unknown } | null)?.saved_offsets;
    if (!Array.isArray(offsets) || !offsets.every((n) => Number.isSafeInteger(n) && n >= 0))
      throw malformed(`${name} has no list of saved_offsets`);
    out.set(name, offsets as number[]);
  }
  return out;
}

interface Building {
  readonly fqn: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly chunks: DcpChunk[];
}

/** Adds one file's entries as chunks, as `read_metadata` does; a dtype or rank that disagrees throws. */
function addFile(
  byName: Map<string, Building>,
  file: DcpDataFile,
  header: SafetensorsFile,
  offsets: Map<string, number[]> | undefined,
  dims: DimsCache,
): void {
  // In `safe_open(...).keys()` order, which is sorted, as `read_metadata` walks them.
  const entries = [...header.tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    // torch indexes the sharding info by every key: a key it lacks fails the load (KeyError).
    const saved = offsets ? offsets.get(entry.name) : entry.shape.map(() => 0);
    if (saved === undefined || saved.length !== entry.shape.length) {
      throw new ReaderError(
        "safetensors-malformed",
        `${SHARDING_INFO} in ${file.name} gives ${saved === undefined ? "no" : `${saved.length}-dimensional`} saved_offsets for ${entry.name} [${entry.shape.join(", ")}]`,
        { file: file.name },
      );
    }
    const chunk: DcpChunk = {
      offsets: dims.intern(saved),
      sizes: dims.intern(entry.shape),
      storage: {
        relativePath: file.name,
        offset: 0,
        length: entry.end - entry.begin,
        transformDescriptors: null,
      },
      rank: file.rank,
    };
    const known = byName.get(entry.name);
    if (known === undefined) {
      byName.set(entry.name, {
        fqn: entry.name,
        dtype: entry.dtype,
        shape: entry.shape.map((n, d) => n + (saved[d] as number)),
        chunks: [chunk],
      });
      continue;
    }
    if (known.dtype !== entry.dtype || known.shape.length !== entry.shape.length) {
      throw new ReaderError(
        "safetensors-malformed",
        `${entry.name} is ${entry.dtype} [${entry.shape.join(", ")}] in ${file.name} but ${known.dtype} with ${known.shape.length} dimensions in another shard`,
        { file: file.name },
      );
    }
    known.chunks.push(chunk);
    known.shape.forEach((n, d) => {
      known.shape[d] = Math.max(n, (entry.shape[d] as number) + (saved[d] as number));
    });
  }
}

/**
 * Opens the shards in `dir` (listed as `entries`): every file's header, no tensor bytes. A file whose header
 * cannot be read is a `shard-unreadable` finding, and its chunks are missing from the tiling.
 */
export function openDcpHfShards(tree: TreeSource, dir: string, entries: readonly TreeEntry[]): DcpCheckpoint {
  const files = filesNamed(entries, hfShardNumbers);
  const byName = new Map<string, Building>();
  const unreadable: ShardedFinding[] = [];
  const dims = new DimsCache();
  for (const file of files) {
    try {
      withOpened(tree, joinPath(dir, file.name), (source) => {
        const header = readSafetensorsHeader(source);
        addFile(byName, file, header, savedOffsets(header, file.name), dims);
      });
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      unreadable.push({
        code: "shard-unreadable",
        severity: "error",
        file: file.name,
        error: error.code,
        message: error.message,
      });
    }
  }
  const tensors: DcpTensor[] = [...byName.values()].map((t) => ({
    fqn: t.fqn,
    path: null,
    shape: dims.intern(t.shape),
    dtype: t.dtype,
    properties: propertiesOf(t.dtype),
    chunks: t.chunks,
  }));
  const partial = {
    kind: "dcp",
    writer: "huggingface",
    tree,
    dir,
    metadataFile: null,
    metadata: null,
    files,
    tensors,
    bytesItems: [],
  } as const;
  const findings = checkDcp(partial, entries);
  return { ...partial, findings: [...unreadable, ...missingShards(files, tensors, findings), ...findings] };
}

/**
 * The shards a gap proves lost: no `.metadata` lists the files, so a missing one shows as a gap in the tensors
 * of its model file, and its name as the one rank that wrote other files has none for that model file. (A
 * rank lacking a model file with no gap is no loss: pipeline stages hold different files.)
 */
function missingShards(
  files: readonly DcpDataFile[],
  tensors: readonly DcpTensor[],
  findings: readonly ShardedFinding[],
): ShardedFinding[] {
  const gapped = new Set(findings.flatMap((f) => (f.code === "chunk-gap" ? [f.fqn] : [])));
  if (gapped.size === 0) return [];
  const present = new Set(files.map((f) => f.name));
  const ranks = [...new Set(files.map((f) => f.rank as number))].sort((a, b) => a - b);
  const totals = new Map<number, number>();
  for (const file of files) totals.set(file.index as number, hfShardNumbers(file.name)?.total ?? 0);
  // A tensor's model file is the one its chunks are in (fqn_to_index_mapping puts each FQN in one).
  const gappedByFile = new Map<number, string[]>();
  for (const tensor of tensors) {
    if (!gapped.has(tensor.fqn)) continue;
    const index = hfShardNumbers(tensor.chunks[0]?.storage?.relativePath ?? "")?.index;
    if (index === undefined) continue;
    const list = gappedByFile.get(index) ?? [];
    list.push(tensor.fqn);
    gappedByFile.set(index, list);
  }
  const out: ShardedFinding[] = [];
  for (const [index, items] of gappedByFile) {
    for (const rank of ranks) {
      const file = hfShardName(rank, index, totals.get(index) ?? index);
      if (!present.has(file)) out.push({ code: "file-missing", severity: "error", file, rank, items });
    }
  }
  return out;
}
