import { crc32, deflateRawSync } from "node:zlib";

/**
 * A small zip writer for tests that lays records out the way torch's writer (PyTorch's miniz) does: local
 * headers with CRC and sizes 0, flags 0x0808, an `FB` extra field padding each record's data to `alignment`,
 * a data descriptor after every non-empty record, a central directory with the real values, then a ZIP64 end
 * record, a ZIP64 locator and the classic end record. Options bend each of those for failure tests.
 */

export interface ZipSpec {
  /** Full name, prefix folder included. */
  readonly name: string | Uint8Array;
  readonly data?: Uint8Array | string;
  /** Compress with raw deflate (method 8), as torch does for TorchScript code records. */
  readonly deflate?: boolean;
  /** Method number to write instead (data written as given). */
  readonly method?: number;
  /** Flag bit 11; default true, as torch writes. */
  readonly utf8?: boolean;
  /** Flag bit 0 (the data is written as given, not encrypted). */
  readonly encrypted?: boolean;
  /** Write ZIP64 extra fields for sizes and offset (local and central) as if they were >= 4 GiB. */
  readonly zip64?: boolean;
  /** A different name in the local header. */
  readonly localName?: string | Uint8Array;
  /** Values the central directory records instead of the real ones; those >= 0xFFFFFFFF go to a ZIP64 extra. */
  readonly central?: {
    readonly crc32?: number;
    readonly compressedSize?: number;
    readonly uncompressedSize?: number;
    readonly localHeaderOffset?: number;
  };
}

export interface ZipOptions {
  /** Data alignment through the `FB` padding field; default 64. */
  readonly alignment?: number;
  /** Write the ZIP64 end record and locator; default true, as torch always does. */
  readonly zip64End?: boolean;
  /** Put 0xFFFF / 0xFFFFFFFF in the classic end record, as for an archive over 4 GiB (needs `zip64End`). */
  readonly sentinels?: boolean;
  /** Bytes prepended to the archive without counting them in its offsets (`cat stub.exe archive.zip`). */
  readonly junkBefore?: Uint8Array;
  /** Count `junkBefore` in the offsets (`zip -A`). */
  readonly adjustOffsets?: boolean;
  readonly junkAfter?: Uint8Array;
  readonly comment?: string;
}

/** Where things ended up, as file offsets (junk included). */
export interface BuiltZip {
  readonly bytes: Uint8Array;
  readonly entries: readonly {
    readonly name: string;
    readonly localHeaderOffset: number;
    readonly dataOffset: number;
    readonly crc32: number;
    readonly compressedSize: number;
    readonly uncompressedSize: number;
  }[];
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
  readonly zip64EndOffset: number | undefined;
  readonly endOffset: number;
}

const encoder = new TextEncoder();
const U32_MAX = 0xffffffff;

