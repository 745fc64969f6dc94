import { ReaderError, type ReaderErrorCode } from "../errors.js";

/**
 * Zip constants and the little helpers every zip module shares. Abbreviations used throughout:
 * EOCDR = end of central directory record, CD = central directory, LFH = local file header.
 * Field offsets in comments are from PKWARE's APPNOTE.TXT (section 4.3).
 */
export const SIGNATURE = {
  /** `PK\x03\x04` */
  localFileHeader: 0x04034b50,
  /** `PK\x01\x02` */
  centralFileHeader: 0x02014b50,
  /** `PK\x05\x06` */
  endOfCentralDirectory: 0x06054b50,
  /** `PK\x06\x06` */
  zip64EndOfCentralDirectory: 0x06064b50,
  /** `PK\x06\x07` */
  zip64Locator: 0x07064b50,
} as const;

export const LOCAL_FILE_HEADER_LENGTH = 30;
export const CENTRAL_FILE_HEADER_LENGTH = 46;
export const EOCDR_LENGTH = 22;
export const ZIP64_LOCATOR_LENGTH = 20;
/** The fixed part of the ZIP64 EOCDR (its "size of record" field counts from byte 12, so 44 here). */
export const ZIP64_EOCDR_LENGTH = 56;

/** Header id of the ZIP64 extended information extra field. */
export const ZIP64_EXTRA_ID = 0x0001;
/** Value of a 32-bit (or 16-bit) field whose real value lives in a ZIP64 record or extra field. */
export const U32_SENTINEL = 0xffffffff;
export const U16_SENTINEL = 0xffff;

/** General purpose bit flag bits. */
export const FLAG_ENCRYPTED = 0x0001;
export const FLAG_UTF8 = 0x0800;

export const METHOD_STORED = 0;
export const METHOD_DEFLATE = 8;

export function hex(value: number, digits = 8): string {
  return `0x${value.toString(16).padStart(digits, "0")}`;
}

export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function zipError(code: ReaderErrorCode, file: string, offset: number, message: string): ReaderError {
  return new ReaderError(code, message, { offset, file });
}

/**
 * A little-endian u64 as a number. Values above 2^53 - 1 cannot be exact in a double and no real file is that
 * large, so they are reported as malformed rather than silently rounded.
 * `fileOffset` is where `view` byte 0 sits in the file, for the message.
 */
export function readU64(view: DataView, at: number, file: string, fileOffset: number, field: string): number {
  const low = view.getUint32(at, true);
  const high = view.getUint32(at + 4, true);
  if (high > 0x1fffff) {
    const value = (BigInt(high) << 32n) | BigInt(low);
    throw zipError(
      "zip-malformed",
      file,
      fileOffset + at,
      `${field} at offset ${fileOffset + at} is ${value}, above 2^53 - 1 (no real archive is that large)`,
    );
  }
  return high * 0x1_0000_0000 + low;
}
