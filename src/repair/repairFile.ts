import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, resolve } from "node:path";
import { BlockCacheSource } from "../reader/blockCacheSource.js";
import type { TorchLegacyCheckpoint, TorchZipCheckpoint } from "../reader/checkpoint.js";
import { ReaderError } from "../reader/errors.js";
import { openCheckpoint } from "../reader/open.js";
import { parsePickle } from "../reader/pickle/machine.js";
import type { TorchStorage } from "../reader/pickle/value.js";
import type { ByteSource } from "../reader/source.js";
import { StorageTable } from "../reader/torch/idMap.js";
import { cachingStorageResolver, torchPickleHooks } from "../reader/torch/rebuild.js";
import { writeFileAtomicWith } from "./atomicWrite.js";
import { type CompactPlan, compactPickle, type StoragePiece } from "./compact.js";
import { gatheredChunks } from "./gather.js";
import { type EditOutcome, editPickle, legacyPidsToZip, type PickleEdit } from "./pickleEdit.js";
import { type RecordChunk, TorchZipWriter } from "./zipWriter.js";

/**
 * `ckpt repair FILE -o OUT`: a corrected copy of a checkpoint in torch's zip format. Tensor records are copied
 * byte for byte (streamed, CRCs computed as they pass), only `data.pkl` changes, and the output appears at
 * its path only once complete (temp file, fsync, rename). The input is opened read-only and never written.
 */
export interface RepairFileResult {
  readonly input: string;
  readonly output: string;
  readonly inputFormat: "torch-zip" | "torch-legacy";
  readonly outcomes: EditOutcome[];
  readonly records: number;
  readonly sizeBytes: number;
  /** Storage records left out because nothing references them any more (after --drop). */
  readonly droppedRecords: string[];
  /** With --compact: storage bytes before and after, and the storages cut. */
  readonly compacted?: {
    readonly storages: number;
    readonly bytesBefore: number;
    readonly bytesAfter: number;
  };
}

export interface RepairFileOptions {
  /** Cuts each storage to the bytes its tensors reach (`repair --compact`). */
  readonly compact?: boolean;
}

const COPY_CHUNK = 8 * 1024 * 1024;

/** The bytes of a range, through one reused buffer: each chunk is written before the next is read. */
function* rangeChunks(source: ByteSource, offset: number, length: number): Generator<RecordChunk> {
  const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, length));
  for (let done = 0; done < length; done += COPY_CHUNK) {
    const size = Math.min(COPY_CHUNK, length - done);
    yield source.readInto(size === buffer.length ? buffer : buffer.subarray(0, size), offset + done);
  }
}

/** Refuses to write over the input in any disguise: same path, symlink to it, hard link to it. */
export function assertNotInput(input: string, output: string): void {
  const same = (() => {
    if (resolve(input) === resolve(output)) return true;
    if (!existsSync(output)) return false;
    if (realpathSync(input) === realpathSync(output)) return true;
    const a = statSync(input);
    const b = statSync(output);
    return a.dev === b.dev && a.ino === b.ino;
  })();
  if (same) throw new ReaderError("output-is-input", `-o ${output} is the input ${input} itself`);
}

/** The storage keys the pickle references, with the size each must have. */
function referencedStorages(pickle: Uint8Array): StorageTable {
  const storages = new StorageTable();
  parsePickle(pickle, { hooks: torchPickleHooks(cachingStorageResolver(storages)) });
  return storages;
}

