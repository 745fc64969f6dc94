import type { GlobalReference, PickleResult } from "./pickle/machine.js";
import type { PyValue, TorchStorage } from "./pickle/value.js";
import type { PointerFile } from "./pointer.js";
import type { SafetensorsFile } from "./safetensors.js";
import type { ByteSource } from "./source.js";
import type { ZipArchive, ZipEntry } from "./zip.js";

/** The formats ckpt recognises, as named in `ckpt.inspect/1` JSON. */
export type CheckpointFormat =
  | "torch-zip"
  | "torch-legacy"
  | "torchscript"
  | "safetensors"
  | "pointer"
  | "pickle";

/** Where a storage's bytes live in the file. Deflated zip records (re-zipped files) can only be streamed. */
export type StorageBytes =
  | { readonly kind: "range"; readonly offset: number; readonly length: number }
  | { readonly kind: "zip-entry"; readonly entry: ZipEntry };

/** A fact the reader noticed while reading: not fatal, reported as a finding by `inspect`. */
export type ReaderNote =
  | { readonly code: "storage-record-missing"; readonly key: string; readonly record: string }
  | {
      readonly code: "storage-size-mismatch";
      readonly key: string;
      readonly expected: number;
      readonly actual: number;
    }
  | { readonly code: "zip-duplicate-name"; readonly name: string }
  | { readonly code: "pickle-trailing-bytes"; readonly record: string; readonly count: number }
  | { readonly code: "big-endian"; readonly detail: string }
  | { readonly code: "version-record-missing" };

export interface PickleInfo {
  readonly record: string;
  readonly protocol: number;
  readonly globals: GlobalReference[];
  readonly sizeBytes: number;
  /** Opcodes the pickle used (index = opcode byte). */
  readonly opcodes: Uint8Array;
  /**
   * Byte offsets of persistent-id opcodes whose id is not a torch storage: torch.load rejects them, another
   * loader's `persistent_load` could turn them into anything (reported by the security scan).
   */
  readonly foreignPersistentIds: readonly number[];
  /**
   * The record's CRC-32 as computed from the bytes that were parsed, when the archive recorded one (0 means
   * "not computed" since torch 2.6): checked here because the bytes are in memory anyway.
   */
  readonly crc?: { readonly expected: number; readonly actual: number };
}

/** What a bare pickle's parse (not a zip record's) leaves for the security scan to adopt. */
export function barePickleInfo(
  result: Pick<PickleResult, "protocol" | "globals" | "opcodes">,
  sizeBytes: number,
  foreignPersistentIds: readonly number[],
): PickleInfo {
  return {
    record: "pickle",
    protocol: result.protocol,
    globals: result.globals,
    sizeBytes,
    opcodes: result.opcodes,
    foreignPersistentIds,
  };
}

interface Common {
  readonly source: ByteSource;
  readonly notes: ReaderNote[];
}

/** Everything read from a file that holds tensors: the object graph plus where each storage's bytes are. */
interface TensorContainer extends Common {
  readonly root: PyValue;
  /** Finds the bytes of a storage the object graph refers to; `undefined` when the record is absent. */
  locate(storage: TorchStorage): StorageBytes | undefined;
  /** `little` or `big`: the byte order the storage bytes were written in. */
  readonly byteOrder: "little" | "big";
}

export interface TorchZipCheckpoint extends TensorContainer {
  readonly format: "torch-zip";
  readonly archive: ZipArchive;
  readonly pickle: PickleInfo;
  /** Small text records: `version`, `byteorder`, `.format_version`, `.storage_alignment`, `.data/serialization_id`. */
  readonly records: Readonly<Record<string, string>>;
}

export interface TorchScriptCheckpoint extends TensorContainer {
  readonly format: "torchscript";
  readonly archive: ZipArchive;
  readonly pickle: PickleInfo;
  readonly records: Readonly<Record<string, string>>;
  /** `constants.pkl`: tensors the TorchScript code refers to as `CONSTANTS.c<i>`. */
  readonly constants: PyValue;
  readonly constantsPickle: PickleInfo | undefined;
}

export interface TorchLegacyCheckpoint extends TensorContainer {
  readonly format: "torch-legacy";
  readonly pickle: PickleInfo;
  readonly sysInfo: PyValue;
  /** Storage keys in file order, as the key-list pickle gives them. */
  readonly storageKeys: string[];
  /** Byte range of the main pickle (the object), for tools that rewrite it. */
  readonly pickleRange: { readonly start: number; readonly end: number };
}

export interface SafetensorsCheckpoint extends TensorContainer {
  readonly format: "safetensors";
  readonly header: SafetensorsFile;
}

export interface PointerCheckpoint extends Common {
  readonly format: "pointer";
  readonly pointer: PointerFile;
  /** The path the framework would open. */
  readonly target: string;
  readonly targetExists: boolean;
}

/** A bare pickle with no storages behind it (DCP `.metadata`, a pickled dict). */
export interface PlainPickle extends Common {
  readonly format: "pickle";
  readonly root: PyValue;
  readonly pickle: PickleInfo;
}

export type Checkpoint =
  | TorchZipCheckpoint
  | TorchScriptCheckpoint
  | TorchLegacyCheckpoint
  | SafetensorsCheckpoint
  | PointerCheckpoint
  | PlainPickle;

export type TensorCheckpoint = Extract<Checkpoint, TensorContainer>;

export function hasTensors(checkpoint: Checkpoint): checkpoint is TensorCheckpoint {
  return "locate" in checkpoint;
}
