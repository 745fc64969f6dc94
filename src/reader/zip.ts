import { bytesEqual } from "./bytes.js";
import { codecs, InflateError } from "./codecs.js";
import { decimalIdInBytes } from "./decimalId.js";
import { isReaderError, type ReaderError } from "./errors.js";
import type { ByteSource } from "./source.js";
import { type CentralColumns, entryOf, parseCentralColumns, type ZipEntry } from "./zip/centralDirectory.js";
import { crc32 } from "./zip/crc32.js";
import { type ArchiveLayout, readArchiveLayout } from "./zip/endRecords.js";
import {
  FLAG_ENCRYPTED,
  hex,
  LOCAL_FILE_HEADER_LENGTH,
  METHOD_DEFLATE,
  METHOD_STORED,
  SIGNATURE,
  viewOf,
  zipError,
} from "./zip/format.js";
import { NameIndex } from "./zip/nameIndex.js";

/**
 * The zip container of `torch.save` / `torch.jit.save` files, read the way torch reads it: the central
 * directory is the authority for names, sizes and CRCs; local headers are read only to find where a record's
 * bytes start (torch pads them with an `FB` extra field that exists only there). Reads are few and bounded:
 * opening costs one read of the file's tail and one of the central directory, whatever the entry count.
 */

export type { ZipEntry } from "./zip/centralDirectory.js";

/** What a record's local file header says, for finding its data and for comparing it with the central one. */
export interface LocalHeader {
  /** File offset of the header. */
  readonly offset: number;
  readonly flags: number;
  readonly method: number;
  readonly nameRaw: Uint8Array;
  /** Whether `nameRaw` equals the central directory's name bytes. */
  readonly nameMatches: boolean;
  /** Includes torch's `FB` alignment padding, which the central directory does not have. */
  readonly extraLength: number;
  /** File offset of the record's first data byte: 64-aligned in torch-written files. */
  readonly dataOffset: number;
}

export interface CrcCheck {
  /** True when the CRC matched or was not computed by the writer. */
  readonly ok: boolean;
  /** The central directory's CRC is 0 for a non-empty record: the writer did not compute it, nothing was read. */
  readonly skipped: boolean;
  readonly expected: number;
  /** Undefined when skipped. */
  readonly actual: number | undefined;
}

const MiB = 1024 * 1024;
/** Largest record `readEntry` loads whole unless told otherwise. */
export const DEFAULT_MAX_ENTRY_BYTES = 256 * MiB;
export const DEFAULT_CHUNK_SIZE = 4 * MiB;

/** `PK\x03\x04` at offset 0: how torch itself recognises a zip checkpoint. Never throws. */
export function looksLikeZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

/**
 * Reads the end records and the whole central directory: one read when the central directory lies in the
 * file's last 64 KiB, else two (three only if a long archive comment hides the ZIP64 end record).
 * @throws ReaderError `zip-truncated` (no end record in a file that starts like a zip, or structures past the
 * end of the file), `zip-malformed` (bad signatures, inconsistent counts), `zip-unsupported` (multi-disk),
 * `empty-file`, and `io-error`/`file-changed` from the source.
 */
export function openZip(source: ByteSource): ZipArchive {
  const layout = readArchiveLayout(source);
  const { tail, tailOffset, centralDirectoryOffset: offset, centralDirectorySize: size } = layout;
  const cd =
    offset >= tailOffset
      ? tail.subarray(offset - tailOffset, offset - tailOffset + size)
      : source.read(offset, size);
  const columns = parseCentralColumns(cd, {
    file: source.name,
    fileOffset: offset,
    entryCount: layout.entryCount,
    junkBefore: layout.junkBefore,
  });
  return new ZipArchive(source, columns, layout);
}

/** An opened archive: its entries as plain data, plus methods that read a record's bytes on demand. */
export class ZipArchive {
  readonly source: ByteSource;
  /** How many entries the central directory holds. */
  readonly entryCount: number;
  /**
   * torch's archive folder: entry 0's name up to its first `/` (torch's own rule), "" when it has none.
   * Record names (`data.pkl`, `data/0`) are relative to it.
   */
  readonly prefix: string;
  /** Full names that occur more than once; `get` returns the first occurrence, as torch reads it. */
  readonly duplicates: readonly string[];
  /** Bytes before the archive that its offsets do not count (already added to every offset here). */
  readonly junkBefore: number;
  /** Bytes after the end of central directory record and its comment. */
  readonly junkAfter: number;
  /** ZIP64 end records are present (always, for torch-written files). */
  readonly zip64: boolean;
  /** File offset and size of the central directory. */
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;

