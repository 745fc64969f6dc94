import { ReaderError } from "../errors.js";
import type { ByteSource } from "../source.js";
import { joinPath, type TreeEntry, type TreeSource, type TreeStat } from "../tree.js";
import { BlobSource, fileReaderSync, type SliceReader } from "./blobSource.js";

/** A file of a dropped or picked folder, by its path relative to that folder (`run/step-10/.metadata`). */
export interface TreeFile {
  readonly path: string;
  readonly file: Blob;
}

interface Directory {
  readonly dirs: Map<string, Directory>;
  readonly files: Map<string, Blob>;
}

function directory(): Directory {
  return { dirs: new Map(), files: new Map() };
}

/**
 * A folder a person dropped or picked, as a `TreeSource` beside Node's `NodeTree`: `webkitdirectory` and
 * drag-and-drop both give the page a flat list of `File`s with relative paths, and the readers of runs,
 * pointers and shards find their files through this. Empty folders are not in such a list, so they do not
 * exist here either.
 */
export class FileTree implements TreeSource {
  readonly name: string;
  private readonly root = directory();
  private readonly readSlice: SliceReader | undefined;

  /** `readSlice`: how blobs are read (default `FileReaderSync`, resolved when a file is first opened). */
  constructor(name: string, files: readonly TreeFile[], readSlice?: SliceReader) {
    this.name = name;
    this.readSlice = readSlice;
    for (const { path, file } of files) {
      const parts = joinPath(path).split("/");
      const base = parts.pop();
      if (base === undefined || base === "") continue;
      let dir = this.root;
      for (const part of parts) {
        let next = dir.dirs.get(part);
        if (!next) {
          next = directory();
          dir.dirs.set(part, next);
        }
        dir = next;
      }
      dir.files.set(base, file);
    }
  }

  private find(path: string): { dir: Directory } | { file: Blob } | undefined {
    const joined = joinPath(path); // "" and "/" are the root
    const parts = joined === "" ? [] : joined.split("/");
    let dir = this.root;
    for (const [i, part] of parts.entries()) {
      const file = dir.files.get(part);
      if (file && i === parts.length - 1) return { file };
      const next = dir.dirs.get(part);
      if (!next) return undefined;
      dir = next;
    }
    return { dir };
  }

  list(dir: string): TreeEntry[] | undefined {
    const found = this.find(dir);
    if (!found || !("dir" in found)) return undefined;
    const entries: TreeEntry[] = [
      ...[...found.dir.dirs.keys()].map((name) => ({ name, kind: "directory" as const, size: 0 })),
      ...[...found.dir.files].map(([name, file]) => ({ name, kind: "file" as const, size: file.size })),
    ];
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  stat(path: string): TreeStat | undefined {
    const found = this.find(path);
    if (!found) return undefined;
    return "dir" in found ? { kind: "directory", size: 0 } : { kind: "file", size: found.file.size };
  }

  open(path: string): ByteSource {
    const found = this.find(path);
    const name = this.name === "" ? joinPath(path) : `${this.name}/${joinPath(path)}`;
    if (!found) throw new ReaderError("file-not-found", "no such file", { file: name });
    if ("dir" in found) throw new ReaderError("not-a-file", "a directory, not a file", { file: name });
    return new BlobSource(found.file, name, this.readSlice ?? fileReaderSync());
  }

  /** Every file's path, in name order: what the page lists for a folder. */
  files(): string[] {
    const out: string[] = [];
    const walk = (dir: Directory, prefix: string): void => {
      const names = [...new Set([...dir.dirs.keys(), ...dir.files.keys()])].sort();
      for (const name of names) {
        if (dir.files.has(name)) out.push(prefix + name);
        const sub = dir.dirs.get(name);
        if (sub) walk(sub, `${prefix}${name}/`);
      }
    };
    walk(this.root, "");
    return out;
  }
}
