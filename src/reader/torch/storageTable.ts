import type { TorchStorage } from "../pickle/value.js";

/**
 * The storages one pickle names, by id (its key; `key/viewKey` for a legacy view), in the order they are
 * first named: a `Map<string, TorchStorage>` whose ids that are small decimal numbers, which is what torch
 * names its storages in a zip archive (`"0"`, `"1"`, ...), are found by their number instead of hashed. A
 * 200,000-tensor state dict names 200,000 storages; hashing their ids into a Map was 70 ms of its read.
 */
export class StorageTable {
  private readonly numbered: Array<TorchStorage | undefined> = [];
  private readonly named = new Map<string, TorchStorage>();
  private readonly ids: string[] = [];
  private readonly storages: TorchStorage[] = [];

  get size(): number {
    return this.storages.length;
  }

  get(id: string): TorchStorage | undefined {
    const index = smallIndex(id);
    return index < 0 ? this.named.get(id) : this.numbered[index];
  }

  /** Adds the storage of an id not yet in the table. */
  add(id: string, storage: TorchStorage): void {
    const index = smallIndex(id);
    if (index < 0) this.named.set(id, storage);
    else this.numbered[index] = storage;
    this.ids.push(id);
    this.storages.push(storage);
  }

  keys(): IterableIterator<string> {
    return this.ids.values();
  }

  values(): IterableIterator<TorchStorage> {
    return this.storages.values();
  }

  *[Symbol.iterator](): IterableIterator<[string, TorchStorage]> {
    for (let i = 0; i < this.ids.length; i++) yield [this.ids[i] as string, this.storages[i] as TorchStorage];
  }
}

/** Ids up to seven digits are indices (an array of that many slots at worst, dense when torch wrote them). */
const MAX_DIGITS = 7;

/** `id` as an index when it is a decimal number without sign or leading zero, of at most `MAX_DIGITS`; else -1. */
function smallIndex(id: string): number {
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