  private readonly columns: CentralColumns;
  /** Entries made so far, by index (each made once, so that an entry's identity is stable). */
  private readonly made: Array<ZipEntry | undefined>;
  private all: readonly ZipEntry[] | undefined;
  private readonly byName: NameIndex;
  private readonly localHeaders = new Map<ZipEntry, LocalHeader>();

  /** Use `openZip`. */
  constructor(source: ByteSource, columns: CentralColumns, layout: ArchiveLayout) {
    this.source = source;
    this.columns = columns;
    this.entryCount = columns.count;
    this.made = new Array(columns.count);
    const first = columns.count > 0 ? this.entryAt(0).name : "";
    const slash = first.indexOf("/");
    this.prefix = slash < 0 ? "" : first.slice(0, slash);
    this.byName = new NameIndex(columns, (i) => this.entryAt(i).name);
    this.duplicates = this.byName.duplicates;
    this.junkBefore = layout.junkBefore;
    this.junkAfter = layout.junkAfter;
    this.zip64 = layout.zip64 !== undefined;
    this.centralDirectoryOffset = layout.centralDirectoryOffset;
    this.centralDirectorySize = layout.centralDirectorySize;
  }

  /** The entry's name relative to `prefix`, or undefined when it lies outside the prefix folder. */
  recordName(entry: ZipEntry): string | undefined {
    if (this.prefix === "") return entry.name;
    const folder = `${this.prefix}/`;
    return entry.name.startsWith(folder) ? entry.name.slice(folder.length) : undefined;
  }

  /** In central-directory order (made on first use: most reads only look records up by name). */
  get entries(): readonly ZipEntry[] {
    this.all ??= Array.from({ length: this.entryCount }, (_, i) => this.entryAt(i));
    return this.all;
  }

  /** The entry at `index` in central-directory order. */
  entryAt(index: number): ZipEntry {
    let entry = this.made[index];
    if (entry === undefined) {
      if (!(index >= 0 && index < this.entryCount)) throw new RangeError(`no zip entry ${index}`);
      entry = entryOf(this.columns, index);
      this.made[index] = entry;
    }
    return entry;
  }

  /** The first entry named `prefix/record`, in O(1). */
  get(record: string): ZipEntry | undefined {
    const index = this.indexOf(record);
    return index < 0 ? undefined : this.entryAt(index);
  }

  /**
   * The uncompressed size of the first entry named `prefix/record`, or -1 when there is none: what checking
   * 200,000 storage records against their persistent ids needs, without making their entries.
   */
  uncompressedSizeOf(record: string): number {
    const index = this.indexOf(record);
    return index < 0 ? -1 : (this.columns.uncompressedSize[index] as number);
  }

  /**
   * `uncompressedSizeOf(folder + n)` for decimal numbers `n`, as one function: the archive's names are read
   * once for the records `prefix/folder<n>` (no leading zero, at most seven digits; the first of each name),
   * so that 200,000 storage records are found by their keys' numbers rather than each name hashed. Archives
   * with names that are not all ASCII are looked up by name.
   */
  numberedSizes(folder: string): (n: number) => number {
    if (!this.columns.asciiNames) return (n) => this.uncompressedSizeOf(`${folder}${n}`);
    const lead = new TextEncoder().encode(this.prefix === "" ? folder : `${this.prefix}/${folder}`);
    const { names, nameStart, nameLength, uncompressedSize } = this.columns;
    const sizes: number[] = [];
    for (let i = 0; i < this.entryCount; i++) {
      const start = nameStart[i] as number;
      const n = numberAfter(names, start, start + (nameLength[i] as number), lead);
      if (n >= 0 && sizes[n] === undefined) sizes[n] = uncompressedSize[i] as number;
    }
    return (n) => sizes[n] ?? -1;
  }

