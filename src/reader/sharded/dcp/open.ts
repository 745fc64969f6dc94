import { ReaderError } from "../../errors.js";
import { joinPath, type TreeEntry, type TreeSource } from "../../tree.js";
import type { ShardedFinding } from "../findings.js";
import { checkDcp } from "./check.js";
import { looksLikeDcpHfShards, openDcpHfShards } from "./hfShards.js";
import {
  type DcpMetadata,
  type DcpStorageInfo,
  type DcpTensorProperties,
  decodeDcpMetadata,
} from "./metadata.js";
import {
  DCP_METADATA_FILE,
  dataFileNumbers,
  filesNamed,
  isDcpDataFile,
  isPartialMetadata,
  rankOfFile,
} from "./names.js";

/** A data file of the directory, with the rank and file counter its name encodes. */
export interface DcpDataFile {
  readonly name: string;
  readonly rank: number | null;
  readonly index: number | null;
  readonly size: number;
}

/** One chunk as `.metadata` declares it, with where its bytes are (`null`: `storage_data` has no entry). */
export interface DcpChunk {
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
  readonly storage: DcpStorageInfo | null;
  /** The rank that wrote it, from the data file's name. */
  readonly rank: number | null;
}

export interface DcpTensor {
  /** The flattened FQN DCP keys it by (`model.fc1.weight`, `optimizer.state.fc1.weight.exp_avg`). */
  readonly fqn: string;
  /** Keys into the nested state dict the save came from (planner data), or null when not recorded. */
  readonly path: ReadonlyArray<string | number> | null;
  readonly shape: readonly number[];
  readonly dtype: string;
  readonly properties: DcpTensorProperties;
  readonly chunks: readonly DcpChunk[];
}

/** A `BytesStorageMetadata` item: any Python value, `torch.save`d into a data file. */
export interface DcpBytesItem {
  readonly fqn: string;
  readonly path: ReadonlyArray<string | number> | null;
  readonly storage: DcpStorageInfo | null;
  readonly rank: number | null;
}

export interface DcpCheckpoint {
  readonly kind: "dcp";
  /**
   * Which storage writer saved it: `filesystem` (`FileSystemWriter`: `.metadata` and `__<rank>_<n>.distcp`)
   * or `huggingface` (`HuggingFaceStorageWriter` with every rank saving: safetensors shards whose headers
   * carry the sharding, and no `.metadata`; see `hfShards.ts`).
   */
  readonly writer: "filesystem" | "huggingface";
  readonly tree: TreeSource;
  /** The checkpoint directory within the tree. */
  readonly dir: string;
  /** `.metadata` when it is there, else null (the save did not finish). */
  readonly metadataFile: string | null;
  readonly metadata: DcpMetadata | null;
  readonly files: readonly DcpDataFile[];
  readonly tensors: readonly DcpTensor[];
  readonly bytesItems: readonly DcpBytesItem[];
  /** Completeness: every file present and long enough, chunks tiling each tensor. */
  readonly findings: readonly ShardedFinding[];
}

/**
 * `.metadata` or a data file: what makes a directory a DCP checkpoint (finished or not); or the safetensors
 * shards `HuggingFaceStorageWriter` writes when every rank saves.
 */
export function looksLikeDcp(entries: readonly TreeEntry[]): boolean {
  return (
    entries.some((e) => e.kind === "file" && (e.name === DCP_METADATA_FILE || isDcpDataFile(e.name))) ||
    looksLikeDcpHfShards(entries)
  );
}

/**
 * `storage_data` by FQN, then chunk offsets (null: a bytes item), as the `MetadataIndex` dict keys it; a
 * later equal key wins, as in the dict. A tensor's few entries are compared rather than keyed by a string per
 * chunk (hundreds of thousands of them in a large run); a tensor sharded into many chunks (a run of hundreds of
 * ranks) gets a map of its own, so that finding each chunk does not search all of them.
 */
