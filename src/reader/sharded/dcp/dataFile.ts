import { BlockCacheSource } from "../../blockCacheSource.js";
import type { ByteSource } from "../../source.js";
import { joinPath } from "../../tree.js";
import { sourcesOf } from "../sources.js";
import type { DcpCheckpoint } from "./open.js";

/**
 * A `.distcp` data file as its items' readers read it. Every item is a `torch.save` archive, and opening one
 * is a dozen small reads (end records, central directory, local headers, data.pkl). When items average a few
 * kilobytes (small tensors: the headers are most of each item) nearly every byte is read anyway, and large
 * cached blocks make that a few hundred reads instead of two per item; otherwise small blocks serve the
 * headers and tensor bytes go straight through.
 */

/** Items of at most this size on average are read in large blocks. */
const SMALL_ITEM = 16 * 1024;
const LARGE_BLOCK = 256 * 1024;
/** What the large blocks of all of one checkpoint's files may hold at once (a run of hundreds of ranks). */
const LARGE_BLOCKS_BUDGET = 64 * 1024 * 1024;

/** `raw` (a data file of `items` items, one of `files` files read at once) behind a block cache. */
export function dataFileReader(raw: ByteSource, items: number, files = 1): BlockCacheSource {
  if (items === 0 || raw.size / items > SMALL_ITEM) return new BlockCacheSource(raw);
  // Two blocks: an item that straddles a block's end needs both.
  const perFile = LARGE_BLOCKS_BUDGET / Math.max(1, files) / 2;
  const blockSize = Math.max(4096, Math.min(LARGE_BLOCK, 2 ** Math.floor(Math.log2(perFile))));
  return new BlockCacheSource(raw, { blockSize, maxBlocks: blockSize === LARGE_BLOCK ? 4 : 2 });
}

interface DataFiles {
  /** Relative path -> path in the tree: joining it for every chunk cost more than reading the chunk. */
  readonly paths: Map<string, string>;
  /** How many items `storage_data` puts in each data file. */
  readonly counts: Map<string, number>;
  /** By the open file: closing the checkpoint's sources and reading again opens new ones. */
  readonly readers: WeakMap<ByteSource, ByteSource>;
}

const perCheckpoint = new WeakMap<DcpCheckpoint, DataFiles>();

function dataFilesOf(checkpoint: DcpCheckpoint): DataFiles {
  let files = perCheckpoint.get(checkpoint);
  if (!files) {
    const counts = new Map<string, number>();
    for (const { info } of checkpoint.metadata?.storage ?? [])
      counts.set(info.relativePath, (counts.get(info.relativePath) ?? 0) + 1);
    files = { paths: new Map(), counts, readers: new WeakMap() };
    perCheckpoint.set(checkpoint, files);
  }
  return files;
}

/** The data file `relativePath` of `checkpoint`; `inBulk`: read through `dataFileReader`. */
export function dcpDataFile(checkpoint: DcpCheckpoint, relativePath: string, inBulk = false): ByteSource {
  const files = dataFilesOf(checkpoint);
  let path = files.paths.get(relativePath);
  if (path === undefined) {
    path = joinPath(checkpoint.dir, relativePath);
    files.paths.set(relativePath, path);
  }
  const raw = sourcesOf(checkpoint).get(path);
  if (!inBulk) return raw;
  let reader = files.readers.get(raw);
  if (!reader) {
    reader = dataFileReader(raw, files.counts.get(relativePath) ?? 0, files.counts.size);
    files.readers.set(raw, reader);
  }
  return reader;
}
