import { ReaderError } from "../errors.js";
import type { ByteSource } from "../source.js";
import {
  EOCDR_LENGTH,
  hex,
  readU64,
  SIGNATURE,
  U16_SENTINEL,
  U32_SENTINEL,
  viewOf,
  ZIP64_EOCDR_LENGTH,
  ZIP64_LOCATOR_LENGTH,
  zipError,
} from "./format.js";

/** The longest tail that can hold the EOCDR (22 bytes + a 65,535-byte comment) and the ZIP64 locator before it. */
export const TAIL_LENGTH = EOCDR_LENGTH + 0xffff + ZIP64_LOCATOR_LENGTH;
/** The first tail read: the end records of a comment-less archive and, for small archives, everything. */
export const SHORT_TAIL_LENGTH = 8192;

/** The classic end of central directory record, as written (ZIP64 sentinels not resolved). */
export interface EndOfCentralDirectory {
  /** File offset of its signature. */
  readonly offset: number;
  readonly diskNumber: number;
  readonly centralDirectoryDisk: number;
  readonly entriesOnDisk: number;
  readonly entriesTotal: number;
  readonly centralDirectorySize: number;
  readonly centralDirectoryOffset: number;
  readonly commentLength: number;
}

export interface Zip64Locator {
  readonly offset: number;
  readonly zip64EndDisk: number;
  /** Offset of the ZIP64 EOCDR relative to the archive start (bytes before the archive not counted). */
  readonly zip64EndOffset: number;
  readonly totalDisks: number;
}

export interface Zip64EndOfCentralDirectory {
  /** File offset of its signature. */
  readonly offset: number;
  /** "Size of zip64 end of central directory record": the bytes after this field, 44 without extensible data. */
  readonly recordSize: number;
  readonly diskNumber: number;
  readonly centralDirectoryDisk: number;
  readonly entriesOnDisk: number;
  readonly entriesTotal: number;
  readonly centralDirectorySize: number;
  readonly centralDirectoryOffset: number;
}

/** Where the central directory is, after the end records were read and reconciled. */
export interface ArchiveLayout {
  /** The last `TAIL_LENGTH` bytes of the file (all of it when smaller), read once. */
  readonly tail: Uint8Array;
  readonly tailOffset: number;
  readonly end: EndOfCentralDirectory;
  readonly zip64: Zip64EndOfCentralDirectory | undefined;
  readonly entryCount: number;
  /** File offset of the central directory (`junkBefore` included). */
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
  /** Bytes before the archive that its recorded offsets do not count (a self-extractor stub, say). */
  readonly junkBefore: number;
  /** Bytes after the EOCDR and its comment. */
  readonly junkAfter: number;
}

/**
 * Scans `tail` backwards for the EOCDR. The first signature from the end whose comment fits in the file wins;
 * torch writes no comment, so for its files that is the signature at `size - 22`.
 */
export function findEndOfCentralDirectory(
  tail: Uint8Array,
  tailOffset: number,
): EndOfCentralDirectory | undefined {
  const view = viewOf(tail);
  for (let p = tail.length - EOCDR_LENGTH; p >= 0; p--) {
    if (tail[p] !== 0x50 || view.getUint32(p, true) !== SIGNATURE.endOfCentralDirectory) continue;
    const commentLength = view.getUint16(p + 20, true); // 20 - .ZIP file comment length
    if (p + EOCDR_LENGTH + commentLength > tail.length) continue; // a signature-like run of bytes inside data
    return {
      offset: tailOffset + p,
      diskNumber: view.getUint16(p + 4, true), // 4 - number of this disk
      centralDirectoryDisk: view.getUint16(p + 6, true), // 6 - disk where central directory starts
      entriesOnDisk: view.getUint16(p + 8, true), // 8 - number of central directory records on this disk
      entriesTotal: view.getUint16(p + 10, true), // 10 - total number of central directory records
      centralDirectorySize: view.getUint32(p + 12, true), // 12 - size of central directory (bytes)
      centralDirectoryOffset: view.getUint32(p + 16, true), // 16 - offset of start of central directory
      commentLength,
    };
  }
  return undefined;
}

