import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ReaderError } from "../../src/reader/errors.js";
import { isBoxed, type PyValue } from "../../src/reader/pickle/value.js";
import { logicalTensorBytes, type ShardedCheckpoint } from "../../src/reader/sharded/index.js";
import { BufferSource, type ByteSource } from "../../src/reader/source.js";
import { joinPath, type TreeEntry, type TreeSource, type TreeStat } from "../../src/reader/tree.js";
import { SAMPLES_DIR } from "./samples.js";

/** `samples/sharded/`, written by `samples/make_sharded.py`. */
export const SHARDED_DIR = join(SAMPLES_DIR, "sharded");

/** Every sharded sample directory beside its `<dir>.truth.json`, parsed as `T`. */
export function findShardedTruths<T>(): Array<{ dir: string; name: string; truth: T }> {
  if (!existsSync(SHARDED_DIR)) return [];
  return readdirSync(SHARDED_DIR, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".truth.json"))
    .sort()
    .map((name) => {
      const sample = name.slice(0, -".truth.json".length);
      return {
        dir: join(SHARDED_DIR, sample),
        name: sample,
        truth: JSON.parse(readFileSync(join(SHARDED_DIR, name), "utf8")) as T,
      };
    })
    .filter(({ dir }) => existsSync(dir) && statSync(dir).isDirectory());
}

/** sha256 of a logical tensor's consolidated bytes, and the largest buffer the stream handed out. */
export function hashLogical(
  checkpoint: ShardedCheckpoint,
  name: string,
  chunkBytes?: number,
): { sha256: string; largest: number; bytes: number } {
  const hash = createHash("sha256");
  let largest = 0;
  let bytes = 0;
  for (const chunk of logicalTensorBytes(checkpoint, name, chunkBytes === undefined ? {} : { chunkBytes })) {
    hash.update(chunk);
    largest = Math.max(largest, chunk.length);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), largest, bytes };
}

/** Python's type name and JSON value for a decoded pickle value, as `make_sharded.py`'s `summarize` writes them. */
export function summarize(value: PyValue): { type: string; value?: unknown } {
  if (value === null) return { type: "NoneType", value: null };
  if (typeof value === "boolean") return { type: "bool", value };
  if (typeof value === "number") return { type: "int", value };
  if (typeof value === "bigint") return { type: "int", value: Number(value) };
  if (typeof value === "string") return { type: "str", value };
  switch (value.kind) {
    case "float":
      return { type: "float", value: value.value };
    case "list":
    case "tuple":
      return { type: value.kind, value: value.items.map((item) => summarize(item).value) };
    case "dict": {
      const out: Record<string, unknown> = {};
      value.keys.forEach((k, i) => {
        out[String(k)] = summarize(value.values[i] as PyValue).value;
      });
      return {
        type: value.className === undefined ? "dict" : (value.className.split(".").pop() ?? "dict"),
        value: out,
      };
    }
    case "tensor":
      return { type: "Tensor" };
    default:
      return { type: isBoxed(value, "object") ? "object" : value.kind };
  }
}

/**
 * An in-memory tree: `files` maps relative paths to bytes; directories are implied by the paths. Paths asked
 * for are normalised as every tree's are (`/a/b` and `a/b` are the same file), with optional mtimes.
 */
export class MemoryTree implements TreeSource {
  readonly name: string;
  readonly files: Map<string, Uint8Array>;
  private readonly mtimes: ReadonlyMap<string, number>;

  constructor(
    files: Record<string, Uint8Array | string>,
    name = "<memory>",
    mtimes: ReadonlyMap<string, number> = new Map(),
  ) {
    this.name = name;
    this.mtimes = mtimes;
    this.files = new Map(
      Object.entries(files).map(([path, bytes]) => [
        path,
        typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes,
      ]),
    );
  }

  list(dirAsked: string): TreeEntry[] | undefined {
    const dir = joinPath(dirAsked);
    const prefix = dir === "" ? "" : `${dir}/`;
    const seen = new Map<string, TreeEntry>();
    for (const [path, bytes] of this.files) {
      if (!path.startsWith(prefix)) continue;
      const rest = path.slice(prefix.length);
      const slash = rest.indexOf("/");
      const name = slash < 0 ? rest : rest.slice(0, slash);
      seen.set(
        name,
        slash < 0 ? { name, ...this.fileStat(prefix + name, bytes) } : { name, kind: "directory", size: 0 },
      );
    }
    if (seen.size === 0 && dir !== "") return undefined;
    return [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  stat(pathAsked: string): TreeStat | undefined {
    const path = joinPath(pathAsked);
    const bytes = this.files.get(path);
    if (bytes) return this.fileStat(path, bytes);
    return this.list(path) ? { kind: "directory", size: 0 } : undefined;
  }

  open(pathAsked: string): ByteSource {
    const path = joinPath(pathAsked);
    const bytes = this.files.get(path);
    if (!bytes) throw new ReaderError("file-not-found", "no such file", { file: path });
    return new BufferSource(bytes, path);
  }

  private fileStat(path: string, bytes: Uint8Array): TreeStat {
    const mtimeMs = this.mtimes.get(path);
    return mtimeMs === undefined
      ? { kind: "file", size: bytes.length }
      : { kind: "file", size: bytes.length, mtimeMs };
  }
}

/** Every file below `dir` as a `MemoryTree` (for variants damaged in the test itself). */
export function memoryTreeOf(dir: string): MemoryTree {
  const files: Record<string, Uint8Array> = {};
  const mtimes = new Map<string, number>();
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    const path = join(dir, name);
    const stats = statSync(path, { throwIfNoEntry: false });
    if (!stats?.isFile()) continue;
    const key = name.split("\\").join("/");
    files[key] = readFileSync(path);
    mtimes.set(key, stats.mtimeMs);
  }
  return new MemoryTree(files, dir, mtimes);
}
