import {
  CENTRAL_FILE_HEADER_LENGTH,
  FLAG_ENCRYPTED,
  FLAG_UTF8,
  hex,
  readU64,
  SIGNATURE,
  U32_SENTINEL,
  viewOf,
  ZIP64_EXTRA_ID,
  zipError,
} from "./format.js";
import { decodeEntryName } from "./text.js";

/** One central-directory record: the authority on a record's sizes, CRC and position. */
export interface ZipEntry {
  /** Position in the central directory, from 0. */
  readonly index: number;
  /** Full name (prefix folder included), decoded as UTF-8 when flag bit 11 is set, else as CP437. */
  readonly name: string;
  /** The name's bytes as stored (a view into the central directory buffer). */
  readonly nameRaw: Uint8Array;
  /** General purpose bit flag; torch writes 0x0808 (data descriptor + UTF-8), 0x0800 for empty records. */
  readonly flags: number;
  /** Compression method: 0 stored, 8 deflate; anything else is unsupported. */
  readonly method: number;
  /** CRC-32 of the uncompressed bytes; 0 can mean "not computed" (torch >= 2.6 option, `skip_data`). */
  readonly crc32: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** File offset of the local file header (bytes prepended to the archive already added). */
  readonly localHeaderOffset: number;
  /** Flag bit 0: the record's bytes are encrypted and cannot be read. */
  readonly encrypted: boolean;
}

export interface CentralDirectoryPlace {
  /** File name for errors. */
  readonly file: string;
  /** File offset of the central directory's first byte, for error messages. */
  readonly fileOffset: number;
  /** Number of entries the end record announces. */
  readonly entryCount: number;
  /** Added to every local header offset: bytes before the archive that its offsets do not count. */
  readonly junkBefore: number;
}

/**
 * A parsed central directory as columns, one slot per entry: 200,000 records cost typed arrays and the
 * directory's own bytes rather than 200,000 objects, names and views (`ZipArchive` makes a `ZipEntry` when
 * one is asked for).
 */
export interface CentralColumns {
  /** Every entry's name, one after the other (the directory's other bytes are in the columns). */
  readonly names: Uint8Array;
  readonly count: number;
  readonly flags: Uint16Array;
  readonly method: Uint16Array;
  readonly crc32: Uint32Array;
  readonly compressedSize: Float64Array;
  readonly uncompressedSize: Float64Array;
  /** Bytes prepended to the archive already added. */
  readonly localHeaderOffset: Float64Array;
  /** Where each name lies in `names`. */
  readonly nameStart: Uint32Array;
  readonly nameLength: Uint16Array;
  /** Every name is ASCII (torch writes no other): names compare as bytes. */
  readonly asciiNames: boolean;
}

/** The entry in slot `index`, as an object. */
export function entryOf(columns: CentralColumns, index: number): ZipEntry {
  const start = columns.nameStart[index] as number;
  const nameRaw = columns.names.subarray(start, start + (columns.nameLength[index] as number));
  const flags = columns.flags[index] as number;
  return {
    index,
    name: decodeEntryName(nameRaw, (flags & FLAG_UTF8) !== 0),
    nameRaw,
    flags,
    method: columns.method[index] as number,
    crc32: columns.crc32[index] as number,
    compressedSize: columns.compressedSize[index] as number,
    uncompressedSize: columns.uncompressedSize[index] as number,
    localHeaderOffset: columns.localHeaderOffset[index] as number,
    encrypted: (flags & FLAG_ENCRYPTED) !== 0,
  };
}

/**
 * Parses a whole central directory held in memory. Exactly `entryCount` records must fill `cd` exactly.
 * Names are views into one buffer of the names alone, which stays alive as long as the entries do.
 */
export function parseCentralDirectory(cd: Uint8Array, place: CentralDirectoryPlace): ZipEntry[] {
  const columns = parseCentralColumns(cd, place);
  return Array.from({ length: columns.count }, (_, i) => entryOf(columns, i));
}

