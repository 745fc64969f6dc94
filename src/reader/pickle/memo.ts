import { ReaderError } from "../errors.js";
import type { MemoReads } from "./memoReads.js";
import type { PyValue } from "./value.js";

/**
 * The unpickler's memo: what PUT stores and GET reads back. Picklers number entries 0, 1, 2, ...; any index
 * out of sequence works too. When `findMemoReads` knows which entries some GET reads, only those are kept (in
 * a Map: a 200,000-tensor state dict stores 2.4 million entries and reads a handful), and the others are only
 * counted; otherwise every value is kept in an array.
 */
export class Memo {
  /** Every value, by index, when `reads` is unknown. */
  private readonly all: PyValue[] = [];
  private readonly allSparse = new Map<number, PyValue>();
  /** The values some GET reads, when `reads` is known. */
  private readonly kept = new Map<number, PyValue>();
  /** Indices 0 .. next - 1 are stored; `later` holds the stored indices past them. */
  private next = 0;
  private readonly later = new Set<number>();
  /** Distinct indices stored: MEMOIZE's next index, and what `maxMemo` limits. */
  count = 0;

  constructor(
    private readonly reads: MemoReads | undefined,
    private readonly maxEntries: number,
  ) {}

  /** Stores `value` at `index` (an existing entry is replaced); `offset` is the opcode's, for errors. */
  put(index: number, value: PyValue, offset: number): void {
    if (!this.stored(index)) {
      if (this.count >= this.maxEntries) {
        throw new ReaderError(
          "pickle-limit",
          `memo exceeds ${this.maxEntries} entries (opcode at byte ${offset})`,
          { offset },
        );
      }
      this.count++;
      if (index === this.next) {
        this.next++;
        while (this.later.size > 0 && this.later.delete(this.next)) this.next++;
      } else this.later.add(index);
    }
    if (this.reads !== undefined) {
      if (this.reads(index)) this.kept.set(index, value);
    } else if (index <= this.all.length) this.all[index] = value;
    else this.allSparse.set(index, value);
  }

  /** The value at `index`, or `undefined` when nothing was stored there. */
  get(index: number): PyValue | undefined {
    if (this.reads === undefined)
      return index < this.all.length ? this.all[index] : this.allSparse.get(index);
    const value = this.kept.get(index);
    if (value === undefined && this.stored(index))
      throw new Error(`bug: memo key ${index} is read but findMemoReads missed it`);
    return value;
  }

  private stored(index: number): boolean {
    return index < this.next || (this.later.size > 0 && this.later.has(index));
  }
}
