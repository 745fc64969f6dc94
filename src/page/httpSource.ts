import { ReaderError } from "../reader/errors.js";
import { type ByteSource, SnapshotSource } from "../reader/source.js";
import { joinPath, type TreeEntry, type TreeSource, type TreeStat } from "../reader/tree.js";
import type { ServedFile, ServedListing } from "./protocol.js";

/**
 * The files `ckpt view` serves, read by synchronous range requests to the page's own origin (127.0.0.1): a
 * worker may make synchronous requests, and the reader is synchronous by design. Only the page opened by
 * `ckpt view` uses this; a page opened from disk or a static host reads dropped files instead.
 */
export class HttpSource extends SnapshotSource {
  readonly name: string;
  readonly size: number;
  private readonly url: string;

  constructor(file: ServedFile) {
    super();
    this.name = file.path;
    this.size = file.size;
    this.url = file.url;
  }

  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    if (length === 0) return new Uint8Array(0);
    const request = new XMLHttpRequest();
    request.open("GET", this.url, false);
    request.responseType = "arraybuffer";
    request.setRequestHeader("Range", `bytes=${offset}-${offset + length - 1}`);
    try {
      request.send();
    } catch (error) {
      throw new ReaderError("io-error", `the ckpt view server did not answer (${String(error)})`, {
        offset,
        file: this.name,
      });
    }
    if (request.status === 409) {
      throw new ReaderError("file-changed", `${this.name} changed while being read`, { file: this.name });
    }
    const bytes = request.response as ArrayBuffer | null;
    if (request.status !== 206 || !bytes || bytes.byteLength !== length) {
      throw new ReaderError(
        "io-error",
        `the ckpt view server answered ${request.status} to a range request`,
        {
          offset,
          file: this.name,
        },
      );
    }
    return new Uint8Array(bytes);
  }

  // assertUnchanged checks nothing here: the server compares the file's size and mtime with what it served
  // first on every request, and answers 409 when they changed.
}

/** The served directory as a `TreeSource`, from the server's listing (paths relative to the directory). */
export class HttpTree implements TreeSource {
  readonly name: string;
  private readonly byPath = new Map<string, ServedFile>();
  private readonly dirs = new Map<string, Map<string, TreeEntry>>();

  constructor(listing: ServedListing) {
    this.name = listing.name;
    this.dirs.set("", new Map());
    for (const file of listing.files) {
      const path = joinPath(file.path);
      this.byPath.set(path, file);
      const parts = path.split("/");
      for (let i = 0; i < parts.length; i++) {
        const dir = parts.slice(0, i).join("/");
        const name = parts[i] as string;
        const isFile = i === parts.length - 1;
        let entries = this.dirs.get(dir);
        if (!entries) {
          entries = new Map();
          this.dirs.set(dir, entries);
        }
        if (!entries.has(name)) {
          entries.set(
            name,
            isFile ? { name, kind: "file", size: file.size } : { name, kind: "directory", size: 0 },
          );
        }
        if (!isFile && !this.dirs.has(parts.slice(0, i + 1).join("/"))) {
          this.dirs.set(parts.slice(0, i + 1).join("/"), new Map());
        }
      }
    }
  }

  list(dir: string): TreeEntry[] | undefined {
    const entries = this.dirs.get(dir === "" ? "" : joinPath(dir));
    return entries
      ? [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      : undefined;
  }

  stat(path: string): TreeStat | undefined {
    const key = path === "" ? "" : joinPath(path);
    const file = this.byPath.get(key);
    if (file) return { kind: "file", size: file.size };
    return this.dirs.has(key) ? { kind: "directory", size: 0 } : undefined;
  }

  open(path: string): ByteSource {
    const file = this.byPath.get(joinPath(path));
    if (!file) {
      const kind = this.dirs.has(joinPath(path)) ? "not-a-file" : "file-not-found";
      throw new ReaderError(kind, kind === "not-a-file" ? "a directory, not a file" : "no such file", {
        file: path,
      });
    }
    return new HttpSource(file);
  }

  files(): string[] {
    return [...this.byPath.keys()].sort();
  }
}
