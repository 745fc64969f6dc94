import { type ByteSource, type FileIdentity, outOfBounds } from "./source.js";

/**
 * Small reads of another source served from a few cached aligned blocks, as read-only views. A `.distcp` file is a run of
 * `torch.save` archives, one per item, and opening each one is a dozen reads of tens of bytes (end records,
 * central directory, every local header, data.pkl): 40,000 items made half a million system calls. With
 * blocks of 4 KiB, items smaller than a block cost a share of one read, and a large item costs the block
 * of its head (local headers, data.pkl) and of its tail (central directory, end records), about what the
 * kernel's readahead fetches anyway. Reads longer than a block go straight through, so tensor bytes are
 * never copied through the cache. Closing it leaves the parent open (its owner closes it).
 */
export class BlockCacheSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private readonly parent: ByteSource;
  private readonly blockSize: number;
  private readonly maxBlocks: number;
  /** Block index to bytes, least recently used first (a Map keeps insertion order). */
  private readonly blocks = new Map<number, Uint8Array>();
  /** The most recently used block (the last in `blocks`). */
  private newestIndex = -1;
  private newest: Uint8Array | undefined;
  /** The parent's, so that another thread can open the same file (parallel hashing). */
  readonly identity?: () => FileIdentity;

  constructor(
    parent: ByteSource,
    options: { readonly blockSize?: number; readonly maxBlocks?: number } = {},
  ) {
    this.parent = parent;
    this.name = parent.name;
    this.size = parent.size;
    this.blockSize = options.blockSize ?? 4096;
    this.maxBlocks = options.maxBlocks ?? 16;
    const identity = parent.identity?.bind(parent);
    if (identity !== undefined) this.identity = identity;
  }

  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size)
      throw outOfBounds(this.name, offset, length, this.size);
    if (length === 0) return new Uint8Array(0);
    if (length > this.blockSize) return this.parent.read(offset, length);
    const first = Math.floor(offset / this.blockSize);
    const last = Math.floor((offset + length - 1) / this.blockSize);
    if (first === last) {
      // A view, not a copy: a fresh small array costs more than the read it saves (V8 allocates it on its
      // heap and moves it out when the zip reader's DataView takes its `.buffer`). The readers never write
      // to what `read` returns; this source is for them only.
      const start = offset - first * this.blockSize;
      return this.block(first).subarray(start, start + length);
    }
    const out = new Uint8Array(length);
    const head = this.block(first);
    const split = (first + 1) * this.blockSize - offset;
    out.set(head.subarray(offset - first * this.blockSize), 0);
    out.set(this.block(last).subarray(0, length - split), split);
    return out;
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    if (target.length > this.blockSize) return this.parent.readInto(target, offset);
    target.set(this.read(offset, target.length));
    return target;
  }

  assertUnchanged(): void {
    this.parent.assertUnchanged();
  }

  close(): void {
    this.blocks.clear();
    this.newest = undefined;
    this.newestIndex = -1;
  }

  private block(index: number): Uint8Array {
    // Reads in file order hit the newest block again and again: no reordering needed for it.
    if (index === this.newestIndex && this.newest !== undefined) return this.newest;
    const cached = this.blocks.get(index);
    if (cached !== undefined) {
      this.blocks.delete(index);
      this.blocks.set(index, cached);
      this.newestIndex = index;
      this.newest = cached;
      return cached;
    }
    const start = index * this.blockSize;
    const read = this.parent.read(start, Math.min(this.blockSize, this.size - start));
    // A plain view: a Node Buffer's `slice` shares memory rather than copying, as `read` below relies on.
    const bytes = new Uint8Array(read.buffer, read.byteOffset, read.length);
    this.blocks.set(index, bytes);
    this.newestIndex = index;
    this.newest = bytes;
    if (this.blocks.size > this.maxBlocks) {
      const oldest = this.blocks.keys().next().value as number;
      this.blocks.delete(oldest);
    }
    return bytes;
  }
}
