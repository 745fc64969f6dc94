import type { TreeEntry } from "../../tree.js";
import type { DcpDataFile } from "./open.js";

/** The file `FileSystemWriter.finish` writes last (`_metadata_fn`): its presence marks a finished save. */
export const DCP_METADATA_FILE = ".metadata";
/** `__<rank>_<n>.distcp`; torch 1.13 dev builds wrote the same names without the suffix. */
const DATA_FILE = /^__(\d+)_(\d+)(?:\.distcp)?$/;
/** What a save that did not finish leaves: the metadata half-written, or per-rank metadata (no collectives). */
const PARTIAL_METADATA = /^(?:\.metadata\.tmp|__\d+\.metadata(?:\.tmp)?)$/;

export function isDcpDataFile(name: string): boolean {
  return DATA_FILE.test(name);
}

export function isPartialMetadata(name: string): boolean {
  return PARTIAL_METADATA.test(name);
}

/** The rank and the writer's file counter a data file's name encodes, or null for another name. */
export function dataFileNumbers(name: string): { readonly rank: number; readonly index: number } | null {
  const match = DATA_FILE.exec(name);
  return match ? { rank: Number(match[1]), index: Number(match[2]) } : null;
}

export function rankOfFile(name: string): number | null {
  return dataFileNumbers(name)?.rank ?? hfShardNumbers(name)?.rank ?? null;
}

/**
 * `shard-<shard>-model-<k>-of-<n>.safetensors`, which `HuggingFaceStorageWriter` names each rank's files when
 * every rank saves (`_gen_file_name`: `shard_index` counts plans from 1, so rank r writes shard r + 1).
 */
const HF_SHARD_FILE = /^shard-(\d{5,})-model-(\d{5,})-of-(\d{5,})\.safetensors$/;

/**
 * The rank, the model file's number and the number of model files a `HuggingFaceStorageWriter` shard's name
 * encodes, or null for another name.
 */
export function hfShardNumbers(
  name: string,
): { readonly rank: number; readonly index: number; readonly total: number } | null {
  const match = HF_SHARD_FILE.exec(name);
  const shard = match ? Number(match[1]) : 0;
  return match && shard >= 1 ? { rank: shard - 1, index: Number(match[2]), total: Number(match[3]) } : null;
}

/** The name `_gen_file_name` gives rank `rank`'s part of model file `index` of `total` (numbers `zfill(5)`). */
export function hfShardName(rank: number, index: number, total: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `shard-${pad(rank + 1)}-model-${pad(index)}-of-${pad(total)}.safetensors`;
}

/** The files of `entries` whose names `numbersOf` reads (a rank and a file number), in rank, then number order. */
export function filesNamed(
  entries: readonly TreeEntry[],
  numbersOf: (name: string) => { readonly rank: number; readonly index: number } | null,
): DcpDataFile[] {
  const out: DcpDataFile[] = [];
  for (const entry of entries) {
    const numbers = entry.kind === "file" ? numbersOf(entry.name) : null;
    if (numbers) out.push({ name: entry.name, rank: numbers.rank, index: numbers.index, size: entry.size });
  }
  return out.sort(
    (a, b) => (a.rank as number) - (b.rank as number) || (a.index as number) - (b.index as number),
  );
}
