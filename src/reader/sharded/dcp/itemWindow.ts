import type { ByteSource } from "../../source.js";

/**
 * Views of a data file's small items, in offset order, through one buffer that is read again and again: each
 * view is valid until the next call. Fresh buffers per block cost a page fault per 4 KiB and, with a second
 * thread scanning, made both threads several times slower (the kernel maps and unmaps them for each).
 */
export class ItemWindow {
  private readonly buffer = new Uint8Array(WINDOW_BYTES);
  private start = 0;
  private end = 0;
  constructor(private readonly raw: ByteSource) {}

  /** `[offset, offset + length)`, `length` at most `WINDOW_BYTES` (small items: `WHOLE_ITEM`). */
  view(offset: number, length: number): Uint8Array {
    if (offset < this.start || offset + length > this.end) {
      const size = Math.min(WINDOW_BYTES, this.raw.size - offset);
      this.raw.readInto(this.buffer.subarray(0, size), offset);
      this.start = offset;
      this.end = offset + size;
    }
    return this.buffer.subarray(offset - this.start, offset - this.start + length);
  }
}

const WINDOW_BYTES = 1024 * 1024;
