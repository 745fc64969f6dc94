import type { TorchStorage } from "../pickle/value.js";

/**
 * A `Map` from string ids, in the order they were first added, whose ids that are small decimal numbers
 * (torch names its storages `"0"`, `"1"`, ... in a zip archive) are found by their number instead of hashed.
 * A 200,000-tensor state dict names 200,000 storages; hashing their ids into Maps was ~100 ms of its inspect.
 */
export class IdMap<V> {
  private readonly numbered: Array<V | undefined> = [];
  private readonly named = new Map<string, V>();
  private readonly ids: string[] = [];
  private readonly items: V[] = [];

  get size(): number {
    return this.items.length;
  }

  get(id: string): V | undefined {
    const index = idNumber(id);
    return index < 0 ? this.named.get(id) : this.numbered[index];
  }

  /** Adds the value of an id not yet in the map. */
  add(id: string, value: V): void {
    const index = idNumber(id);
    if (index < 0) this.named.set(id, value);
    else this.numbered[index] = value;
    this.ids.push(id);
    this.items.push(value);
  }

  keys(): IterableIterator<string> {
    return this.ids.values();
  }

  values(): IterableIterator<V> {
    return this.items.values();
  }

  *[Symbol.iterator](): IterableIterator<[string, V]> {
    for (let i = 0; i < this.ids.length; i++) yield [this.ids[i] as string, this.items[i] as V];
  }
}

/** The storages one pickle names, by id (its key; `key/viewKey` for a legacy view), first named first. */
export class StorageTable extends IdMap<TorchStorage> {}

/** Ids up to seven digits are indices (an array of that many slots at worst, dense when torch wrote them). */
const MAX_DIGITS = 7;

/** `id` as an index when it is a decimal number without sign or leading zero, of at most `MAX_DIGITS`; else -1. */
export function idNumber(id: string): number {
  const { length } = id;
  if (length === 0 || length > MAX_DIGITS || (length > 1 && id.charCodeAt(0) === 48)) return -1;
  let n = 0;
  for (let i = 0; i < length; i++) {
    const digit = id.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    n = n * 10 + digit;
  }
  return n;
}
