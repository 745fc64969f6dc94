import { decimalId } from "../decimalId.js";
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
    const index = decimalId(id);
    return index < 0 ? this.named.get(id) : this.numbered[index];
  }

  /** Adds the value of an id not yet in the map. */
  add(id: string, value: V): void {
    const index = decimalId(id);
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
