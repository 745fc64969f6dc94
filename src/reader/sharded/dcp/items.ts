import { type Checkpoint, hasTensors } from "../../checkpoint.js";
import { ReaderError } from "../../errors.js";
import { isBoxed } from "../../pickle/value.js";
import { readCheckpoint } from "../../read.js";
import { looksLikeSafetensors, readSafetensorsHeader } from "../../safetensors.js";
import { BufferSource, type ByteSource } from "../../source.js";
import { contiguousByteRange } from "../../tensorData.js";
import { elementSize } from "../../torch/dtypes.js";
import { joinPath } from "../../tree.js";
import { looksLikeZip } from "../../zip.js";
import { type AssembleOptions, assembleRowMajor, type Piece, volume } from "../assemble.js";
import { RangeSource } from "../rangeSource.js";
import { rowMajorReader } from "../tensorReader.js";
import { dcpDataFile } from "./dataFile.js";
import { ItemLayouts, itemLayoutOf, WHOLE_ITEM } from "./itemLayout.js";
import type { DcpStorageInfo } from "./metadata.js";
import type { DcpBytesItem, DcpCheckpoint, DcpChunk, DcpTensor } from "./open.js";

/**
 * The bytes of DCP items, as `FileSystemWriter._write_item` wrote them (torch/distributed/checkpoint/
 * filesystem.py): with the default `SerializationFormat.TORCH_SAVE` every item, tensor chunk or bytes item, is
 * a complete `torch.save` archive at `[offset, offset + length)` of its data file (a tensor chunk is the
 * narrowed local shard, cloned when its storage was larger, so its own storage is its bytes; torch 1.13 wrote
 * one file per item, later versions one per rank and writer thread). With `SerializationFormat.SAFETENSORS`
 * the bytes items come first and every tensor of the file is in one safetensors blob after them; a tensor's
 * `offset` is where that blob starts and `length` its element bytes.
 */

function itemError(checkpoint: DcpCheckpoint, info: DcpStorageInfo, message: string): ReaderError {
  return new ReaderError(
    "storage-missing",
    `${info.relativePath} bytes ${info.offset}..${info.offset + info.length}: ${message}`,
    {
      file: `${checkpoint.tree.name}/${joinPath(checkpoint.dir, info.relativePath)}`,
    },
  );
}

function assertReadable(checkpoint: DcpCheckpoint, info: DcpStorageInfo): void {
  if (info.transformDescriptors && info.transformDescriptors.length > 0) {
    throw new ReaderError(
      "unsupported-format",
      `${info.relativePath}: the item was written through ${info.transformDescriptors.join(", ")}, which ckpt does not undo`,
    );
  }
  const source = dcpDataFile(checkpoint, info.relativePath);
  if (info.offset + info.length > source.size) {
    throw itemError(checkpoint, info, `the file has ${source.size} bytes`);
  }
}

/**
 * One item's bytes opened as a checkpoint of its own (a `torch.save` archive read by the usual readers): for a
 * bytes item, the Python value torch.load returns (`root`); for a tensor chunk, the chunk tensor.
 */
export function openDcpItem(checkpoint: DcpCheckpoint, info: DcpStorageInfo): Checkpoint {
  assertReadable(checkpoint, info);
  return readCheckpoint(itemSource(checkpoint, info));
}

/**
 * The item's bytes as a source of their own. A small item (a small tensor's chunk: a couple of kilobytes,
 * most of it zip headers) is read in one piece: opening its archive is a dozen reads of a few bytes, each a
 * system call or a request.
 */
function itemSource(checkpoint: DcpCheckpoint, info: DcpStorageInfo, inBulk = false): ByteSource {
  const file = dcpDataFile(checkpoint, info.relativePath, inBulk);
  const name = `${file.name}[${info.offset}..${info.offset + info.length}]`;
  if (info.length <= WHOLE_ITEM) return new BufferSource(file.read(info.offset, info.length), name);
  return new RangeSource(file, info.offset, info.length, name);
}

/** A bytes item's value, as `DefaultLoadPlanner.load_bytes` gets it (`torch.load` of the item's bytes). */
export function readDcpBytesItem(checkpoint: DcpCheckpoint, item: DcpBytesItem): Checkpoint {
  // Judging, reporting and converting each ask for the same few items: each is opened once.
  const known = openedItems.get(item);
  if (known instanceof ReaderError) throw known;
  if (known) return known;
  try {
    if (!item.storage) throw new ReaderError("storage-missing", `${item.fqn} has no storage_data entry`);
    const opened = openDcpItem(checkpoint, item.storage);
    openedItems.set(item, opened);
    return opened;
  } catch (error) {
    if (error instanceof ReaderError) openedItems.set(item, error);
    throw error;
  }
}

/** Each bytes item's opened archive (or why it cannot be opened), for the life of its checkpoint's items. */
const openedItems = new WeakMap<DcpBytesItem, Checkpoint | ReaderError>();

/** One chunk as a piece of its tensor: the item opened on first read, its tensor checked against the chunk. */
function chunkPiece(checkpoint: DcpCheckpoint, tensor: DcpTensor, chunk: DcpChunk, inBulk: boolean): Piece {
  let read: Piece["read"] | undefined;
  return {
    offsets: chunk.offsets,
    sizes: chunk.sizes,
    read(start, into) {
      read ??= openChunk(checkpoint, tensor, chunk, inBulk);
      read(start, into);
    },
  };
}