  /** Whether any entry's flags say it is encrypted. */
  hasEncrypted(): boolean {
    for (let i = 0; i < this.entryCount; i++)
      if (((this.columns.flags[i] as number) & FLAG_ENCRYPTED) !== 0) return true;
    return false;
  }

  private indexOf(record: string): number {
    return this.byName.find(this.prefix === "" ? record : `${this.prefix}/${record}`);
  }

  /**
   * Reads (once; cached) the entry's local file header and checks that its data fits before the central
   * directory. One read of 30 bytes plus the central name length.
   * @throws ReaderError `zip-truncated` when the header or data run past the end of the file, `zip-malformed`
   * when the signature is wrong or the data overlaps the central directory.
   */
  localHeader(entry: ZipEntry): LocalHeader {
    const cached = this.localHeaders.get(entry);
    if (cached !== undefined) return cached;
    const { size, name: file } = this.source;
    const offset = entry.localHeaderOffset;
    const what = describe(entry);
    if (offset + LOCAL_FILE_HEADER_LENGTH > this.centralDirectoryOffset) {
      const pastEnd = offset + LOCAL_FILE_HEADER_LENGTH > size;
      throw zipError(
        pastEnd ? "zip-truncated" : "zip-malformed",
        file,
        offset,
        `${what}: its local file header at offset ${offset} would end at offset ` +
          `${offset + LOCAL_FILE_HEADER_LENGTH}, ` +
          (pastEnd
            ? `past the end of the ${size}-byte file`
            : `inside the central directory, which starts at offset ${this.centralDirectoryOffset}`),
      );
    }
    const head = this.source.read(
      offset,
      Math.min(LOCAL_FILE_HEADER_LENGTH + entry.nameRaw.length, size - offset),
    );
    const view = viewOf(head);
    const signature = view.getUint32(0, true); // 0 - local file header signature
    if (signature !== SIGNATURE.localFileHeader) {
      throw zipError(
        "zip-malformed",
        file,
        offset,
        `${what}: expected a local file header (signature ${hex(SIGNATURE.localFileHeader)}, PK\\x03\\x04) ` +
          `at offset ${offset}, found ${hex(signature)}`,
      );
    }
    // 4 - version needed to extract; 10, 12 - time, date; 14, 18, 22 - CRC and sizes (0 in torch files: the
    // real values follow the data in a data descriptor and are in the central directory)
    const flags = view.getUint16(6, true); // 6 - general purpose bit flag
    const method = view.getUint16(8, true); // 8 - compression method
    const nameLength = view.getUint16(26, true); // 26 - file name length (n)
    const extraLength = view.getUint16(28, true); // 28 - extra field length (m); 30 - name, then extra
    const dataOffset = offset + LOCAL_FILE_HEADER_LENGTH + nameLength + extraLength;
    const dataEnd = dataOffset + entry.compressedSize;
    if (dataEnd > this.centralDirectoryOffset) {
      const pastEnd = dataEnd > size;
      throw zipError(
        pastEnd ? "zip-truncated" : "zip-malformed",
        file,
        dataOffset,
        `${what}: its ${entry.compressedSize} bytes of data start at offset ${dataOffset} (after a ` +
          `${nameLength}-byte name and ${extraLength}-byte extra field in the local header at offset ${offset}) ` +
          `and would end at offset ${dataEnd}, ` +
          (pastEnd
            ? `past the end of the ${size}-byte file`
            : `inside the central directory, which starts at offset ${this.centralDirectoryOffset}`),
      );
    }
    const nameRaw =
      LOCAL_FILE_HEADER_LENGTH + nameLength <= head.length
        ? head.subarray(LOCAL_FILE_HEADER_LENGTH, LOCAL_FILE_HEADER_LENGTH + nameLength)
        : this.source.read(offset + LOCAL_FILE_HEADER_LENGTH, nameLength);
    const header: LocalHeader = {
      offset,
      flags,
      method,
      nameRaw,
      nameMatches: bytesEqual(nameRaw, entry.nameRaw),
      extraLength,
      dataOffset,
    };
    this.localHeaders.set(entry, header);
    return header;
  }

