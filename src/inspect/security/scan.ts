import type { Checkpoint, PlainPickle, TorchZipCheckpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { type GlobalReference, type PickleHooks, parsePickle } from "../../reader/pickle/machine.js";
import { appendAll, isBoxed, type PyGlobal, type PyObject, type PyValue } from "../../reader/pickle/value.js";
import { looksLikeSafetensors } from "../../reader/safetensors.js";
import { type ByteSource, FileSource } from "../../reader/source.js";
import { looksLikeLegacy, PickleSequence } from "../../reader/torch/legacyLoader.js";
import { namesStorage } from "../../reader/torch/rebuild.js";
import { looksLikeZip, openZip, type ZipArchive } from "../../reader/zip.js";
import { classifyGlobal, type GlobalClass } from "./classify.js";

/**
 * Finds every callable a file's pickles can reach, without running any of them: every pickle in the file
 * (`data.pkl`, `constants.pkl`, any archive member that parses as a pickle, every copy of a duplicated name, each
 * pickle of the legacy stream, data after STOP, and pickles handed as bytes to loaders, depth-limited).
 */
export type ScanVerdict = "clean" | "framework" | "unknown" | "dangerous" | "inconclusive";

export interface ScannedGlobal {
  readonly module: string;
  readonly name: string;
  readonly class: GlobalClass;
  /** Which pickle: `data.pkl`, `legacy pickle 4`, `data.pkl > nested pickle 1`, ... */
  readonly record: string;
  readonly offset: number;
  readonly opcode: GlobalReference["opcode"];
  readonly dynamic?: boolean;
}

export type SecurityNote =
  | {
      readonly code: "pickle-malformed-after-globals";
      readonly record: string;
      readonly detail: string;
      readonly globals: number;
    }
  | { readonly code: "pickle-unreadable"; readonly record: string; readonly detail: string }
  | { readonly code: "pickle-after-stop"; readonly record: string; readonly count: number }
  | { readonly code: "persistent-id-not-storage"; readonly record: string; readonly offset: number }
  | { readonly code: "hidden-pickle"; readonly record: string }
  | { readonly code: "zip-duplicate-member"; readonly name: string }
  | { readonly code: "zip-name-mismatch"; readonly name: string }
  | { readonly code: "zip-encrypted-member"; readonly name: string }
  | { readonly code: "zip-junk-before"; readonly bytes: number }
  | { readonly code: "zip-member-outside-archive"; readonly name: string };

export interface PickleScan {
  readonly record: string;
  readonly root: PyValue | undefined;
  readonly protocol: number;
  readonly opcodes: Uint8Array;
  /** torch executes this pickle on load (data.pkl, the legacy stream's pickles, a bare pickle). */
  readonly executedByTorch: boolean;
}

export interface FileScan {
  readonly format: "torch-zip" | "torchscript" | "torch-legacy" | "pickle" | "safetensors" | "other";
  readonly globals: ScannedGlobal[];
  readonly notes: SecurityNote[];
  readonly pickles: PickleScan[];
  readonly verdict: ScanVerdict;
}

const MAX_NESTING = 3;
const MAX_PICKLES_AFTER_STOP = 16;
const LOADERS = new Set([
  "pickle.loads",
  "_pickle.loads",
  "pickle.load",
  "dill.loads",
  "cloudpickle.loads",
  "torch.load",
  "torch.serialization.load",
  "torch.storage._load_from_bytes",
  "numpy.load",
  "joblib.load",
]);

/** A byte string a loader is handed: `loads(b"...")` or `load(io.BytesIO(b"..."))`. */
function payloadOf(args: readonly PyValue[]): Uint8Array | undefined {
  const first = args[0];
  if (isBoxed(first, "bytes")) return first.value;
  if (isBoxed(first, "object") && isBoxed(first.args[0], "bytes")) return first.args[0].value;
  return undefined;
}

function startsLikePickle(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && (bytes[1] as number) >= 2 && (bytes[1] as number) <= 5;
}

class Scanner {
  readonly globals: ScannedGlobal[] = [];
  readonly notes: SecurityNote[] = [];
  readonly pickles: PickleScan[] = [];
  private malformed = false;

  /** Scans the pickle(s) in `bytes`: the first, then any that follow its STOP. Returns the first's end. */
  scanPickles(
    bytes: Uint8Array,
    record: string,
    executedByTorch: boolean,
    depth = 0,
    expectOne = false,
  ): number {
    let start = 0;
    let end = 0;
    for (let index = 0; start < bytes.length && index <= MAX_PICKLES_AFTER_STOP; index++) {
      const name = index === 0 ? record : `${record} (pickle ${index + 1} after STOP)`;
      const next = this.scanOne(bytes.subarray(start), name, executedByTorch && index === 0, depth);
      if (next === undefined) break;
      if (index === 0) end = next;
      start += next;
      if (expectOne) break;
      if (start < bytes.length) {
        this.notes.push({ code: "pickle-after-stop", record, count: bytes.length - start });
        if (!startsLikePickle(bytes.subarray(start))) break;
      }
    }
    return end;
  }

  private scanOne(
    bytes: Uint8Array,
    record: string,
    executedByTorch: boolean,
    depth: number,
  ): number | undefined {
    const before = this.globals.length;
    const nested: Uint8Array[] = [];
    const hooks: PickleHooks = {
      call: (callable: PyGlobal, args: PyValue[]) => {
        if (LOADERS.has(`${callable.module}.${callable.name}`)) {
          const payload = payloadOf(args);
          if (payload) nested.push(payload);
        }
        return undefined;
      },
    };
    try {
      const result = parsePickle(bytes, {
        scan: true,
        hooks,
        trace: {
          onGlobal: (g) => this.addGlobal(g, record),
          // The offset of the persistent-id opcode, as the loaders record it (PickleInfo.foreignPersistentIds).
          onPersistentId: (pid, _start, opcode) => {
            if (!namesStorage(pid))
              this.notes.push({ code: "persistent-id-not-storage", record, offset: opcode });
          },
        },
      });
      this.pickles.push({
        record,
        root: result.value,
        protocol: result.protocol,
        opcodes: result.opcodes,
        executedByTorch,
      });
      if (depth < MAX_NESTING) {
        nested.forEach((payload, i) => {
          this.scanPickles(payload, `${record} > nested pickle ${i + 1}`, executedByTorch, depth + 1);
        });
      }
      return result.end;
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      const seen = this.globals.length - before;
      this.malformed = true;
      this.notes.push(
        seen > 0
          ? { code: "pickle-malformed-after-globals", record, detail: error.message, globals: seen }
          : { code: "pickle-unreadable", record, detail: error.message },
      );
      return undefined;
    }
  }

  /** Globals recorded while the pickle was loaded elsewhere. */
  adopt(globals: readonly GlobalReference[], record: string): void {
    for (const g of globals) this.addGlobal(g, record);
  }

  private addGlobal(g: GlobalReference, record: string): void {
    const dynamic = g.dynamic === true;
    this.globals.push({
      module: g.module,
      name: g.name,
      class: classifyGlobal(g.module, g.name, { dynamic }),
      record,
      offset: g.offset,
      opcode: g.opcode,
      ...(dynamic ? { dynamic } : {}),
    });
  }

  verdict(): ScanVerdict {
    const classes = new Set(this.globals.map((g) => g.class));
    if (classes.has("dangerous")) return "dangerous";
    // A stream that breaks after naming globals may hide what follows: never call it clean.
    if (this.malformed) return "inconclusive";
    if (classes.has("unknown") || this.notes.some((n) => n.code === "persistent-id-not-storage"))
      return "unknown";
    if (classes.has("framework")) return "framework";
    return "clean";
  }
}

/** `deep`: also probe every member's first bytes for hidden pickles (one read per record: `ckpt scan` only). */
function scanArchive(archive: ZipArchive, scanner: Scanner, deep: boolean): void {
  const names = new Map<string, number>();
  for (const entry of archive.entries) names.set(entry.name, (names.get(entry.name) ?? 0) + 1);
  for (const name of archive.duplicates) scanner.notes.push({ code: "zip-duplicate-member", name });
  if (archive.junkBefore > 0) scanner.notes.push({ code: "zip-junk-before", bytes: archive.junkBefore });
  const copies = new Map<string, number>();
  for (const entry of archive.entries) {
    const record = archive.recordName(entry);
    if (record === undefined) scanner.notes.push({ code: "zip-member-outside-archive", name: entry.name });
    if (entry.encrypted) {
      scanner.notes.push({ code: "zip-encrypted-member", name: entry.name });
      continue;
    }
    try {
      if (!archive.localHeader(entry).nameMatches)
        scanner.notes.push({ code: "zip-name-mismatch", name: entry.name });
    } catch {
      continue; // a record past the end of the file: the reader reports it
    }
    const copy = (copies.get(entry.name) ?? 0) + 1;
    copies.set(entry.name, copy);
    const label =
      (names.get(entry.name) ?? 1) > 1 ? `${record ?? entry.name} (copy ${copy})` : (record ?? entry.name);
    const isPickleName = /\.pkl$/.test(entry.name);
    if (!isPickleName && !deep) continue;
    const head =
      entry.method === 0 && entry.uncompressedSize >= 2
        ? archive.source.read(archive.dataOffset(entry), 2)
        : undefined;
    if (!isPickleName && !(head && startsLikePickle(head))) continue;
    if (entry.uncompressedSize > 256 * 1024 * 1024) continue;
    let bytes: Uint8Array;
    try {
      bytes = archive.readEntry(entry);
    } catch {
      continue;
    }
    // torch executes the first data.pkl only; other pickles are reported for what they could do elsewhere.
    const executed = record === "data.pkl" && copy === 1;
    if (isPickleName) {
      scanner.scanPickles(bytes, label, executed);
    } else {
      // A tensor record can start with 0x80 0x02 by chance: report it only if it really is a pickle.
      const probe = new Scanner();
      const end = probe.scanPickles(bytes, label, false, 0, true);
      if (end === bytes.length && probe.globals.length > 0) {
        scanner.notes.push({ code: "hidden-pickle", record: label });
        scanner.scanPickles(bytes, label, false);
      }
    }
  }
}

/**
 * The legacy stream: its five pickles (magic, version, sys_info, object, storage keys), in order. Each one's
 * end is found with the loader's growing window, then exactly its bytes are scanned: storage bytes, which
 * follow, are never read. A pickle that does not parse is scanned from a bounded window for what it names.
 */
function scanLegacy(source: ByteSource, scanner: Scanner): void {
  const pickles = new PickleSequence(source);
  let offset = 0;
  for (let index = 1; index <= 5 && offset < source.size; index++) {
    const label = `legacy pickle ${index}`;
    let end: number;
    try {
      end = pickles.parseAt(offset, undefined, true).end;
    } catch {
      scanner.scanPickles(
        source.read(offset, Math.min(source.size - offset, 1024 * 1024)),
        label,
        true,
        0,
        true,
      );
      return;
    }
    scanner.scanPickles(source.read(offset, end - offset), label, true, 0, true);
    offset = end;
  }
}

export interface ScanOptions {
  /** Probe every archive member for hidden pickles (costs one read per record). */
  readonly deep?: boolean;
}

export function scanSource(source: ByteSource, options: ScanOptions = {}): FileScan {
  const scanner = new Scanner();
  const head = source.read(0, Math.min(512, source.size));
  let format: FileScan["format"] = "other";
  if (looksLikeZip(head)) {
    const archive = openZip(source);
    format = archive.get("constants.pkl") ? "torchscript" : "torch-zip";
    scanArchive(archive, scanner, options.deep ?? false);
  } else if (looksLikeLegacy(head)) {
    format = "torch-legacy";
    scanLegacy(source, scanner);
  } else if (looksLikeSafetensors(head, source.size)) {
    format = "safetensors";
  } else if (head[0] === 0x80 || head[0] === 0x28 || head[0] === 0x63) {
    format = "pickle";
    scanner.scanPickles(source.read(0, Math.min(source.size, 256 * 1024 * 1024)), "pickle", true);
  }
  return {
    format,
    globals: scanner.globals,
    notes: scanner.notes,
    pickles: scanner.pickles,
    verdict: scanner.verdict(),
  };
}

/**
 * The scan of a checkpoint `openCheckpoint` has read. A torch zip's data.pkl and a bare pickle were parsed
 * while loading, so their globals and graph are reused rather than parsed again; legacy streams, TorchScript
 * archives and a bare pickle with more bytes after its STOP are scanned from the file.
 */
export function scanCheckpoint(checkpoint: Checkpoint): FileScan {
  if (checkpoint.format === "torch-zip") return scanLoaded(checkpoint);
  if (checkpoint.format === "pickle" && !checkpoint.notes.some((n) => n.code === "pickle-trailing-bytes"))
    return scanLoaded(checkpoint);
  return scanSource(checkpoint.source);
}

/** Globals and opcodes recorded while loading; loaders handed bytes are found in the loaded graph. */
function scanLoaded(checkpoint: TorchZipCheckpoint | PlainPickle): FileScan {
  const scanner = new Scanner();
  const record = checkpoint.pickle.record;
  scanner.adopt(checkpoint.pickle.globals, record);
  for (const offset of checkpoint.pickle.foreignPersistentIds)
    scanner.notes.push({ code: "persistent-id-not-storage", record, offset });
  if (checkpoint.format === "torch-zip") {
    for (const name of checkpoint.archive.duplicates)
      scanner.notes.push({ code: "zip-duplicate-member", name });
    if (checkpoint.archive.junkBefore > 0)
      scanner.notes.push({ code: "zip-junk-before", bytes: checkpoint.archive.junkBefore });
  }
  scanner.pickles.push({
    record,
    root: checkpoint.root,
    protocol: checkpoint.pickle.protocol,
    opcodes: checkpoint.pickle.opcodes,
    executedByTorch: true,
  });
  let nested = 0;
  visitObjects(checkpoint.root, (object) => {
    const callable = object.callable;
    if (!isBoxed(callable, "global") || !LOADERS.has(`${callable.module}.${callable.name}`)) return;
    const payload = payloadOf(object.args);
    if (payload) scanner.scanPickles(payload, `${record} > nested pickle ${++nested}`, true, 1);
  });
  return {
    format: checkpoint.format,
    globals: scanner.globals,
    notes: scanner.notes,
    pickles: scanner.pickles,
    verdict: scanner.verdict(),
  };
}

/** Every described object below `root`, once each. */
function visitObjects(root: PyValue, visit: (object: PyObject) => void): void {
  const seen = new Set<object>();
  const stack: PyValue[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== "object" || value === null || seen.has(value)) continue;
    seen.add(value);
    switch (value.kind) {
      case "object":
        visit(value);
        appendAll(stack, value.args);
        appendAll(stack, value.listItems);
        for (const [key, item] of value.dictItems) stack.push(key, item);
        if (value.state !== undefined) stack.push(value.state);
        break;
      case "dict":
        appendAll(stack, value.values);
        break;
      case "list":
      case "tuple":
        appendAll(stack, value.items);
        break;
      default:
        break;
    }
  }
}

export function scanFile(path: string): FileScan {
  const source = FileSource.open(path);
  try {
    return scanSource(source, { deep: true });
  } finally {
    source.close();
  }
}
