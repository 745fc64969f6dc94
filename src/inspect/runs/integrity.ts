import type { Checkpoint } from "../../reader/checkpoint.js";
import { digestRanges } from "../../reader/digests.js";
import { ReaderError, type ReaderErrorCode } from "../../reader/errors.js";
import { POSIX_PATHS } from "../../reader/pointer.js";
import { readCheckpoint } from "../../reader/read.js";
import type { ZipArchive } from "../../reader/zip.js";
import type { TreeFiles } from "../treeFiles.js";

/**
 * Is a checkpoint file whole and loadable? The checks torch itself would trip over, done before a resume
 * trusts the file: zip end records present, every record inside the file, `data.pkl` intact (its CRC, read
 * anyway), the pickle parses, storages present. `verify` also streams every record through its CRC.
 */
export type FileStatus = "ok" | "missing" | "truncated" | "corrupt" | "not-a-checkpoint" | "unreadable";

export interface FileProblem {
  readonly code: string;
  readonly message: string;
  /** torch never checks CRCs: a file whose only fault is a CRC mismatch still loads, with the corrupted bytes. */
  readonly torchLoads?: boolean;
}

export type FileCheck =
  | { readonly status: "ok"; readonly checkpoint: Checkpoint; readonly sizeBytes: number }
  | {
      readonly status: Exclude<FileStatus, "ok">;
      readonly problem: FileProblem;
      readonly sizeBytes: number | undefined;
    };

const STATUS_OF: Partial<Record<ReaderErrorCode, Exclude<FileStatus, "ok">>> = {
  "file-not-found": "missing",
  "empty-file": "truncated",
  "zip-truncated": "truncated",
  "legacy-truncated": "truncated",
  "pickle-truncated": "truncated",
  "safetensors-truncated": "truncated",
  "not-a-checkpoint": "not-a-checkpoint",
  "not-a-file": "not-a-checkpoint",
  "io-error": "unreadable",
  "file-changed": "unreadable",
  // A remote object that is not there is missing; one the store would not give (refused, timed out, cut
  // short, changed between reads) is unreadable: nothing proves its bytes damaged.
  "remote-not-found": "missing",
  "remote-forbidden": "unreadable",
  "remote-timeout": "unreadable",
  "remote-error": "unreadable",
  "remote-changed": "unreadable",
  "remote-short-body": "unreadable",
  "remote-range-ignored": "unreadable",
};

function failed(error: unknown, sizeBytes: number | undefined): FileCheck {
  if (error instanceof ReaderError) {
    return {
      status: STATUS_OF[error.code] ?? "corrupt",
      problem: { code: error.code, message: error.message },
      sizeBytes,
    };
  }
  throw error;
}

/** Every record's header and data must end before the central directory starts. */
function recordsInsideArchive(archive: ZipArchive): FileProblem | undefined {
  for (const entry of archive.entries) {
    const end = entry.localHeaderOffset + 30 + entry.nameRaw.length + entry.compressedSize;
    if (end > archive.centralDirectoryOffset) {
      return {
        code: "zip-truncated",
        message: `record ${entry.name} runs past the start of the central directory`,
      };
    }
  }
  return undefined;
}

/** data.pkl's CRC, checked by the loader on the bytes it parsed (no second read). */
function pickleCrcProblem(checkpoint: Checkpoint): FileProblem | undefined {
  const crc = "pickle" in checkpoint ? checkpoint.pickle.crc : undefined;
  if (!crc || crc.actual === crc.expected) return undefined;
  return {
    code: "zip-crc-mismatch",
    message: `data.pkl CRC is ${crc.actual.toString(16)}, the archive says ${crc.expected.toString(16)}`,
    torchLoads: true,
  };
}

/** Streams every record through its CRC: stored records on up to two threads, deflated ones here. */
export async function allCrcProblem(archive: ZipArchive): Promise<FileProblem | undefined> {
  // CRC 0 on a non-empty record means "not computed" (torch 2.6 can skip it): nothing to check.
  const checked = archive.entries.filter((e) => !(e.crc32 === 0 && e.uncompressedSize > 0));
  const stored = checked.filter((e) => e.method === 0 && !e.encrypted);
  const storedCrcs = await digestRanges(
    archive.source,
    stored.map((e) => ({ offset: archive.dataOffset(e), length: e.uncompressedSize })),
    "crc32",
  );
  const actualOf = new Map(stored.map((e, i) => [e, storedCrcs[i]]));
  for (const entry of checked) {
    const actual = actualOf.has(entry) ? actualOf.get(entry) : (await archive.verifyCrc(entry)).actual;
    if (actual !== entry.crc32) {
      return {
        code: "zip-crc-mismatch",
        message: `record ${entry.name}: CRC ${actual?.toString(16)} where the archive says ${entry.crc32.toString(16)} (corrupted bytes)`,
        torchLoads: true,
      };
    }
  }
  return undefined;
}

/** What the reader noticed that makes torch.load fail: a missing storage or version record. */
function storageProblem(checkpoint: Checkpoint): FileProblem | undefined {
  if (checkpoint.notes.some((n) => n.code === "version-record-missing")) {
    return {
      code: "version-record-missing",
      message: "the archive has no version record, which torch.load requires",
    };
  }
  const missing = checkpoint.notes.find(
    (n) => n.code === "storage-record-missing" || n.code === "storage-size-mismatch",
  );
  if (!missing) return undefined;
  return {
    code: missing.code,
    message: `storage ${"key" in missing ? missing.key : "?"} is missing or the wrong size`,
  };
}

/** A file of the tree read as a checkpoint, a pointer's target looked up in the same tree. */
function readInTree(fs: TreeFiles, path: string): Checkpoint {
  const source = fs.tree.open(path);
  try {
    return readCheckpoint(source, path, { exists: fs.exists, paths: POSIX_PATHS });
  } catch (error) {
    source.close();
    if (error instanceof ReaderError) error.file ??= path;
    throw error;
  }
}

/** Opens and checks one file. The caller closes `checkpoint.source` of an `ok` result. */
export async function checkFile(
  path: string,
  options: { verify: boolean; fs: TreeFiles },
): Promise<FileCheck> {
  let checkpoint: Checkpoint;
  try {
    checkpoint = readInTree(options.fs, path);
  } catch (error) {
    return failed(error, undefined);
  }
  const sizeBytes = checkpoint.source.size;
  try {
    if (checkpoint.format === "pointer") {
      checkpoint.source.close();
      return {
        status: "not-a-checkpoint",
        problem: { code: "pointer-file", message: "a pointer file, not a checkpoint" },
        sizeBytes,
      };
    }
    const archive =
      checkpoint.format === "torch-zip" || checkpoint.format === "torchscript"
        ? checkpoint.archive
        : undefined;
    const problem =
      (archive && (recordsInsideArchive(archive) ?? pickleCrcProblem(checkpoint))) ??
      storageProblem(checkpoint) ??
      (archive && options.verify ? await allCrcProblem(archive) : undefined);
    if (problem) {
      checkpoint.source.close();
      return { status: problem.code === "zip-truncated" ? "truncated" : "corrupt", problem, sizeBytes };
    }
    return { status: "ok", checkpoint, sizeBytes };
  } catch (error) {
    checkpoint.source.close();
    return failed(error, sizeBytes);
  }
}