  /** File offset of the entry's first data byte (see `localHeader`). */
  dataOffset(entry: ZipEntry): number {
    return this.localHeader(entry).dataOffset;
  }

  /**
   * The whole record, uncompressed: for small records (`data.pkl`, `version`, `byteorder`). Stored records are
   * one read and may share memory with the source, unless `owned`: then they are read into a buffer of their
   * own, which the caller may give up (`releaseBuffer`). The CRC is not checked (torch does not either; see
   * `verifyCrc`).
   * @throws ReaderError `zip-limit` when the record is larger than `maxBytes`, `zip-unsupported` for encrypted
   * records and methods other than stored/deflate, `zip-malformed` for corrupt deflate data or sizes that
   * disagree with the central directory, and what `localHeader` throws.
   */
  readEntry(entry: ZipEntry, maxBytes = DEFAULT_MAX_ENTRY_BYTES, owned = false): Uint8Array {
    this.checkReadable(entry);
    const largest = Math.max(entry.compressedSize, entry.uncompressedSize);
    if (largest > maxBytes) {
      throw zipError(
        "zip-limit",
        this.source.name,
        entry.localHeaderOffset,
        `${describe(entry)} is ${largest} bytes, more than the ${maxBytes}-byte limit for reading a record ` +
          "into memory",
      );
    }
    const dataOffset = this.dataOffset(entry);
    if (owned && entry.method === METHOD_STORED)
      return this.source.readInto(new Uint8Array(entry.compressedSize), dataOffset);
    const data = this.source.read(dataOffset, entry.compressedSize);
    if (entry.method === METHOD_STORED) return data;
    let inflated: Uint8Array;
    try {
      // An empty record inflating to 1 byte is caught by the size check below.
      inflated = codecs().inflater.inflate(data, Math.max(1, entry.uncompressedSize));
    } catch (error) {
      throw this.inflateError(entry, dataOffset, error);
    }
    if (inflated.length !== entry.uncompressedSize)
      throw this.sizeMismatch(entry, dataOffset, inflated.length);
    return inflated;
  }

  /**
   * The first `length` uncompressed bytes of a record (all of it when shorter), inflating only as much of a
   * deflated record as that takes: enough to tell what a record holds without reading all of it.
   * @throws as `readEntry` (without the size limit).
   */
  readHead(entry: ZipEntry, length: number): Uint8Array {
    this.checkReadable(entry);
    const wanted = Math.min(length, entry.uncompressedSize);
    const dataOffset = this.dataOffset(entry);
    if (entry.method === METHOD_STORED) return this.source.read(dataOffset, wanted);
    // Inflate a compressed prefix: grow it until it yields `wanted` bytes; shrink it when it would inflate
    // past the cap (a prefix of a zip bomb), keeping memory bounded either way.
    const cap = Math.max(16 * wanted, MiB);
    let take = Math.min(entry.compressedSize, wanted + 1024);
    let shrinking = false;
    for (;;) {
      let inflated: Uint8Array;
      try {
        inflated = codecs().inflater.inflatePrefix(this.source.read(dataOffset, take), cap);
      } catch (error) {
        const tooLarge = error instanceof InflateError && error.tooLarge;
        if (!tooLarge || take <= 1) throw this.inflateError(entry, dataOffset, error);
        take = Math.max(1, Math.floor(take / 2));
        shrinking = true;
        continue;
      }
      if (inflated.length >= wanted || take === entry.compressedSize || shrinking)
        return inflated.subarray(0, wanted);
      take = Math.min(entry.compressedSize, take * 4);
    }
  }

  /**
   * The record's uncompressed bytes in pieces of at most `chunkSize` bytes, with memory bounded by a few chunks
   * whatever the record's size: for hashing and verifying multi-GB records. Errors (as for `readEntry`, minus
   * the limit) surface from the iteration.
   */
  async *chunks(
    entry: ZipEntry,
    chunkSize = DEFAULT_CHUNK_SIZE,
  ): AsyncGenerator<Uint8Array, void, undefined> {
    if (!Number.isSafeInteger(chunkSize) || chunkSize < 1) {
      throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
    }
    this.checkReadable(entry);
    const dataOffset = this.dataOffset(entry);
    const raw = readRange(this.source, dataOffset, entry.compressedSize, chunkSize);
    if (entry.method === METHOD_STORED) {
      yield* raw;
      return;
    }
    let produced = 0;
    try {
      for await (const piece of codecs().inflater.stream(raw, chunkSize)) {
        produced += piece.length;
        if (produced > entry.uncompressedSize)
          throw this.sizeMismatch(entry, dataOffset, produced, "at least ");
        yield piece;
      }
    } catch (error) {
      throw isReaderError(error) ? error : this.inflateError(entry, dataOffset, error);
    }
    if (produced !== entry.uncompressedSize) throw this.sizeMismatch(entry, dataOffset, produced);
  }

