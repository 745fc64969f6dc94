import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import { auditTree } from "../src/inspect/runs/audit.js";
import { audit } from "../src/inspect/runs/node.js";
import { treeFiles } from "../src/inspect/treeFiles.js";
import { ReaderError } from "../src/reader/errors.js";
import { FileSource } from "../src/reader/fileSource.js";
import { readCheckpoint } from "../src/reader/read.js";
import type { ByteSource } from "../src/reader/source.js";
import { BlobSource, type SliceReader } from "../src/reader/web/blobSource.js";
import { FileTree, type TreeFile } from "../src/reader/web/fileTree.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { writeSparseCheckpoint } from "./helpers/sparse.js";

/**
 * The page's byte sources, in Node: a `File` read by slices (`BlobSource`) and a dropped folder (`FileTree`).
 * Node has no `FileReaderSync`, so the blobs here are files on disk behind the `Blob` slicing interface and a
 * slice reader that counts what it is asked for: the proof that a 6 GiB file is read by slices, not whole.
 * The browser test (page-browser.test.ts) checks the same in Chromium with real `File`s.
 */
const dir = mkdtempSync(join(tmpdir(), "ckpt-web-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Slice {
  readonly source: ByteSource;
  readonly start: number;
  readonly end: number;
}

/** A file as a `Blob` that only slices: its bytes come through `reader` below. */
function fileBlob(path: string): Blob {
  const source = FileSource.open(path);
  const blob = (start: number, end: number) => ({
    size: end - start,
    slice: (a = 0, b = end - start): unknown =>
      blob(start + a, start + Math.min(b, end - start)) as unknown as Slice,
    source,
    start,
    end,
  });
  return blob(0, source.size) as unknown as Blob;
}

function countingReader(): SliceReader & { bytes: number; reads: number } {
  const reader = Object.assign(
    (blob: Blob) => {
      const { source, start, end } = blob as unknown as Slice;
      reader.bytes += end - start;
      reader.reads += 1;
      const bytes = source.read(start, end - start);
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    },
    { bytes: 0, reads: 0 },
  );
  return reader;
}

function filesOf(root: string): TreeFile[] {
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((name) => statSync(join(root, name)).isFile())
    .map((name) => ({ path: name, file: fileBlob(join(root, name)) }));
}

describe("BlobSource: a File read by slices", () => {
  it("a 6 GiB checkpoint: a few KiB read, the report the file source gives", () => {
    const path = writeSparseCheckpoint(dir, "big", 1536 * 1024 * 1024);
    const reader = countingReader();
    const blob = fileBlob(path);
    const viaBlob = inspectCheckpoint(
      readCheckpoint(new BlobSource(blob, "big.pt", reader), "big.pt"),
      "big.pt",
    );
    const file = FileSource.open(path);
    const viaFile = inspectCheckpoint(readCheckpoint(file, "big.pt"), "big.pt");
    file.close();
    expect(blob.size).toBeGreaterThan(6 * 2 ** 30);
    expect(viaBlob).toEqual(viaFile);
    expect(reader.bytes).toBeLessThan(16 * 1024);
    expect(reader.reads).toBeLessThan(20);
  });

  it("reads outside the blob are out-of-bounds; a short answer is file-changed", () => {
    const path = writeSparseCheckpoint(dir, "small", 1024);
    const source = new BlobSource(fileBlob(path), "small.pt", countingReader());
    expect(() => source.read(source.size - 1, 2)).toThrow(ReaderError);
    const short = new BlobSource(fileBlob(path), "small.pt", () => new ArrayBuffer(1));
    expect(() => short.read(0, 8)).toThrow(expect.objectContaining({ code: "file-changed" }));
    const gone = new BlobSource(fileBlob(path), "small.pt", () => {
      throw Object.assign(new Error("gone"), { name: "NotReadableError" });
    });
    expect(() => gone.read(0, 8)).toThrow(expect.objectContaining({ code: "file-changed" }));
  });
});

describe("FileTree: a dropped folder", () => {
  const outputs = join(SAMPLES_DIR, "outputs");

  it("lists, stats and opens by relative path; the root is '' or '/'", () => {
    const tree = new FileTree("run", [
      { path: "a/b/c.pt", file: new Blob(["abc"]) },
      { path: "top.txt", file: new Blob(["x"]) },
    ]);
    expect(tree.list("")?.map((e) => [e.name, e.kind])).toEqual([
      ["a", "directory"],
      ["top.txt", "file"],
    ]);
    expect(tree.list("/")).toEqual(tree.list(""));
    expect(tree.stat("/a/b/c.pt")).toEqual({ kind: "file", size: 3 });
    expect(tree.stat("a/b")).toEqual({ kind: "directory", size: 0 });
    expect(tree.stat("a/nope")).toBeUndefined();
    expect(tree.files()).toEqual(["a/b/c.pt", "top.txt"]);
    expect(() => tree.open("a")).toThrow(expect.objectContaining({ code: "not-a-file" }));
    expect(() => tree.open("nope")).toThrow(expect.objectContaining({ code: "file-not-found" }));
  });

  it("runs in a dropped folder get the plans they get on disk", async () => {
    for (const run of ["fvcore_truncated_newest", "hf_trainer_run", "deepspeed_run", "dcp_run"]) {
      const reader = countingReader();
      const tree = new FileTree(run, filesOf(join(outputs, run)), reader);
      const dropped = await auditTree(["/"], { verify: "chosen", jobs: 1, fs: treeFiles(tree) });
      const onDisk = await audit([join(outputs, run)], { verify: "chosen", jobs: 1 });
      const decide = (r: typeof dropped) =>
        r.runs.map((p) => ({
          convention: p.convention,
          choice: p.choice?.file ?? null,
          resumeAt: p.choice?.resumeAt ?? null,
          pointer: p.pointer?.status ?? null,
          candidates: p.candidates.map((c) => [c.file, c.status, c.verdict]),
          findings: p.findings.map((f) => f.code).sort(),
        }));
      expect(decide(dropped), run).toEqual(decide(onDisk));
      expect(reader.reads, run).toBeGreaterThan(0);
    }
  });
});

describe("the page's bundle", () => {
  const page = join(import.meta.dirname, "..", "dist", "web", "index.html");

  it("imports no Node built-in, evaluates no strings, and names its script and style in its CSP", () => {
    // npm test builds first; web/build.mjs also stops the build on a Node built-in in the page's graph.
    expect(existsSync(page), `${page} is missing: npm run build writes it`).toBe(true);
    const html = readFileSync(page, "utf8");
    expect(html).not.toMatch(
      /(?:\bfrom|\bimport|\brequire)\s*\(?\s*["'`](?:node:|fs\b|path\b|worker_threads\b)/,
    );
    expect(html).not.toMatch(/\beval\(|new Function\(/);
    expect(html).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-[A-Za-z0-9+/=]+'/);
    expect(html.match(/<script>/g)).toHaveLength(1);
  });
});
