import { BufferSource, type ByteSource } from "../../source.js";
import { looksLikeZip } from "../../zip.js";
import { RangeSource } from "../rangeSource.js";
import { dataFileReader } from "./dataFile.js";
import { WHOLE_ITEM } from "./itemLayout.js";

/**
 * A `.distcp` data file's items as its scan and its CRC check read them, in offset order. A small item (at
 * most `WHOLE_ITEM`) is a view into one buffer that is read again and again, valid until the next call:
 * fresh buffers per block cost a page fault per 4 KiB and, with a second thread scanning, made both threads
 * several times slower (the kernel maps and unmaps them for each). A large item is a range of the file behind
 * cached blocks, so that reading its headers never reads its tensor bytes.
 */
export class ItemReader {
  private readonly buffer = new Uint8Array(WINDOW_BYTES);
  private start = 0;
  private end = 0;
  private blocks: ByteSource | undefined;

  constructor(
    private readonly raw: ByteSource,
    /** How many items the file holds, which decides the blocks' size (`dataFileReader`). */
    private readonly items: number,
  ) {}

  /** Whether the item at `offset` begins as a zip archive (a `torch.save`), not a safetensors blob. */
  isArchive(offset: number, length: number): boolean {
    const n = Math.min(4, this.raw.size - offset);
    return looksLikeZip(length <= WHOLE_ITEM ? this.small(offset, n) : this.large().read(offset, n));
  }

  /** A small item's bytes where they lie: valid until the next call. */
  small(offset: number, length: number): Uint8Array {
    if (offset < this.start || offset + length > this.end) {
      const size = Math.min(WINDOW_BYTES, this.raw.size - offset);
      this.raw.readInto(this.buffer.subarray(0, size), offset);
      this.start = offset;
      this.end = offset + size;
    }
    return this.buffer.subarray(offset - this.start, offset - this.start + length);
  }

  /** A small item as a source of its own, named as the item's range: what a full scan may keep outlives it. */
  copy(offset: number, length: number): ByteSource {
    return new BufferSource(
      this.small(offset, length).slice(),
      `${this.raw.name}[${offset}..${offset + length}]`,
    );
  }

  /** Bytes `[offset, offset + length)` as a source of their own, read through cached blocks. */
  range(offset: number, length: number): RangeSource {
    return new RangeSource(this.large(), offset, length);
  }

  private large(): ByteSource {
    this.blocks ??= dataFileReader(this.raw, this.items);
    return this.blocks;
  }
}

const WINDOW_BYTES = 1024 * 1024;