  /**
   * Recomputes the record's CRC-32 over `chunks` and compares it with the central directory's. A CRC of 0 on a
   * non-empty record means the writer skipped it (torch >= 2.6 option, `skip_data`): reported as skipped.
   */
  async verifyCrc(entry: ZipEntry): Promise<CrcCheck> {
    const expected = entry.crc32;
    if (expected === 0 && entry.uncompressedSize > 0) {
      return { ok: true, skipped: true, expected, actual: undefined };
    }
    let actual = 0;
    for await (const chunk of this.chunks(entry)) actual = crc32(chunk, actual);
    return { ok: actual === expected, skipped: false, expected, actual };
  }

  private checkReadable(entry: ZipEntry): void {
    const file = this.source.name;
    if (entry.encrypted) {
      throw zipError(
        "zip-unsupported",
        file,
        entry.localHeaderOffset,
        `${describe(entry)} is encrypted (flag bit 0 set in ${hex(entry.flags, 4)}); torch never encrypts records`,
      );
    }
    if (entry.method !== METHOD_STORED && entry.method !== METHOD_DEFLATE) {
      throw zipError(
        "zip-unsupported",
        file,
        entry.localHeaderOffset,
        `${describe(entry)} uses compression method ${entry.method}; expected 0 (stored) or 8 (deflate)`,
      );
    }
    if (entry.method === METHOD_STORED && entry.compressedSize !== entry.uncompressedSize) {
      throw zipError(
        "zip-malformed",
        file,
        entry.localHeaderOffset,
        `${describe(entry)} is stored (method 0), so its compressed and uncompressed sizes must be equal; found ` +
          `${entry.compressedSize} and ${entry.uncompressedSize} in the central directory`,
      );
    }
  }

  private inflateError(entry: ZipEntry, dataOffset: number, error: unknown): ReaderError {
    const reason =
      error instanceof InflateError && error.tooLarge
        ? `it inflates to more than the ${entry.uncompressedSize} bytes the central directory declares`
        : `the inflater says: ${error instanceof Error ? error.message : String(error)}`;
    return zipError(
      "zip-malformed",
      this.source.name,
      dataOffset,
      `${describe(entry)}: the deflate data at offset ${dataOffset} is corrupt; ${reason}`,
    );
  }

  private sizeMismatch(entry: ZipEntry, dataOffset: number, actual: number, qualifier = ""): ReaderError {
    return zipError(
      "zip-malformed",
      this.source.name,
      dataOffset,
      `${describe(entry)}: expected ${entry.uncompressedSize} bytes after inflating (the central directory's ` +
        `uncompressed size), got ${qualifier}${actual}`,
    );
  }
}

function describe(entry: ZipEntry): string {
  return `record "${entry.name}" (central directory entry ${entry.index})`;
}

/** Sequential reads of `[offset, offset + length)`, `chunkSize` bytes at a time. */
function* readRange(
  source: ByteSource,
  offset: number,
  length: number,
  chunkSize: number,
): Generator<Uint8Array> {
  for (let done = 0; done < length; done += chunkSize) {
    yield source.read(offset + done, Math.min(chunkSize, length - done));
  }
}

/** The number that `names[start, end)` is `lead` followed by (`decimalIdInBytes`), -1 when it is none. */
function numberAfter(names: Uint8Array, start: number, end: number, lead: Uint8Array): number {
  if (end - start <= lead.length) return -1;
  for (let i = 0; i < lead.length; i++) if (names[start + i] !== lead[i]) return -1;
  return decimalIdInBytes(names, start + lead.length, end);
}