/** `parseCentralDirectory` into columns, with the same checks and errors. */
export function parseCentralColumns(cd: Uint8Array, place: CentralDirectoryPlace): CentralColumns {
  const { file, fileOffset, entryCount, junkBefore } = place;
  const view = viewOf(cd);
  const shifted = junkBefore === 0 ? "" : ` (assuming ${junkBefore} bytes before the archive)`;
  // At most one entry per 46 bytes, whatever the end record claims.
  const slots = Math.max(0, Math.min(entryCount, Math.floor(cd.length / CENTRAL_FILE_HEADER_LENGTH)));
  const columns = {
    names: cd,
    count: 0,
    flags: new Uint16Array(slots),
    method: new Uint16Array(slots),
    crc32: new Uint32Array(slots),
    compressedSize: new Float64Array(slots),
    uncompressedSize: new Float64Array(slots),
    localHeaderOffset: new Float64Array(slots),
    nameStart: new Uint32Array(slots),
    nameLength: new Uint16Array(slots),
    asciiNames: true,
  };
  let p = 0;
  for (let index = 0; index < entryCount; index++) {
    if (p + CENTRAL_FILE_HEADER_LENGTH > cd.length) {
      throw zipError(
        "zip-malformed",
        file,
        fileOffset + p,
        `inconsistent counts: central directory entry ${index} of ${entryCount} would start at offset ` +
          `${fileOffset + p}, but the ${cd.length}-byte central directory ends at offset ${fileOffset + cd.length}`,
      );
    }
    const signature = view.getUint32(p, true); // 0 - central file header signature
    if (signature !== SIGNATURE.centralFileHeader) {
      throw zipError(
        "zip-malformed",
        file,
        fileOffset + p,
        `expected central directory entry ${index} of ${entryCount} (signature ` +
          `${hex(SIGNATURE.centralFileHeader)}, PK\\x01\\x02) at offset ${fileOffset + p}${shifted}, ` +
          `found ${hex(signature)}`,
      );
    }
    // 4 - version made by, 6 - version needed to extract (torch writes 0 for both; not checked)
    const flags = view.getUint16(p + 8, true); // 8 - general purpose bit flag
    const method = view.getUint16(p + 10, true); // 10 - compression method
    // 12 - last mod file time, 14 - last mod file date (torch writes 0)
    const crc32 = view.getUint32(p + 16, true); // 16 - crc-32
    let compressedSize = view.getUint32(p + 20, true); // 20 - compressed size
    let uncompressedSize = view.getUint32(p + 24, true); // 24 - uncompressed size
    const nameLength = view.getUint16(p + 28, true); // 28 - file name length (n)
    const extraLength = view.getUint16(p + 30, true); // 30 - extra field length (m)
    const commentLength = view.getUint16(p + 32, true); // 32 - file comment length (k)
    // 34 - disk number start (single-disk archives only; not checked), 36 - internal, 38 - external attributes
    let localHeaderOffset = view.getUint32(p + 42, true); // 42 - relative offset of local header
    const nameStart = p + CENTRAL_FILE_HEADER_LENGTH; // 46 - file name (n), extra field (m), comment (k)
    const extraStart = nameStart + nameLength;
    const next = extraStart + extraLength + commentLength;
    if (next > cd.length) {
      throw zipError(
        "zip-malformed",
        file,
        fileOffset + p,
        `central directory entry ${index} at offset ${fileOffset + p} has a ${nameLength}-byte name, ` +
          `${extraLength}-byte extra field and ${commentLength}-byte comment, ending at offset ${fileOffset + next}; ` +
          `expected them within the central directory, which ends at offset ${fileOffset + cd.length}`,
      );
    }

    if (
      compressedSize === U32_SENTINEL ||
      uncompressedSize === U32_SENTINEL ||
      localHeaderOffset === U32_SENTINEL
    ) {
      const wide = readZip64Extra(view, extraStart, extraLength, {
        uncompressedSize: uncompressedSize === U32_SENTINEL,
        compressedSize: compressedSize === U32_SENTINEL,
        localHeaderOffset: localHeaderOffset === U32_SENTINEL,
        file,
        fileOffset,
        index,
      });
      // A sentinel without a ZIP64 extra field is taken literally, as Info-ZIP and Python do.
      if (wide !== undefined) {
        uncompressedSize = wide.uncompressedSize ?? uncompressedSize;
        compressedSize = wide.compressedSize ?? compressedSize;
        localHeaderOffset = wide.localHeaderOffset ?? localHeaderOffset;
      }
    }

    columns.flags[index] = flags;
    columns.method[index] = method;
    columns.crc32[index] = crc32;
    columns.compressedSize[index] = compressedSize;
    columns.uncompressedSize[index] = uncompressedSize;
    columns.localHeaderOffset[index] = localHeaderOffset + junkBefore;
    columns.nameStart[index] = nameStart;
    columns.nameLength[index] = nameLength;
    if (columns.asciiNames)
      for (let i = nameStart; i < extraStart; i++) if ((cd[i] as number) >= 0x80) columns.asciiNames = false;
    columns.count = index + 1;
    p = next;
  }
  if (p !== cd.length) {
    throw zipError(
      "zip-malformed",
      file,
      fileOffset + p,
      `inconsistent counts: the end record announces ${entryCount} central directory entries, which end at ` +
        `offset ${fileOffset + p}, but the central directory is ${cd.length} bytes and ends at offset ` +
        `${fileOffset + cd.length}`,
    );
  }
  columns.names = namesOnly(cd, columns.nameStart, columns.nameLength, columns.count);
  return columns;
}

