import type { ByteSource } from "../source.js";
import type { TreeSource } from "../tree.js";

/**
 * The files of one sharded checkpoint, each opened once when first needed and kept open until `closeAll`:
 * assembling a tensor visits the same `.distcp` file once per chunk.
 */
export class SourceCache {
  private readonly tree: TreeSource;
  private readonly open = new Map<string, ByteSource>();

  constructor(tree: TreeSource) {
    this.tree = tree;
  }

  get(path: string): ByteSource {
    let source = this.open.get(path);
    if (!source) {
      source = this.tree.open(path);
      this.open.set(path, source);
    }
    return source;
  }

  /** Throws `file-changed` when a file read so far has changed size or mtime since it was opened. */
  assertUnchanged(): void {
    for (const source of this.open.values()) source.assertUnchanged();
  }

  closeAll(): void {
    for (const source of this.open.values()) source.close();
    this.open.clear();
  }
}

/** Per checkpoint object: its open files and what reading it has parsed so far. Not part of the public types. */
const caches = new WeakMap<object, SourceCache>();

export function sourcesOf(checkpoint: { readonly tree: TreeSource }): SourceCache {
  let cache = caches.get(checkpoint);
  if (!cache) {
    cache = new SourceCache(checkpoint.tree);
    caches.set(checkpoint, cache);
  }
  return cache;
}

/** Makes `cache` (files opened while the checkpoint was being read) the checkpoint's own. */
export function attachSources(checkpoint: { readonly tree: TreeSource }, cache: SourceCache): void {
  caches.set(checkpoint, cache);
}

/** Throws `file-changed` when a file the checkpoint's readers opened has changed since. */
export function assertSourcesUnchanged(checkpoint: { readonly tree: TreeSource }): void {
  caches.get(checkpoint)?.assertUnchanged();
}

/** Closes every file a checkpoint's readers opened (reading again reopens them). */
export function closeSources(checkpoint: { readonly tree: TreeSource }): void {
  caches.get(checkpoint)?.closeAll();
}
