import { bytesEqual } from "../../bytes.js";
import { ReaderError } from "../../errors.js";
import type { ByteSource } from "../../source.js";
import { openZip, type ZipArchive } from "../../zip.js";

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
  readonly segments: ReadonlyArray<{ readonly start: number; readonly bytes: Uint8Array }>;
  /** The same as masked words, for an item read whole (at most `WHOLE_ITEM`); see `maskedWords`. */
  readonly words: MaskedWords | undefined;
}

/**
 * A small item's compared bytes as 32-bit words of the whole item, each with a mask of the bytes that count,
 * and the runs of words worth comparing: one loop over about 400 words, where comparing its 28 segments
 * one by one (most of 4 to 22 bytes, between CRCs) cost four times as much.
 */
interface MaskedWords {
  readonly expected: Uint32Array;
  readonly mask: Uint32Array;
  /** `[fromWord, toWord)` pairs covering every word with a mask. */
  readonly runs: Int32Array;
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
    const headers = centralHeaders(source, zip);
    if (headers === undefined) return undefined;
    for (const at of headers) skipped.push([at + 16, at + 20]); // CRC-32
    skipped.sort((a, b) => a[0] - b[0]);
    const segments: Array<{ start: number; bytes: Uint8Array }> = [];
    let from = 0;
    for (const [start, end] of [...skipped, [source.size, source.size] as [number, number]]) {
      if (start > from) {
        // A copy of its own (a Node Buffer's `slice` would be a view into a shared pool).
        segments.push({ start: from, bytes: new Uint8Array(source.read(from, start - from)) });
      }
      from = Math.max(from, end);
    }
    const words = source.size <= WHOLE_ITEM ? maskedWords(source.size, segments) : undefined;
    return { length: source.size, segments, words };
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

/** Words whose masks are zero for fewer than this many words in a row are compared anyway. */
const RUN_GAP = 4;

function maskedWords(length: number, segments: ItemLayout["segments"]): MaskedWords {
  const count = Math.ceil(length / 4);
  const expectedBytes = new Uint8Array(count * 4);
  const maskBytes = new Uint8Array(count * 4);
  for (const { start, bytes } of segments) {
    expectedBytes.set(bytes, start);
    maskBytes.fill(0xff, start, start + bytes.length);
  }
  const expected = new Uint32Array(expectedBytes.buffer);
  const mask = new Uint32Array(maskBytes.buffer);
  const runs: number[] = [];
  for (let w = 0; w < count; w++) {
    if (mask[w] === 0) continue;
    const last = runs.length - 1;
    if (last > 0 && w - (runs[last] as number) <= RUN_GAP) runs[last] = w + 1;
    else runs.push(w, w + 1);
  }
  return { expected, mask, runs: Int32Array.from(runs) };
}

/** Whether the item in `source` scans as the item `layout` was taken from would. */
export function hasItemLayout(layout: ItemLayout, source: ByteSource): boolean {
  if (source.size !== layout.length) return false;
  if (layout.words === undefined)
    return layout.segments.every(({ start, bytes }) => bytesEqual(source.read(start, bytes.length), bytes));
  return matchesWords(source.read(0, layout.length), layout.words);
}

/** An aligned copy of the item being compared: word loads from a typed array, not through a DataView. */
const scratch = new Uint8Array(WHOLE_ITEM + 4);
const scratchWords = new Uint32Array(scratch.buffer);

/**
 * The item's bytes against the masked words. Masks and words are both made in the machine's byte order, so
 * they agree whatever it is; past the item's end the mask is zero, whatever the scratch holds there.
 */
function matchesWords(item: Uint8Array, { expected, mask, runs }: MaskedWords): boolean {
  scratch.set(item);
  for (let r = 0; r < runs.length; r += 2) {
    const to = runs[r + 1] as number;
    for (let w = runs[r] as number; w < to; w++) {
      if ((((scratchWords[w] as number) ^ (expected[w] as number)) & (mask[w] as number)) !== 0) return false;
    }
  }
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

  /** The same for a small item's bytes in hand (at most `WHOLE_ITEM`), compared where they are. */
  findBytes(item: Uint8Array): T | undefined {
    const known = this.byLength.get(item.length);
    if (known === undefined) return undefined;
    for (const { layout, value } of known) if (layout.words && matchesWords(item, layout.words)) return value;
    return undefined;
  }

  remember(layout: ItemLayout, value: T): void {
    const known = this.byLength.get(layout.length) ?? [];
    this.byLength.set(layout.length, [{ layout, value }, ...known].slice(0, LAYOUTS_PER_LENGTH));
  }
}

/** Where one stored record of an item lies and where the central directory keeps its CRC-32. */
export interface RecordCheck {
  readonly name: string;
  readonly data: number;
  readonly size: number;
  /** The CRC-32 field of the record's central header, from the item's first byte. */
  readonly crcAt: number;
}

/**
 * The records of the item in `source` (one archive) for a CRC check, or undefined when a record is not
 * stored plainly (compressed or encrypted: its CRC covers bytes that must be inflated first). Items laid out
 * alike (`ItemLayouts`) have their records at the same places, so these serve all of them.
 */
export function recordChecksOf(source: ByteSource): RecordCheck[] | undefined {
  const zip = openZip(source);
  const headers = centralHeaders(source, zip);
  if (headers === undefined || zip.entries.some((e) => e.encrypted || e.method !== 0)) return undefined;
  return zip.entries.map((entry, i) => ({
    name: entry.name,
    data: zip.dataOffset(entry),
    size: entry.compressedSize,
    crcAt: (headers[i] as number) + 16,
  }));
}

/**
 * Where each central header starts, from the item's first byte, in order: 46 bytes each, then the name,
 * extra field and comment whose lengths they give. Undefined when they run past the central directory.
 */
function centralHeaders(source: ByteSource, zip: ZipArchive): number[] | undefined {
  const cd = source.read(zip.centralDirectoryOffset, zip.centralDirectorySize);
  const view = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const starts: number[] = [];
  let at = 0;
  for (let i = 0; i < zip.entryCount; i++) {
    if (at + CENTRAL_HEADER_LENGTH > cd.length) return undefined;
    starts.push(zip.centralDirectoryOffset + at);
    at +=
      CENTRAL_HEADER_LENGTH +
      view.getUint16(at + 28, true) +
      view.getUint16(at + 30, true) +
      view.getUint16(at + 32, true);
  }
  return starts;
}
