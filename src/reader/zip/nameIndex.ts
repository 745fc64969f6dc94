import type { CentralColumns } from "./centralDirectory.js";

/**
 * Finds an archive's entries by full name, first occurrence first (as torch reads them), and lists the names
 * that occur more than once. ASCII names (everything torch writes) are hashed straight from the central
 * directory's bytes into an open-addressing table of entry indices: no string per entry, no Map. Other
 * archives index decoded names in a Map, since two byte strings can decode to one name.
 */
export class NameIndex {
  readonly duplicates: readonly string[];
  private readonly columns: CentralColumns;
  /** Entry index + 1 per slot; 0 is empty. */
  private readonly table: Int32Array | undefined;
  private readonly mask: number;
  private readonly byName: Map<string, number> | undefined;

  constructor(columns: CentralColumns, nameOf: (index: number) => string) {
    this.columns = columns;
    const duplicates = new Set<string>();
    if (columns.asciiNames) {
      let size = 16;
      while (size < 2 * columns.count) size *= 2;
      this.table = new Int32Array(size);
      this.mask = size - 1;
      for (let i = 0; i < columns.count; i++) {
        const start = columns.nameStart[i] as number;
        const end = start + (columns.nameLength[i] as number);
        let slot = mix(hashBytes(columns.names, start, end)) & this.mask;
        for (;;) {
          const held = this.table[slot] as number;
          if (held === 0) {
            this.table[slot] = i + 1;
            break;
          }
          if (this.sameBytes(held - 1, start, end)) {
            duplicates.add(nameOf(i));
            break;
          }
          slot = (slot + 1) & this.mask;
        }
      }
    } else {
      this.mask = 0;
      this.byName = new Map();
      for (let i = 0; i < columns.count; i++) {
        const name = nameOf(i);
        if (this.byName.has(name)) duplicates.add(name);
        else this.byName.set(name, i);
      }
    }
    this.duplicates = [...duplicates];
  }

  /** The index of the first entry named `name`, or -1. */
  find(name: string): number {
    if (this.byName) return this.byName.get(name) ?? -1;
    const table = this.table as Int32Array;
    let hash = FNV_OFFSET;
    for (let i = 0; i < name.length; i++) {
      const code = name.charCodeAt(i);
      if (code >= 0x80) return -1; // every name here is ASCII
      hash = Math.imul(hash ^ code, FNV_PRIME);
    }
    const { names, nameStart, nameLength } = this.columns;
    for (let slot = mix(hash) & this.mask; ; slot = (slot + 1) & this.mask) {
      const held = table[slot] as number;
      if (held === 0) return -1;
      const index = held - 1;
      if (nameLength[index] !== name.length) continue;
      const start = nameStart[index] as number;
      let same = true;
      for (let i = 0; i < name.length; i++) {
        if (names[start + i] !== name.charCodeAt(i)) {
          same = false;
          break;
        }
      }
      if (same) return index;
    }
  }

  private sameBytes(index: number, start: number, end: number): boolean {
    const { names, nameStart, nameLength } = this.columns;
    if (nameLength[index] !== end - start) return false;
    const other = nameStart[index] as number;
    for (let i = 0; i < end - start; i++) if (names[other + i] !== names[start + i]) return false;
    return true;
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * Spreads FNV's high bits into the low ones the table indexes by: a multiply carries only upwards, so names
 * that differ in their last characters (`data/1`, `data/2`, ...) would otherwise share low bits and cluster.
 */
function mix(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** FNV-1a over `bytes[start, end)`. */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), FNV_PRIME);
  return hash;
}
