import { writeSync } from "node:fs";
import { crc32 } from "../reader/zip/crc32.js";

/**
 * Writes zip archives the way torch's `PyTorchStreamWriter` (PyTorch's miniz) does, so that torch, and mmap
 * loading, read them like its own: every record stored, its data 64-byte aligned by an `FB` padding field in
 * the local header only, a data descriptor after non-empty records, ZIP64 fields exactly when a size or offset
 * reaches 0xFFFFFFFF, and ZIP64 end records always (`pytorch-formats.md` section 2.3).
 *
 * Data is written with positional writes to a file descriptor and can be streamed record by record, so a
 * multi-GB record never sits in memory.
 */

const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const DATA_DESCRIPTOR_SIGNATURE = 0x08074b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const ZIP64_END_SIGNATURE = 0x06064b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const END_SIGNATURE = 0x06054b50;
const LIMIT32 = 0xffffffff;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;

/** A chunk of record data, or a number of zero bytes to skip (left as a hole in a sparse file). */
export type RecordChunk = Uint8Array | number;

interface WrittenRecord {
  readonly nameRaw: Buffer;
  readonly size: number;
  readonly crc: number;
  readonly localHeaderOffset: number;
  readonly flags: number;
}

export interface TorchZipWriterOptions {
  /** Data alignment; torch uses 64 (and writes it to `.storage_alignment` since 2.7). */
  readonly alignment?: number;
  /** Sees every byte written, in file order (for hashing and progress); skipped holes are not seen. */
  readonly onWrite?: (bytes: Uint8Array) => void;
}

export class TorchZipWriter {
  private readonly fd: number;
  private readonly prefix: string;
  private readonly alignment: number;
  private readonly onWrite: ((bytes: Uint8Array) => void) | undefined;
  private readonly records: WrittenRecord[] = [];
  private position = 0;

  /** `archiveName` is torch's archive folder (the saved file's basename without extension, or `archive`). */
  constructor(fd: number, archiveName: string, options: TorchZipWriterOptions = {}) {
    this.fd = fd;
    this.prefix = `${archiveName}/`;
    this.alignment = options.alignment ?? 64;
    this.onWrite = options.onWrite;
  }

  get bytesWritten(): number {
    return this.position;
  }

  private write(bytes: Uint8Array): void {
    let done = 0;
    while (done < bytes.length) {
      done += writeSync(this.fd, bytes, done, bytes.length - done, this.position + done);
    }
    this.position += bytes.length;
    this.onWrite?.(bytes);
  }

  /** Adds a record held in memory. */
  addRecord(name: string, data: Uint8Array): void {
    this.addRecordStream(name, data.length, [data]);
  }

  /**
   * Adds a record of `size` bytes produced by `chunks`. The CRC is computed while writing unless `crcOverride`
   * is given (skipped bytes count as zeros, which only the override can account for cheaply).
   */
  addRecordStream(name: string, size: number, chunks: Iterable<RecordChunk>, crcOverride?: number): void {
    const nameRaw = Buffer.from(this.prefix + name, "utf8");
    const localHeaderOffset = this.position;
    const largeSize = size >= LIMIT32;
    const largeOffset = localHeaderOffset >= LIMIT32;
    const zip64Fields: bigint[] = [];
    if (largeSize) zip64Fields.push(BigInt(size), BigInt(size));
    if (largeOffset) zip64Fields.push(BigInt(localHeaderOffset));
    const zip64Extra = zip64Fields.length > 0 ? extraField(0x0001, u64s(zip64Fields)) : Buffer.alloc(0);

    // torch's getPadding: data starts at the next multiple of the alignment after header, name and extras.
    const start = localHeaderOffset + 30 + nameRaw.length + zip64Extra.length + 4;
    const padding = (this.alignment - (start % this.alignment)) % this.alignment;
    const paddingExtra = extraField(0x4246, Buffer.alloc(padding, "Z"));
    const flags = size > 0 ? FLAG_UTF8 | FLAG_DATA_DESCRIPTOR : FLAG_UTF8;

    const header = Buffer.alloc(30);
    header.writeUInt32LE(LOCAL_HEADER_SIGNATURE, 0); // 0 - local file header signature
    header.writeUInt16LE(0, 4); // 4 - version needed to extract (miniz writes 0 for stored)
    header.writeUInt16LE(flags, 6); // 6 - general purpose bit flag
    header.writeUInt16LE(0, 8); // 8 - compression method: stored
    // 10..29 - time, date, CRC-32 and sizes are zero: the data descriptor and central directory hold them
    header.writeUInt16LE(nameRaw.length, 26); // 26 - file name length
    header.writeUInt16LE(zip64Extra.length + paddingExtra.length, 28); // 28 - extra field length
    this.write(header);
    this.write(nameRaw);
    this.write(zip64Extra);
    this.write(paddingExtra);

    let crc = 0;
    let written = 0;
    for (const chunk of chunks) {
      if (typeof chunk === "number") {
        this.position += chunk;
        written += chunk;
      } else {
        this.write(chunk);
        if (crcOverride === undefined) crc = crc32(chunk, crc);
        written += chunk.length;
      }
    }
    if (written !== size) throw new Error(`record ${name}: wrote ${written} bytes, declared ${size}`);
    if (crcOverride !== undefined) crc = crcOverride;

    if (size > 0) {
      const descriptor = Buffer.alloc(zip64Fields.length > 0 ? 24 : 16);
      descriptor.writeUInt32LE(DATA_DESCRIPTOR_SIGNATURE, 0);
      descriptor.writeUInt32LE(crc, 4);
      if (zip64Fields.length > 0) {
        descriptor.writeBigUInt64LE(BigInt(size), 8);
        descriptor.writeBigUInt64LE(BigInt(size), 16);
      } else {
        descriptor.writeUInt32LE(size, 8);
        descriptor.writeUInt32LE(size, 12);
      }
      this.write(descriptor);
    }
    this.records.push({ nameRaw, size, crc, localHeaderOffset, flags });
  }