/** torch's archive folder for a path save: the basename without its last extension. */
export function archiveNameFor(output: string): string {
  const name = basename(output);
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/** Reads of a storage that starts at `offset` of `source`, served from cached blocks (a gather's rows are small). */
function blockReader(source: ByteSource, offset: number): (at: number, length: number) => Uint8Array {
  const cached = new BlockCacheSource(source, { blockSize: 1024 * 1024, maxBlocks: 4 });
  return (at, length) => cached.read(offset + at, length);
}

/** A compacted storage's pieces, each its own record, read from the old storage's bytes. */
function writePieces(
  writer: TorchZipWriter,
  checkpoint: TorchZipCheckpoint | TorchLegacyCheckpoint,
  storage: TorchStorage,
  pieces: readonly StoragePiece[],
): number {
  const located = checkpoint.locate(storage);
  if (!located) throw new ReaderError("storage-missing", `storage ${storage.key} has no bytes in the file`);
  const whole =
    located.kind === "zip-entry" && checkpoint.format === "torch-zip"
      ? checkpoint.archive.readEntry(located.entry, Number.MAX_SAFE_INTEGER)
      : undefined;
  for (const piece of pieces) {
    const record = `data/${piece.key}`;
    if (piece.gather) {
      // The view's elements, gathered as .clone() would lay them out.
      const read = whole
        ? (at: number, length: number) => whole.subarray(at, at + length)
        : located.kind === "range"
          ? blockReader(checkpoint.source, located.offset)
          : undefined;
      if (read) writer.addRecordStream(record, piece.length, gatheredChunks(read, piece.gather));
    } else if (whole) writer.addRecord(record, whole.subarray(piece.start, piece.start + piece.length));
    else if (located.kind === "range")
      writer.addRecordStream(
        record,
        piece.length,
        rangeChunks(checkpoint.source, located.offset + piece.start, piece.length),
      );
  }
  return pieces.length;
}

function writeZipRecords(
  writer: TorchZipWriter,
  checkpoint: TorchZipCheckpoint,
  pickle: Uint8Array,
  keep: Set<string>,
  dropped: string[],
  plan: CompactPlan | undefined,
) {
  const { archive, source } = checkpoint;
  const seen = new Set<string>();
  let count = 0;
  for (const entry of archive.entries) {
    const record = archive.recordName(entry);
    if (record === undefined || seen.has(record)) continue; // torch reads the first of duplicates
    seen.add(record);
    if (record === ".data/serialization_id") continue; // a hash of the old records: stale once they change
    if (record === "data.pkl") {
      writer.addRecord(record, pickle);
    } else if (record.startsWith("data/") && !keep.has(record.slice(5))) {
      dropped.push(record);
      continue;
    } else if (plan?.pieces.has(record.slice(5))) {
      const key = record.slice(5);
      count += writePieces(
        writer,
        checkpoint,
        plan.storages.get(key) as TorchStorage,
        plan.pieces.get(key) ?? [],
      );
      continue;
    } else if (entry.method === 0) {
      writer.addRecordStream(
        record,
        entry.uncompressedSize,
        rangeChunks(source, archive.dataOffset(entry), entry.uncompressedSize),
      );
    } else {
      writer.addRecord(record, archive.readEntry(entry, Number.MAX_SAFE_INTEGER));
    }
    count++;
  }
  return count;
}

function writeLegacyRecords(
  writer: TorchZipWriter,
  checkpoint: TorchLegacyCheckpoint,
  pickle: Uint8Array,
  keep: Set<string>,
  dropped: string[],
  plan: CompactPlan | undefined,
) {
  writer.addRecord("data.pkl", pickle);
  writer.addRecord("byteorder", new TextEncoder().encode("little"));
  let count = 2;
  const storages = referencedStorages(pickle);
  for (const key of checkpoint.storageKeys) {
    if (!keep.has(key)) {
      dropped.push(`data/${key}`);
      continue;
    }
    const pieces = plan?.pieces.get(key);
    const original = plan?.storages.get(key);
    if (pieces && original) {
      count += writePieces(writer, checkpoint, original, pieces);
      continue;
    }
    const storage = storages.get(key);
    const range = storage ? checkpoint.locate(storage) : undefined;
    if (range?.kind !== "range")
      throw new ReaderError("storage-missing", `storage ${key} has no bytes in the legacy file`);
    writer.addRecordStream(
      `data/${key}`,
      range.length,
      rangeChunks(checkpoint.source, range.offset, range.length),
    );
    count++;
  }
  writer.addRecord("version", new TextEncoder().encode("3\n"));
  return count + 1;
}

export function repairCheckpointFile(
  input: string,
  output: string,
  edits: readonly PickleEdit[],
  options: RepairFileOptions = {},
): RepairFileResult {
  assertNotInput(input, output);
  const checkpoint = openCheckpoint(input);
  try {
    if (checkpoint.format !== "torch-zip" && checkpoint.format !== "torch-legacy") {
      throw new ReaderError(
        "unsupported-format",
        `ckpt repairs torch.save checkpoints; this is ${checkpoint.format}`,
      );
    }
    const original =
      checkpoint.format === "torch-zip"
        ? checkpoint.archive.readEntry(
            checkpoint.archive.get("data.pkl") as NonNullable<ReturnType<typeof checkpoint.archive.get>>,
            Number.MAX_SAFE_INTEGER,
          )
        : legacyPidsToZip(
            checkpoint.source.read(
              checkpoint.pickleRange.start,
              checkpoint.pickleRange.end - checkpoint.pickleRange.start,
            ),
          );
    const edited = edits.length > 0 ? editPickle(original, edits, input) : { bytes: original, outcomes: [] };
    const compacted = options.compact ? compactPickle(edited.bytes) : undefined;
    const pickle = compacted?.bytes ?? edited.bytes;
    const plan = compacted?.plan;
    const storages = referencedStorages(pickle);
    const keep = new Set(storages.keys());
    const dropped: string[] = [];
    const records = writeFileAtomicWith(output, (fd) => {
      const writer = new TorchZipWriter(fd, archiveNameFor(output));
      const count =
        checkpoint.format === "torch-zip"
          ? writeZipRecords(writer, checkpoint, pickle, keep, dropped, plan)
          : writeLegacyRecords(writer, checkpoint, pickle, keep, dropped, plan);
      writer.finish();
      // A trainer still writing the input would make the copy a mix of two files: fail before the rename.
      checkpoint.source.assertUnchanged();
      return count;
    });
    return {
      input,
      output,
      inputFormat: checkpoint.format,
      outcomes: edited.outcomes,
      records,
      sizeBytes: statSync(output).size,
      droppedRecords: dropped,
      ...(plan
        ? {
            compacted: {
              storages: plan.pieces.size,
              bytesBefore: plan.bytesBefore,
              bytesAfter: plan.bytesAfter,
            },
          }
        : {}),
    };
  } finally {
    checkpoint.source.close();
  }
}