export function bytesOf(value: Uint8Array | string): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** A growable little-endian byte buffer. */
export class ByteWriter {
  private buffer = new Uint8Array(4096);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + extra));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
    this.view = new DataView(grown.buffer);
  }

  u16(value: number): this {
    this.reserve(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, value >>> 0, true);
    this.length += 4;
    return this;
  }

  u64(value: number | bigint): this {
    const big = BigInt(value);
    this.reserve(8);
    this.view.setBigUint64(this.length, big, true);
    this.length += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  fill(byte: number, count: number): this {
    this.reserve(count);
    this.buffer.fill(byte, this.length, this.length + count);
    this.length += count;
    return this;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/** Raw central directory header fields: 32-bit values written as given, extra field bytes as given. */
export interface CentralRecordFields {
  readonly name: Uint8Array;
  readonly flags?: number;
  readonly method?: number;
  readonly crc32?: number;
  readonly compressedSize?: number;
  readonly uncompressedSize?: number;
  readonly localHeaderOffset?: number;
  readonly extra?: Uint8Array;
  readonly comment?: Uint8Array;
}

/** Appends one central directory file header (46 bytes + name + extra + comment). */
export function writeCentralRecord(w: ByteWriter, fields: CentralRecordFields): void {
  const extra = fields.extra ?? new Uint8Array(0);
  const comment = fields.comment ?? new Uint8Array(0);
  const method = fields.method ?? 0;
  w.u32(0x02014b50) // 0 - signature
    .u16(0) // 4 - version made by (torch: 0)
    .u16(method === 8 ? 20 : 0) // 6 - version needed to extract
    .u16(fields.flags ?? 0x0808) // 8 - flags
    .u16(method) // 10 - method
    .u16(0) // 12 - time
    .u16(0) // 14 - date
    .u32(fields.crc32 ?? 0) // 16 - crc-32
    .u32(fields.compressedSize ?? 0) // 20 - compressed size
    .u32(fields.uncompressedSize ?? 0) // 24 - uncompressed size
    .u16(fields.name.length) // 28 - name length
    .u16(extra.length) // 30 - extra length
    .u16(comment.length) // 32 - comment length
    .u16(0) // 34 - disk number start
    .u16(0) // 36 - internal attributes
    .u32(0) // 38 - external attributes
    .u32(fields.localHeaderOffset ?? 0) // 42 - local header offset
    .bytes(fields.name)
    .bytes(extra)
    .bytes(comment);
}

/** A ZIP64 extended information extra field holding `values` (u64 each) in the order given. */
export function zip64Extra(values: readonly (number | bigint)[]): Uint8Array {
  const w = new ByteWriter().u16(0x0001).u16(values.length * 8);
  for (const value of values) w.u64(value);
  return w.result();
}

/** Builds a torch-style zip of `specs`, in order. */
export function buildZip(specs: readonly ZipSpec[], options: ZipOptions = {}): BuiltZip {
  const alignment = options.alignment ?? 64;
  const junk = options.junkBefore ?? new Uint8Array(0);
  const base = options.adjustOffsets ? junk.length : 0; // added to every offset the archive records
  const w = new ByteWriter();
  w.bytes(junk);
  const archiveOffset = (fileOffset: number) => fileOffset - junk.length + base;

  const placed: {
    spec: ZipSpec;
    nameRaw: Uint8Array;
    flags: number;
    method: number;
    crc32: number;
    compressedSize: number;
    uncompressedSize: number;
    localHeaderOffset: number;
    dataOffset: number;
  }[] = [];

  for (const spec of specs) {
    const nameRaw = bytesOf(spec.name);
    const localName = spec.localName === undefined ? nameRaw : bytesOf(spec.localName);
    const plain = bytesOf(spec.data ?? "");
    const stored = spec.deflate ? deflateRawSync(plain) : plain;
    const method = spec.method ?? (spec.deflate ? 8 : 0);
    const checksum = crc32(plain);
    let flags = plain.length > 0 ? 0x0808 : 0x0800;
    if (spec.utf8 === false) flags &= ~0x0800;
    if (spec.encrypted) flags |= 0x0001;
    const headerOffset = w.length;
    const recordedOffset = archiveOffset(headerOffset);

    // torch: start = H + 30 + L + 4, plus the ZIP64 local extra when used; pad so the data is aligned.
    const wide = spec.zip64 === true;
    let start = recordedOffset + 30 + localName.length + 4;
    if (wide) start += 4 + 24;
    const padding = (alignment - (start % alignment)) % alignment;
    const extraLength = (wide ? 28 : 0) + 4 + padding;

    w.u32(0x04034b50) // 0 - signature
      .u16(method === 8 ? 20 : 0) // 4 - version needed
      .u16(flags) // 6 - flags
      .u16(method) // 8 - method
      .u16(0) // 10 - time
      .u16(0) // 12 - date
      .u32(0) // 14 - crc-32 (in the data descriptor)
      .u32(0) // 18 - compressed size (in the data descriptor)
      .u32(0) // 22 - uncompressed size (in the data descriptor)
      .u16(localName.length) // 26 - name length
      .u16(extraLength) // 28 - extra length
      .bytes(localName);
    if (wide) w.bytes(zip64Extra([plain.length, stored.length, recordedOffset]));
    w.u16(0x4246).u16(padding).fill(0x5a, padding); // "FB", size, "ZZZ..."
    const dataOffset = w.length;
    w.bytes(stored);
    if (plain.length > 0) {
      w.u32(0x08074b50).u32(checksum); // data descriptor
      if (wide) w.u64(stored.length).u64(plain.length);
      else w.u32(stored.length).u32(plain.length);
    }
    placed.push({
      spec,
      nameRaw,
      flags,
      method,
      crc32: checksum,
      compressedSize: stored.length,
      uncompressedSize: plain.length,
      localHeaderOffset: headerOffset,
      dataOffset,
    });
  }

  const centralDirectoryOffset = w.length;
  for (const p of placed) {
    const central = p.spec.central ?? {};
    const usize = central.uncompressedSize ?? p.uncompressedSize;
    const csize = central.compressedSize ?? p.compressedSize;
    const lho = central.localHeaderOffset ?? archiveOffset(p.localHeaderOffset);
    const force = p.spec.zip64 === true;
    const wide: number[] = [];
    const field = (value: number): number => {
      if (!force && value < U32_MAX) return value;
      wide.push(value);
      return U32_MAX;
    };
    const fields = {
      uncompressedSize: field(usize),
      compressedSize: field(csize),
      localHeaderOffset: field(lho),
    };
    writeCentralRecord(w, {
      name: p.nameRaw,
      flags: p.flags,
      method: p.method,
      crc32: central.crc32 ?? p.crc32,
      ...fields,
      ...(wide.length > 0 ? { extra: zip64Extra(wide) } : {}),
    });
  }
  const centralDirectorySize = w.length - centralDirectoryOffset;
  const count = placed.length;

  let zip64EndOffset: number | undefined;
  if (options.zip64End ?? true) {
    zip64EndOffset = w.length;
    w.u32(0x06064b50) // 0 - ZIP64 EOCDR signature
      .u64(44) // 4 - size of the rest of the record
      .u16(0x031e) // 12 - version made by
      .u16(0x002d) // 14 - version needed
      .u32(0) // 16 - this disk
      .u32(0) // 20 - central directory disk
      .u64(count) // 24 - entries on this disk
      .u64(count) // 32 - total entries
      .u64(centralDirectorySize) // 40 - central directory size
      .u64(archiveOffset(centralDirectoryOffset)); // 48 - central directory offset
    w.u32(0x07064b50) // 0 - ZIP64 locator signature
      .u32(0) // 4 - disk with the ZIP64 EOCDR
      .u64(archiveOffset(zip64EndOffset)) // 8 - its offset
      .u32(1); // 16 - total disks
  }
  const sentinels = options.sentinels === true;
  const comment = bytesOf(options.comment ?? "");
  const endOffset = w.length;
  w.u32(0x06054b50) // 0 - EOCDR signature
    .u16(0) // 4 - this disk
    .u16(0) // 6 - central directory disk
    .u16(sentinels ? 0xffff : Math.min(count, 0xffff)) // 8 - entries on this disk
    .u16(sentinels ? 0xffff : Math.min(count, 0xffff)) // 10 - total entries
    .u32(sentinels ? U32_MAX : Math.min(centralDirectorySize, U32_MAX)) // 12 - central directory size
    .u32(sentinels ? U32_MAX : Math.min(archiveOffset(centralDirectoryOffset), U32_MAX)) // 16 - its offset
    .u16(comment.length) // 20 - comment length
    .bytes(comment);
  w.bytes(options.junkAfter ?? new Uint8Array(0));

  return {
    bytes: w.result(),
    entries: placed.map((p) => ({
      name: new TextDecoder().decode(p.nameRaw),
      localHeaderOffset: p.localHeaderOffset,
      dataOffset: p.dataOffset,
      crc32: p.crc32,
      compressedSize: p.compressedSize,
      uncompressedSize: p.uncompressedSize,
    })),
    centralDirectoryOffset,
    centralDirectorySize,
    zip64EndOffset,
    endOffset,
  };
}

/** Records named relative to `prefix`, as `torch.save` names them (`archive/data.pkl`, ...). */
export function torchRecords(
  prefix: string,
  records: Readonly<Record<string, Uint8Array | string>>,
): ZipSpec[] {
  return Object.entries(records).map(([name, data]) => ({ name: `${prefix}/${name}`, data }));
}

/** A little-endian u32/u16 patch, for corrupting a built archive in place. */
export function patchU32(bytes: Uint8Array, offset: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(offset, value >>> 0, true);
}

export function patchU16(bytes: Uint8Array, offset: number, value: number): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint16(offset, value, true);
}

export function patchU64(bytes: Uint8Array, offset: number, value: number | bigint): void {
  new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setBigUint64(offset, BigInt(value), true);
}
