import type { ByteSource } from "./source.js";
import type { TreeEntry, TreeSource, TreeStat } from "./tree.js";

/**
 * A tree whose listings, stats, links and real paths are asked of the tree below once each: for a walk that
 * only reads (an audit), where run layouts ask the same questions of every directory many times (each
 * convention's patterns list the run directory again, and every match is stat-ed for its kind and mtime).
 * A listing also answers the stats of its files and directories. Files still open through the tree below, so their bytes
 * are never cached here. Not for code that writes: nothing is invalidated.
 */
export class CachedTree implements TreeSource {
  readonly name: string;
  readonly readlink?: (path: string) => string | undefined;
  readonly realpath?: (path: string) => string;
  private readonly inner: TreeSource;
  private readonly lists = new Map<string, TreeEntry[] | undefined>();
  private readonly stats = new Map<string, TreeStat | undefined>();

  constructor(inner: TreeSource) {
    this.inner = inner;
    this.name = inner.name;
    const { readlink, realpath } = inner;
    if (readlink) this.readlink = memoize((path) => readlink.call(inner, path));
    if (realpath) this.realpath = memoize((path) => realpath.call(inner, path));
  }

  list(dir: string): TreeEntry[] | undefined {
    if (this.lists.has(dir)) return this.lists.get(dir);
    const entries = this.inner.list(dir);
    this.lists.set(dir, entries);
    const prefix = dir.endsWith("/") ? dir : `${dir}/`;
    for (const entry of entries ?? []) {
      // "other" may be a dangling link, which a listing shows and a stat does not: asked for when needed.
      if (entry.kind === "other") continue;
      const path = `${prefix}${entry.name}`;
      if (!this.stats.has(path)) this.stats.set(path, entry);
    }
    return entries;
  }

  stat(path: string): TreeStat | undefined {
    if (this.stats.has(path)) return this.stats.get(path);
    const stat = this.inner.stat(path);
    this.stats.set(path, stat);
    return stat;
  }

  open(path: string): ByteSource {
    return this.inner.open(path);
  }
}

function memoize<T>(f: (path: string) => T): (path: string) => T {
  const known = new Map<string, T>();
  return (path) => {
    if (known.has(path)) return known.get(path) as T;
    const value = f(path);
    known.set(path, value);
    return value;
  };
}