  /** Writes the central directory and the end records. The archive is complete only after this. */
  finish(): void {
    const centralOffset = this.position;
    for (const record of this.records) {
      const fields: bigint[] = [];
      if (record.size >= LIMIT32) fields.push(BigInt(record.size), BigInt(record.size));
      if (record.localHeaderOffset >= LIMIT32) fields.push(BigInt(record.localHeaderOffset));
      const extra = fields.length > 0 ? extraField(0x0001, u64s(fields)) : Buffer.alloc(0);
      const header = Buffer.alloc(46);
      header.writeUInt32LE(CENTRAL_HEADER_SIGNATURE, 0); // 0 - central file header signature
      header.writeUInt16LE(0, 4); // 4 - version made by
      header.writeUInt16LE(0, 6); // 6 - version needed to extract
      header.writeUInt16LE(record.flags, 8); // 8 - general purpose bit flag
      header.writeUInt16LE(0, 10); // 10 - compression method: stored
      // 12, 14 - time and date: zero, as torch writes them
      header.writeUInt32LE(record.crc, 16); // 16 - CRC-32
      header.writeUInt32LE(Math.min(record.size, LIMIT32), 20); // 20 - compressed size
      header.writeUInt32LE(Math.min(record.size, LIMIT32), 24); // 24 - uncompressed size
      header.writeUInt16LE(record.nameRaw.length, 28); // 28 - file name length
      header.writeUInt16LE(extra.length, 30); // 30 - extra field length
      // 32..41 - comment length, disk number, attributes: zero
      header.writeUInt32LE(Math.min(record.localHeaderOffset, LIMIT32), 42); // 42 - local header offset
      this.write(header);
      this.write(record.nameRaw);
      this.write(extra);
    }
    const centralSize = this.position - centralOffset;
    const zip64EndOffset = this.position;
    const count = this.records.length;

    const zip64End = Buffer.alloc(56);
    zip64End.writeUInt32LE(ZIP64_END_SIGNATURE, 0); // 0 - zip64 end of central dir signature
    zip64End.writeBigUInt64LE(44n, 4); // 4 - size of the rest of this record
    zip64End.writeUInt16LE(0x031e, 12); // 12 - version made by (as miniz)
    zip64End.writeUInt16LE(0x002d, 14); // 14 - version needed (4.5: ZIP64)
    zip64End.writeBigUInt64LE(BigInt(count), 24); // 24 - entries on this disk
    zip64End.writeBigUInt64LE(BigInt(count), 32); // 32 - total entries
    zip64End.writeBigUInt64LE(BigInt(centralSize), 40); // 40 - central directory size
    zip64End.writeBigUInt64LE(BigInt(centralOffset), 48); // 48 - central directory offset
    this.write(zip64End);

    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(ZIP64_LOCATOR_SIGNATURE, 0); // 0 - zip64 end locator signature
    locator.writeBigUInt64LE(BigInt(zip64EndOffset), 8); // 8 - offset of the zip64 end record
    locator.writeUInt32LE(1, 16); // 16 - total number of disks
    this.write(locator);

    const end = Buffer.alloc(22);
    end.writeUInt32LE(END_SIGNATURE, 0); // 0 - end of central dir signature
    end.writeUInt16LE(Math.min(count, 0xffff), 8); // 8 - entries on this disk
    end.writeUInt16LE(Math.min(count, 0xffff), 10); // 10 - total entries
    end.writeUInt32LE(Math.min(centralSize, LIMIT32), 12); // 12 - central directory size
    end.writeUInt32LE(Math.min(centralOffset, LIMIT32), 16); // 16 - central directory offset
    this.write(end);
  }
}

function extraField(id: number, data: Uint8Array): Buffer {
  const field = Buffer.alloc(4 + data.length);
  field.writeUInt16LE(id, 0);
  field.writeUInt16LE(data.length, 2);
  field.set(data, 4);
  return field;
}

function u64s(values: readonly bigint[]): Buffer {
  const out = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => {
    out.writeBigUInt64LE(v, i * 8);
  });
  return out;
}