/** The ZIP64 locator, when one sits right before the EOCDR (`tail` must hold those 20 bytes if the file does). */
export function findZip64Locator(
  tail: Uint8Array,
  tailOffset: number,
  endOffset: number,
  file: string,
): Zip64Locator | undefined {
  const p = endOffset - ZIP64_LOCATOR_LENGTH - tailOffset;
  if (p < 0) return undefined;
  const view = viewOf(tail);
  if (view.getUint32(p, true) !== SIGNATURE.zip64Locator) return undefined; // 0 - signature
  return {
    offset: tailOffset + p,
    zip64EndDisk: view.getUint32(p + 4, true), // 4 - disk with the start of the zip64 EOCDR
    zip64EndOffset: readU64(view, p + 8, file, tailOffset, "ZIP64 locator: offset of the ZIP64 EOCDR"), // 8
    totalDisks: view.getUint32(p + 16, true), // 16 - total number of disks
  };
}

/** Parses the fixed 56 bytes of a ZIP64 EOCDR found at file offset `offset` (signature already checked). */
export function parseZip64EndOfCentralDirectory(
  bytes: Uint8Array,
  offset: number,
  file: string,
): Zip64EndOfCentralDirectory {
  const view = viewOf(bytes);
  const u64 = (at: number, field: string) => readU64(view, at, file, offset, `ZIP64 EOCDR: ${field}`);
  const recordSize = u64(4, "size of record"); // 4 - size of zip64 end of central directory record
  if (recordSize < ZIP64_EOCDR_LENGTH - 12) {
    throw zipError(
      "zip-malformed",
      file,
      offset + 4,
      `the ZIP64 end of central directory record at offset ${offset} declares a size of ${recordSize} bytes; ` +
        `expected at least ${ZIP64_EOCDR_LENGTH - 12}`,
    );
  }
  // 12 - version made by, 14 - version needed to extract
  return {
    offset,
    recordSize,
    diskNumber: view.getUint32(16, true), // 16 - number of this disk
    centralDirectoryDisk: view.getUint32(20, true), // 20 - disk where central directory starts
    entriesOnDisk: u64(24, "entries on this disk"), // 24
    entriesTotal: u64(32, "total entries"), // 32
    centralDirectorySize: u64(40, "central directory size"), // 40
    centralDirectoryOffset: u64(48, "central directory offset"), // 48
  };
}

/**
 * Reads the end records with one short read of the file's tail (a longer one only when an archive comment
 * hides them, and one more when a ZIP64 EOCDR lies outside the tail), reconciles classic and ZIP64 values, and works out where the
 * central directory is, allowing for bytes prepended to the archive the way Info-ZIP does.
 */