function openChunk(
  checkpoint: DcpCheckpoint,
  tensor: DcpTensor,
  chunk: DcpChunk,
  inBulk: boolean,
): Piece["read"] {
  const info = chunk.storage;
  if (!info) throw new ReaderError("storage-missing", `a chunk of ${tensor.fqn} has no storage_data entry`);
  assertReadable(checkpoint, info);
  const file = dcpDataFile(checkpoint, info.relativePath, inBulk);
  // A small item is read whole first, so its head costs no read of its own.
  const source = itemSource(checkpoint, info, inBulk);
  const head =
    source.size >= 16 ? source.read(0, 16) : file.read(info.offset, Math.min(16, file.size - info.offset));
  if (!looksLikeZip(head) && looksLikeSafetensors(head, file.size - info.offset)) {
    return safetensorsChunk(checkpoint, tensor, chunk, info);
  }
  const known = knownLayouts(checkpoint, info.relativePath);
  const alike = known.find(source);
  if (alike) {
    checkSaved(checkpoint, info, tensor, chunk, alike);
    return (start, into) => {
      if (start + into.length > alike.bytes)
        throw itemError(checkpoint, info, "read past the tensor's bytes");
      source.readInto(into, alike.offset + start);
    };
  }
  const item = readCheckpoint(source);
  const saved = hasTensors(item) && isBoxed(item.root, "tensor") ? item.root : undefined;
  if (!saved || !hasTensors(item)) throw itemError(checkpoint, info, "not a torch.save'd tensor");
  checkSaved(checkpoint, info, tensor, chunk, saved);
  // A contiguous little-endian chunk (nearly all) is its record's bytes: items laid out as this one is
  // (the same archive but for the storage's bytes and CRCs) keep them at the same offset.
  const direct = contiguousByteRange(item, saved);
  const layout = direct ? itemLayoutOf(source, READ_BY_LOADER) : undefined;
  if (direct && layout) {
    known.remember(layout, {
      offset: direct.offset,
      bytes: direct.length,
      dtype: saved.dtype,
      shape: saved.shape,
    });
  }
  return rowMajorReader(item, saved);
}

function checkSaved(
  checkpoint: DcpCheckpoint,
  info: DcpStorageInfo,
  tensor: DcpTensor,
  chunk: DcpChunk,
  saved: { readonly dtype: string; readonly shape: readonly number[] },
): void {
  if (saved.dtype !== tensor.dtype || !sameSizes(saved.shape, chunk.sizes)) {
    throw itemError(
      checkpoint,
      info,
      `holds a ${saved.dtype} [${saved.shape.join(", ")}] tensor where .metadata declares ${tensor.dtype} [${chunk.sizes.join(", ")}]`,
    );
  }
}

function sameSizes(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

/** Records besides data.pkl whose contents decide how the tensor's bytes are read. */
const READ_BY_LOADER = /(?:^|\/)(?:byteorder|version|\.format_version)$/;

/** What opening a tensor item found: where its tensor's bytes are in it, and what tensor they make. */
interface KnownItem {
  readonly offset: number;
  readonly bytes: number;
  readonly dtype: string;
  readonly shape: readonly number[];
}

/**
 * Per checkpoint and data file, by item length: the layouts of tensor items opened so far. Opening an item's
 * archive and unpickling its data.pkl cost ~65 µs; an item laid out as one already opened needs only the
 * comparison (`itemLayout.ts`), as the security scan does.
 */
const layoutsByCheckpoint = new WeakMap<DcpCheckpoint, Map<string, ItemLayouts<KnownItem>>>();

function knownLayouts(checkpoint: DcpCheckpoint, file: string): ItemLayouts<KnownItem> {
  let files = layoutsByCheckpoint.get(checkpoint);
  if (!files) {
    files = new Map();
    layoutsByCheckpoint.set(checkpoint, files);
  }
  let known = files.get(file);
  if (!known) {
    known = new ItemLayouts();
    files.set(file, known);
  }
  return known;
}

function safetensorsChunk(
  checkpoint: DcpCheckpoint,
  tensor: DcpTensor,
  chunk: DcpChunk,
  info: DcpStorageInfo,
): Piece["read"] {
  const file = dcpDataFile(checkpoint, info.relativePath);
  const blob = new RangeSource(file, info.offset, file.size - info.offset);
  const entry = readSafetensorsHeader(blob).tensors.find((t) => t.name === tensor.fqn);
  if (!entry || entry.dtype !== tensor.dtype || entry.shape.join(",") !== chunk.sizes.join(",")) {
    throw itemError(
      checkpoint,
      info,
      `the safetensors blob holds no ${tensor.dtype} [${chunk.sizes.join(", ")}] ${tensor.fqn}`,
    );
  }
  return (start, into) => {
    blob.readInto(into, entry.begin + start);
  };
}

/** The pieces of a tensor: one per non-empty chunk. */
export function dcpPieces(checkpoint: DcpCheckpoint, tensor: DcpTensor, inBulk = false): Piece[] {
  return tensor.chunks
    .filter((chunk) => volume(chunk.sizes) > 0)
    .map((chunk) => chunkPiece(checkpoint, tensor, chunk, inBulk));
}

/**
 * The consolidated tensor's bytes in row-major order (what `dcp_to_torch_save` writes for it), streamed with
 * memory bounded by `chunkBytes`.
 */
export function dcpTensorBytes(
  checkpoint: DcpCheckpoint,
  tensor: DcpTensor,
  options: AssembleOptions = {},
): Generator<Uint8Array> {
  const pieces = dcpPieces(checkpoint, tensor, options.inBulk === true);
  return assembleRowMajor(tensor.shape, elementSize(tensor.dtype), pieces, options);
}
