import { ReaderError } from "../errors.js";
import type { MemoReads } from "./memoReads.js";
import type { PyValue } from "./value.js";

/** Stands in for a memoized value that no GET reads (see `findMemoReads`), so that it can be collected. */
const UNREAD = Symbol("unread memo entry");

/**
 * The unpickler's memo: what PUT stores and GET reads back. Picklers number entries 0, 1, 2, ...: an array
 * holds them; a Map takes any index out of sequence. Values no GET will read are dropped as they are stored.
 */
export class Memo {
  private readonly dense: Array<PyValue | typeof UNREAD> = [];
  private readonly sparse = new Map<number, PyValue | typeof UNREAD>();
  /** Distinct indices stored: MEMOIZE's next index, and what `maxMemo` limits. */
  count = 0;

  constructor(
    private readonly reads: MemoReads | undefined,
    private readonly maxEntries: number,
  ) {}

  /** Stores `value` at `index` (an existing entry is replaced); `offset` is the opcode's, for errors. */
  put(index: number, value: PyValue, offset: number): void {
    // Picklers store each index once, in order: no Map lookup while the sparse part is empty.
    const exists = index < this.dense.length || (this.sparse.size > 0 && this.sparse.has(index));
    if (!exists) {
      if (this.count >= this.maxEntries) {
        throw new ReaderError(
          "pickle-limit",
          `memo exceeds ${this.maxEntries} entries (opcode at byte ${offset})`,
          { offset },
        );
      }
      this.count++;
    }
    const kept = this.reads === undefined || this.reads(index) ? value : UNREAD;
    if (index <= this.dense.length) this.dense[index] = kept;
    else this.sparse.set(index, kept);
  }

  /** The value at `index`, or `undefined` when nothing was stored there. */
  get(index: number): PyValue | undefined {
    const value = index < this.dense.length ? this.dense[index] : this.sparse.get(index);
    if (value === UNREAD) throw new Error(`bug: memo key ${index} is read but findMemoReads missed it`);
    return value;
  }
}