export function storageLookup(storage: DcpMetadata["storage"]) {
  type Entry = { readonly offsets: readonly number[] | null; readonly info: DcpStorageInfo };
  const byFqn = new Map<string, Entry[]>();
  for (const { index, info } of storage) {
    const list = byFqn.get(index.fqn);
    if (list === undefined) byFqn.set(index.fqn, [{ offsets: index.offset, info }]);
    else list.push({ offsets: index.offset, info });
  }
  const keyed = new Map<string, Map<string, DcpStorageInfo>>();
  const offsetsKey = (offsets: readonly number[] | null) => (offsets === null ? "" : `,${offsets.join(",")}`);
  return (fqn: string, offsets: readonly number[] | null): DcpStorageInfo | null => {
    const list = byFqn.get(fqn);
    if (list === undefined) return null;
    if (list.length > SEARCHED_ENTRIES) {
      let map = keyed.get(fqn);
      if (map === undefined) {
        map = new Map(list.map((e) => [offsetsKey(e.offsets), e.info]));
        keyed.set(fqn, map);
      }
      return map.get(offsetsKey(offsets)) ?? null;
    }
    for (let i = list.length - 1; i >= 0; i--) {
      const entry = list[i] as Entry;
      if (sameOffsets(entry.offsets, offsets)) return entry.info;
    }
    return null;
  };
}

/** Up to this many chunks of one tensor are searched (see `storageLookup`). */
const SEARCHED_ENTRIES = 16;

function sameOffsets(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.length !== b.length) return false;
  for (let d = 0; d < a.length; d++) if (a[d] !== b[d]) return false;
  return true;
}

/**
 * Opens the DCP checkpoint in `dir`: reads `.metadata` (one read of the whole file) and lists the directory;
 * no data file is opened. A directory of data files without `.metadata` opens too, with no tensors and a
 * `metadata-missing` finding.
 */
export function openDcp(tree: TreeSource, dir: string): DcpCheckpoint {
  const entries = tree.list(dir) ?? [];
  const files = filesNamed(entries, dataFileNumbers);
  const hasMetadata = entries.some((e) => e.kind === "file" && e.name === DCP_METADATA_FILE);
  if (!hasMetadata && files.length === 0 && looksLikeDcpHfShards(entries))
    return openDcpHfShards(tree, dir, entries);
  if (!hasMetadata) {
    const partial = entries.filter((e) => isPartialMetadata(e.name)).map((e) => e.name);
    const finding: ShardedFinding = {
      code: "metadata-missing",
      severity: "error",
      dataFiles: files.map((f) => f.name),
      ranks: [...new Set(files.map((f) => f.rank as number))],
      partial,
    };
    return {
      kind: "dcp",
      writer: "filesystem",
      tree,
      dir,
      metadataFile: null,
      metadata: null,
      files,
      tensors: [],
      bytesItems: [],
      findings: [finding],
    };
  }
  const metadata = readMetadata(tree, joinPath(dir, DCP_METADATA_FILE));
  const storageOf = storageLookup(metadata.storage);
  const pathOf = (fqn: string) => metadata.plannerData?.get(fqn) ?? null;
  // A handful of data files hold every chunk: each name is parsed once.
  const ranks = new Map<string, number | null>();
  const rankOf = (info: DcpStorageInfo | null) => {
    if (info === null) return null;
    let rank = ranks.get(info.relativePath);
    if (rank === undefined) {
      rank = rankOfFile(info.relativePath);
      ranks.set(info.relativePath, rank);
    }
    return rank;
  };
  const tensors: DcpTensor[] = [];
  const bytesItems: DcpBytesItem[] = [];
  for (const [fqn, item] of metadata.items) {
    if (item.kind === "bytes") {
      const info = storageOf(fqn, null);
      bytesItems.push({ fqn, path: pathOf(fqn), storage: info, rank: rankOf(info) });
      continue;
    }
    const chunks = item.chunks.map((chunk) => {
      const info = storageOf(fqn, chunk.offsets);
      return { offsets: chunk.offsets, sizes: chunk.sizes, storage: info, rank: rankOf(info) };
    });
    tensors.push({
      fqn,
      path: pathOf(fqn),
      shape: item.size,
      dtype: item.properties.dtype,
      properties: item.properties,
      chunks,
    });
  }
  const partial = {
    kind: "dcp",
    writer: "filesystem",
    tree,
    dir,
    metadataFile: DCP_METADATA_FILE,
    metadata,
    files,
    tensors,
    bytesItems,
  } as const;
  return { ...partial, findings: checkDcp(partial, entries) };
}

function readMetadata(tree: TreeSource, path: string): DcpMetadata {
  const source = tree.open(path);
  try {
    return decodeDcpMetadata(source.read(0, source.size));
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
    // Reports name the checkpoint's directory: the message says which of its files is at fault.
    const message = error.message.startsWith(".metadata") ? error.message : `.metadata: ${error.message}`;
    throw new ReaderError(error.code, message, {
      file: error.file ?? `${tree.name}/${path}`,
      ...(error.offset === undefined ? {} : { offset: error.offset }),
    });
  } finally {
    source.close();
  }
}
