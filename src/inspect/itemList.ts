/**
 * A report's list whose items are made when they are asked for. `inspect --json` of a 200,000-tensor state
 * dict writes each tensor's line as it makes its report: held all at once, those reports were 29 MB of its
 * peak heap. `toJSON` makes them all, so `JSON.stringify` of a report that holds one writes what the array
 * would; `writeJson` asks for them one at a time.
 */
export class ItemList<T> {
  readonly length: number;
  private readonly make: (index: number) => T;

  constructor(length: number, make: (index: number) => T) {
    this.length = length;
    this.make = make;
  }

  static of<T>(items: readonly T[]): ItemList<T> {
    return new ItemList(items.length, (index) => items[index] as T);
  }

  /** Item `index`: made anew at each call, unless the list was made `of` an array. */
  item(index: number): T {
    return this.make(index);
  }

  toJSON(): T[] {
    const items = new Array<T>(this.length);
    for (let i = 0; i < this.length; i++) items[i] = this.make(i);
    return items;
  }
}
