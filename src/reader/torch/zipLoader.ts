import { latin1, releaseBuffer } from "../bytes.js";
import type {
  PickleInfo,
  ReaderNote,
  StorageBytes,
  TorchScriptCheckpoint,
  TorchZipCheckpoint,
} from "../checkpoint.js";
import { decimalId } from "../decimalId.js";
import { ReaderError } from "../errors.js";
import { parsePickle } from "../pickle/machine.js";
import type { PyValue, TorchStorage } from "../pickle/value.js";
import type { ByteSource } from "../source.js";
import { crc32 } from "../zip/crc32.js";
import type { ZipArchive } from "../zip.js";
import { StorageTable } from "./idMap.js";
import { cachingStorageResolver, torchPickleHooks } from "./rebuild.js";

/** Small text records worth reporting; each costs one local-header read and one data read. */
const TEXT_RECORDS = [
  "version",
  ".data/version",
  "byteorder",
  ".format_version",
  ".storage_alignment",
  ".data/serialization_id",
];
const MAX_PICKLE_BYTES = 2 ** 31 - 1;

interface LoadedPickle {
  readonly value: PyValue;
  readonly info: PickleInfo;
  readonly storages: StorageTable;
}

/**
 * Reads one pickle record of a torch zip archive; its persistent ids name records under `storageDir`
 * (`data/` for `data.pkl`, `constants/` for TorchScript's `constants.pkl`).
 */
function loadArchivePickle(
  archive: ZipArchive,
  record: string,
  storageDir: string,
  notes: ReaderNote[],
): LoadedPickle {
  const entry = archive.get(record);
  if (!entry) {
    throw new ReaderError("zip-entry-missing", `the archive has no ${archive.prefix}/${record} record`);
  }
  const bytes = archive.readEntry(entry, MAX_PICKLE_BYTES, true);
  const storages = new StorageTable();
  const foreignPersistentIds: number[] = [];
  const resolver = cachingStorageResolver(storages, storageDir === "data/" ? "" : storageDir);
  const hooks = torchPickleHooks(resolver, foreignPersistentIds);
  let result: ReturnType<typeof parsePickle>;
  try {
    result = parsePickle(bytes, { hooks });
  } catch (error) {
    if (error instanceof ReaderError) error.message = `${record}: ${error.message}`;
    throw error;
  }
  if (result.end < bytes.length)
    notes.push({ code: "pickle-trailing-bytes", record, count: bytes.length - result.end });
  const info: PickleInfo = {
    record,
    protocol: result.protocol,
    globals: result.globals,
    sizeBytes: bytes.length,
    opcodes: result.opcodes,
    foreignPersistentIds,
    ...(entry.crc32 !== 0 ? { crc: { expected: entry.crc32, actual: crc32(bytes) } } : {}),
  };
  // Read into a buffer of its own, and kept by no bytes value of the graph: nothing needs it any more.
  if (result.inputViews === 0) releaseBuffer(bytes);
  return { value: result.value, info, storages };
}

function readTextRecords(archive: ZipArchive): Record<string, string> {
  const records: Record<string, string> = {};
  for (const name of TEXT_RECORDS) {
    const entry = archive.get(name);
    if (entry && entry.uncompressedSize <= 4096) {
      records[name] = latin1(archive.readEntry(entry, 4096)).trim();
    }
  }
  return records;
}

/** Checks each storage against its record: present, and as large as the persistent id says. */
function checkStorages(archive: ZipArchive, storageDir: string, storages: StorageTable, notes: ReaderNote[]) {
  const numbered = archive.numberedSizes(storageDir);
  for (const [key, storage] of storages) {
    const n = decimalId(key);
    const size = n < 0 ? archive.uncompressedSizeOf(storageDir + key) : numbered(n);
    if (size < 0) notes.push({ code: "storage-record-missing", key: storage.key, record: storageDir + key });
    else if (size !== storage.sizeBytes) {
      notes.push({
        code: "storage-size-mismatch",
        key: storage.key,
        expected: storage.sizeBytes,
        actual: size,
      });
    }
  }
}

function locator(archive: ZipArchive) {
  return (storage: TorchStorage): StorageBytes | undefined => {
    const record = storage.key.startsWith("constants/") ? storage.key : `data/${storage.key}`;
    const entry = archive.get(record);
    if (!entry) return undefined;
    if (entry.method !== 0) return { kind: "zip-entry", entry };
    return { kind: "range", offset: archive.dataOffset(entry), length: entry.uncompressedSize };
  };
}

function duplicateNotes(archive: ZipArchive): ReaderNote[] {
  return archive.duplicates.map((name) => ({ code: "zip-duplicate-name", name }));
}

/** A `torch.save` archive (`data.pkl` + `data/<key>`) or a TorchScript archive (`constants.pkl` present). */
export function loadTorchArchive(
  source: ByteSource,
  archive: ZipArchive,
): TorchZipCheckpoint | TorchScriptCheckpoint {
  const notes = duplicateNotes(archive);
  const records = readTextRecords(archive);
  const byteOrder = records.byteorder === "big" ? "big" : "little";
  if (byteOrder === "big") notes.push({ code: "big-endian", detail: "byteorder record says big" });
  // PyTorchStreamReader refuses an archive without it: "Expected hasRecord("version") to be true".
  if (records.version === undefined && records[".data/version"] === undefined)
    notes.push({ code: "version-record-missing" });
  const data = loadArchivePickle(archive, "data.pkl", "data/", notes);
  checkStorages(archive, "data/", data.storages, notes);

  const common = {
    source,
    notes,
    archive,
    records,
    byteOrder,
    root: data.value,
    pickle: data.info,
    locate: locator(archive),
  } as const;
  if (!archive.get("constants.pkl")) return { format: "torch-zip", ...common };
  const constants = loadArchivePickle(archive, "constants.pkl", "constants/", notes);
  checkStorages(archive, "constants/", constants.storages, notes);
  return { format: "torchscript", ...common, constants: constants.value, constantsPickle: constants.info };
}