export function readArchiveLayout(source: ByteSource): ArchiveLayout {
  const { size, name: file } = source;
  if (size === 0) throw new ReaderError("empty-file", `${file} is empty (0 bytes)`, { file, offset: 0 });
  // Torch never writes a comment, so its end records sit in the last 98 bytes: try a short tail first and read
  // the longest possible one only when a comment hides the EOCDR. The scan finds the same record either way.
  let tailOffset = Math.max(0, size - SHORT_TAIL_LENGTH);
  let tail = source.read(tailOffset, size - tailOffset);
  let end = findEndOfCentralDirectory(tail, tailOffset);
  if (end === undefined && tailOffset > 0) {
    tailOffset = Math.max(0, size - TAIL_LENGTH);
    tail = source.read(tailOffset, size - tailOffset);
    end = findEndOfCentralDirectory(tail, tailOffset);
  }
  if (end === undefined) throw missingEndRecord(source, tail, tailOffset);

  const locator = findZip64Locator(tail, tailOffset, end.offset, file);
  const zip64 = locator === undefined ? undefined : readZip64End(source, tail, tailOffset, locator);

  const pick = (field: string, classic: number, sentinel: number, wide: number | undefined): number => {
    if (zip64 === undefined || wide === undefined) return classic;
    if (classic !== sentinel && classic !== wide) {
      throw zipError(
        "zip-malformed",
        file,
        end.offset,
        `inconsistent end records: the end of central directory record at offset ${end.offset} says ` +
          `${field} is ${classic}, the ZIP64 one at offset ${zip64.offset} says ${wide}`,
      );
    }
    return wide;
  };
  const diskNumber = pick("this disk's number", end.diskNumber, U16_SENTINEL, zip64?.diskNumber);
  const centralDirectoryDisk = pick(
    "the central directory's disk",
    end.centralDirectoryDisk,
    U16_SENTINEL,
    zip64?.centralDirectoryDisk,
  );
  const entriesOnDisk = pick(
    "the entry count on this disk",
    end.entriesOnDisk,
    U16_SENTINEL,
    zip64?.entriesOnDisk,
  );
  const entryCount = pick("the total entry count", end.entriesTotal, U16_SENTINEL, zip64?.entriesTotal);
  const centralDirectorySize = pick(
    "the central directory size",
    end.centralDirectorySize,
    U32_SENTINEL,
    zip64?.centralDirectorySize,
  );
  const recordedOffset = pick(
    "the central directory offset",
    end.centralDirectoryOffset,
    U32_SENTINEL,
    zip64?.centralDirectoryOffset,
  );
  const endRecordOffset = zip64?.offset ?? end.offset;

  if (diskNumber !== 0 || centralDirectoryDisk !== 0 || (locator !== undefined && locator.totalDisks > 1)) {
    throw zipError(
      "zip-unsupported",
      file,
      endRecordOffset,
      `the end record at offset ${endRecordOffset} describes a multi-disk (spanned) archive: disk ${diskNumber}, ` +
        `central directory on disk ${centralDirectoryDisk}; expected a single-disk archive`,
    );
  }
  if (entriesOnDisk !== entryCount) {
    throw zipError(
      "zip-malformed",
      file,
      endRecordOffset,
      `inconsistent counts in the end record at offset ${endRecordOffset}: ${entriesOnDisk} entries on this ` +
        `disk but ${entryCount} in total, in a single-disk archive`,
    );
  }

  // The central directory ends where the end records start. Any surplus is bytes in front of the archive that
  // its offsets do not count (Info-ZIP: "extra bytes at beginning or within zipfile").
  const recordedEnd = recordedOffset + centralDirectorySize;
  const junkBefore = endRecordOffset - recordedEnd;
  if (junkBefore < 0) {
    const code = recordedEnd > size ? "zip-truncated" : "zip-malformed";
    const where = recordedEnd > size ? `past the end of the ${size}-byte file` : "inside the end records";
    throw zipError(
      code,
      file,
      recordedOffset,
      `the end record at offset ${endRecordOffset} places the central directory at offset ${recordedOffset} ` +
        `with size ${centralDirectorySize}, so it would end at offset ${recordedEnd}, ${where}; ` +
        `expected it to end at offset ${endRecordOffset}, where the end records start`,
    );
  }
  if (zip64 !== undefined && locator !== undefined && zip64.offset - locator.zip64EndOffset !== junkBefore) {
    throw zipError(
      "zip-malformed",
      file,
      zip64.offset,
      `the ZIP64 end record is at offset ${zip64.offset} but the locator at offset ${locator.offset} says ` +
        `${locator.zip64EndOffset}, a shift of ${zip64.offset - locator.zip64EndOffset} bytes, while the ` +
        `central directory is shifted by ${junkBefore} bytes`,
    );
  }
  if (entryCount * 46 > centralDirectorySize) {
    throw zipError(
      "zip-malformed",
      file,
      endRecordOffset,
      `inconsistent counts in the end record at offset ${endRecordOffset}: ${entryCount} entries need at ` +
        `least ${entryCount * 46} bytes of central directory, but its size is ${centralDirectorySize}`,
    );
  }

  return {
    tail,
    tailOffset,
    end,
    zip64,
    entryCount,
    centralDirectoryOffset: recordedOffset + junkBefore,
    centralDirectorySize,
    junkBefore,
    junkAfter: size - (end.offset + EOCDR_LENGTH + end.commentLength),
  };
}

