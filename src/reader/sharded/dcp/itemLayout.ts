import { bytesEqual } from "../../bytes.js";
import { ReaderError } from "../../errors.js";
import type { ByteSource } from "../../source.js";
import { openZip } from "../../zip.js";

/**
 * What the scan of a DCP tensor item reads, to recognise the next item that would scan the same. A tensor
 * item is one `torch.save` archive. Without the deep probe its scan reads the end records, the central
 * directory, every local header and the pickle records; it never reads the other records' bytes (the
 * storage, `byteorder`, the per-save `.data/serialization_id`). Two items of one length whose bytes agree
 * everywhere else, CRC fields aside (they hash the bytes not compared), therefore scan alike. Checking that
 * reads the headers and data.pkl from cached blocks and compares about a kilobyte, where opening and scanning
 * the archive cost ~45 µs an item. The storage's bytes are never read, so large items stay lazy. The tensor
 * reader (`items.ts`) uses the same comparison, with `byteorder` and `version` compared too, to find a chunk's
 * bytes where an alike item had them without opening its archive again.
 */
export interface ItemLayout {
  readonly length: number;
  /** The item's bytes the scan depends on: `[start, start + bytes.length)` each, in order. */
  readonly segments: ReadonlyArray<{
    readonly start: number;
    readonly bytes: Uint8Array;
    /** Over `bytes`, made once: hundreds of thousands of items are compared against one layout. */
    readonly view: DataView;
  }>;
}

const CENTRAL_HEADER_LENGTH = 46;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const DESCRIPTOR_SIGNATURE = 0x08074b50;

/** Records the scan reads whole (zip members it unpickles or inspects as arrays). */
const READ_RECORDS = /\.(pkl|debug_pkl|npy)$/;

/**
 * The layout of the item in `source` (all of it one archive), or undefined when it has a shape the
 * comparison does not cover (an encrypted or compressed record, a central directory it cannot walk).
 * `alsoCompared` names records whose contents count too: a reader that reuses where the tensor's bytes are
 * needs `byteorder` and `version` alike, which the scan does not read.
 */
export function itemLayoutOf(source: ByteSource, alsoCompared?: RegExp): ItemLayout | undefined {
  try {
    const zip = openZip(source);
    const skipped: Array<[number, number]> = [];
    for (const entry of zip.entries) {
      if (entry.encrypted || entry.method !== 0) return undefined;
      skipped.push([entry.localHeaderOffset + 14, entry.localHeaderOffset + 18]); // CRC-32
      const start = zip.dataOffset(entry);
      const end = start + entry.compressedSize;
      if (!READ_RECORDS.test(entry.name) && !alsoCompared?.test(entry.name)) skipped.push([start, end]);
      if ((entry.flags & FLAG_DATA_DESCRIPTOR) !== 0) {
        // The data descriptor after the bytes: an optional signature, then the CRC-32.
        const head = source.read(end, Math.min(4, source.size - end));
        const crc =
          head.length === 4 &&
          new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === DESCRIPTOR_SIGNATURE
            ? end + 4
            : end;
        skipped.push([crc, crc + 4]);
      }
    }
    // Central headers in order: 46 bytes, then the name, extra field and comment whose lengths they give.
    const cd = source.read(zip.centralDirectoryOffset, zip.centralDirectorySize);
    const view = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
    let at = 0;
    for (let i = 0; i < zip.entryCount; i++) {
      if (at + CENTRAL_HEADER_LENGTH > cd.length) return undefined;
      skipped.push([zip.centralDirectoryOffset + at + 16, zip.centralDirectoryOffset + at + 20]);
      const nameLength = view.getUint16(at + 28, true);
      const extraLength = view.getUint16(at + 30, true);
      const commentLength = view.getUint16(at + 32, true);
      at += CENTRAL_HEADER_LENGTH + nameLength + extraLength + commentLength;
    }
    skipped.sort((a, b) => a[0] - b[0]);
    const segments: Array<{ start: number; bytes: Uint8Array; view: DataView }> = [];
    let from = 0;
    for (const [start, end] of [...skipped, [source.size, source.size] as [number, number]]) {
      if (start > from) {
        // A copy of its own (a Node Buffer's `slice` would be a view into a shared pool).
        const bytes = new Uint8Array(source.read(from, start - from));
        segments.push({
          start: from,
          bytes,
          view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        });
      }
      from = Math.max(from, end);
    }
    return { length: source.size, segments };
  } catch (error) {
    if (error instanceof ReaderError) return undefined;
    throw error;
  }
}

/**
 * Items up to this size are read in one piece: a small tensor's item is a couple of kilobytes in a dozen
 * segments, and a read per segment (a system call, or a request) cost more than the bytes. Comparing a layout
 * and opening an item both go by it.
 */
export const WHOLE_ITEM = 64 * 1024;

/** Whether the item in `source` scans as the item `layout` was taken from would. */
export function hasItemLayout(layout: ItemLayout, source: ByteSource): boolean {
  if (source.size !== layout.length) return false;
  if (layout.length > WHOLE_ITEM)
    return layout.segments.every(({ start, bytes }) => bytesEqual(source.read(start, bytes.length), bytes));
  const item = source.read(0, layout.length);
  const view = new DataView(item.buffer, item.byteOffset, item.byteLength);
  for (const segment of layout.segments) if (!equalAt(view, segment.start, segment)) return false;
  return true;
}

/** A segment's bytes equal `view`'s from `start`, compared four at a time (a kilobyte per item adds up). */
function equalAt(
  view: DataView,
  start: number,
  { bytes, view: expected }: { readonly bytes: Uint8Array; readonly view: DataView },
): boolean {
  const words = bytes.length >>> 2;
  for (let i = 0; i < words; i++) {
    if (view.getUint32(start + 4 * i, true) !== expected.getUint32(4 * i, true)) return false;
  }
  for (let i = words * 4; i < bytes.length; i++) if (view.getUint8(start + i) !== bytes[i]) return false;
  return true;
}

/** How many layouts are kept per item length: a weight and its bias may share one length. */
const LAYOUTS_PER_LENGTH = 4;

/**
 * The layouts of the items handled so far, each with what handling it found out (its scan, where its
 * tensor's bytes are), by item length, the latest first: an item laid out as one of them gets that answer.
 */
export class ItemLayouts<T> {
  private readonly byLength = new Map<number, Array<{ readonly layout: ItemLayout; readonly value: T }>>();

  /** The answer of an item laid out as the one in `source`, or undefined. */
  find(source: ByteSource): T | undefined {
    return this.byLength.get(source.size)?.find((known) => hasItemLayout(known.layout, source))?.value;
  }

  remember(layout: ItemLayout, value: T): void {
    const known = this.byLength.get(layout.length) ?? [];
    this.byLength.set(layout.length, [{ layout, value }, ...known].slice(0, LAYOUTS_PER_LENGTH));
  }
}