/**
 * The names of a directory copied out of it, `nameStart` moved to match: torch's extra fields pad each
 * record, and the names of a 200,000-record directory are a third of its 14 MB, the part kept.
 */
function namesOnly(
  cd: Uint8Array,
  nameStart: Uint32Array,
  nameLength: Uint16Array,
  count: number,
): Uint8Array {
  let total = 0;
  for (let i = 0; i < count; i++) total += nameLength[i] as number;
  const names = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const start = nameStart[i] as number;
    const length = nameLength[i] as number;
    names.set(cd.subarray(start, start + length), at);
    nameStart[i] = at;
    at += length;
  }
  return names;
}

interface Zip64Wanted {
  readonly uncompressedSize: boolean;
  readonly compressedSize: boolean;
  readonly localHeaderOffset: boolean;
  readonly file: string;
  readonly fileOffset: number;
  readonly index: number;
}

interface Zip64Values {
  uncompressedSize?: number;
  compressedSize?: number;
  localHeaderOffset?: number;
}

/**
 * The ZIP64 extended information extra field (id 0x0001) holds, in this order, only the values whose 32-bit
 * central fields are 0xFFFFFFFF: uncompressed size, compressed size, local header offset (then disk number).
 * Returns undefined when the entry has no such field.
 */
export function readZip64Extra(
  view: DataView,
  extraStart: number,
  extraLength: number,
  wanted: Zip64Wanted,
): Zip64Values | undefined {
  const { file, fileOffset, index } = wanted;
  const extraEnd = extraStart + extraLength;
  let q = extraStart;
  while (q + 4 <= extraEnd) {
    const id = view.getUint16(q, true); // 0 - header id
    const size = view.getUint16(q + 2, true); // 2 - data size
    const dataEnd = q + 4 + size;
    if (id !== ZIP64_EXTRA_ID) {
      q = dataEnd;
      continue;
    }
    const values: Zip64Values = {};
    let r = q + 4;
    const take = (field: keyof Zip64Values, label: string): void => {
      if (r + 8 > dataEnd || dataEnd > extraEnd) {
        throw zipError(
          "zip-malformed",
          file,
          fileOffset + q,
          `central directory entry ${index}: its 32-bit ${label} is 0xFFFFFFFF, so its ZIP64 extra field at ` +
            `offset ${fileOffset + q} must hold it, but the field's ${size} bytes` +
            `${dataEnd > extraEnd ? ` overrun the ${extraLength}-byte extra area` : " are too few"}`,
        );
      }
      values[field] = readU64(view, r, file, fileOffset, `central directory entry ${index}: ZIP64 ${label}`);
      r += 8;
    };
    if (wanted.uncompressedSize) take("uncompressedSize", "uncompressed size");
    if (wanted.compressedSize) take("compressedSize", "compressed size");
    if (wanted.localHeaderOffset) take("localHeaderOffset", "local header offset");
    return values;
  }
  return undefined;
}