/**
 * Finds the ZIP64 EOCDR the locator points to. When it is not at the recorded offset but right before the
 * locator, the archive has bytes prepended; the caller checks that shift against the central directory's.
 */
function readZip64End(
  source: ByteSource,
  tail: Uint8Array,
  tailOffset: number,
  locator: Zip64Locator,
): Zip64EndOfCentralDirectory {
  const file = source.name;
  const recordAt = (offset: number): Uint8Array | undefined => {
    if (offset < 0 || offset + ZIP64_EOCDR_LENGTH > locator.offset) return undefined;
    const bytes =
      offset >= tailOffset
        ? tail.subarray(offset - tailOffset, offset - tailOffset + ZIP64_EOCDR_LENGTH)
        : source.read(offset, ZIP64_EOCDR_LENGTH);
    return viewOf(bytes).getUint32(0, true) === SIGNATURE.zip64EndOfCentralDirectory ? bytes : undefined;
  };
  const recorded = locator.zip64EndOffset;
  const atRecorded = recordAt(recorded);
  if (atRecorded !== undefined) return parseZip64EndOfCentralDirectory(atRecorded, recorded, file);
  const beside = locator.offset - ZIP64_EOCDR_LENGTH;
  const atBeside = beside > recorded ? recordAt(beside) : undefined;
  if (atBeside !== undefined) return parseZip64EndOfCentralDirectory(atBeside, beside, file);

  if (recorded + ZIP64_EOCDR_LENGTH > source.size) {
    throw zipError(
      "zip-truncated",
      file,
      locator.offset,
      `the ZIP64 locator at offset ${locator.offset} places the ZIP64 end of central directory record at ` +
        `offset ${recorded}, past the end of the ${source.size}-byte file`,
    );
  }
  const found =
    recorded + ZIP64_EOCDR_LENGTH <= locator.offset
      ? hex(viewOf(source.read(recorded, 4)).getUint32(0, true))
      : "";
  throw zipError(
    "zip-malformed",
    file,
    recorded,
    `expected a ZIP64 end of central directory record (signature ${hex(SIGNATURE.zip64EndOfCentralDirectory)}) ` +
      `at offset ${recorded}, where the ZIP64 locator at offset ${locator.offset} points, ` +
      (found === "" ? "but that would overlap the locator" : `found ${found}`),
  );
}

/** No EOCDR: a file that starts like a zip was cut short; anything else is not a zip at all. */
function missingEndRecord(source: ByteSource, tail: Uint8Array, tailOffset: number): ReaderError {
  const { size, name: file } = source;
  const head = tailOffset === 0 ? tail.subarray(0, 4) : source.read(0, 4);
  const searched = `the last ${tail.length} bytes of the ${size}-byte file`;
  if (head.length === 4 && viewOf(head).getUint32(0, true) === SIGNATURE.localFileHeader) {
    return zipError(
      "zip-truncated",
      file,
      size,
      `the zip archive has no central directory (no end record PK\\x05\\x06 in ${searched}): ` +
        "the save was cut short (interrupted, or the disk filled up)",
    );
  }
  const found = head.length === 4 ? hex(viewOf(head).getUint32(0, true)) : `only ${head.length} bytes`;
  return zipError(
    "zip-malformed",
    file,
    0,
    `not a zip archive: no end of central directory record (signature PK\\x05\\x06) in ${searched}, and ` +
      `offset 0 holds ${found} instead of a local file header (PK\\x03\\x04)`,
  );
}
