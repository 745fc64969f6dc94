import type { Checkpoint, PickleInfo, PlainPickle, TorchZipCheckpoint } from "../../reader/checkpoint.js";
import { appendAll, isBoxed, type PyObject, type PyValue } from "../../reader/pickle/value.js";
import { looksLikeSafetensors } from "../../reader/safetensors.js";
import type { ByteSource } from "../../reader/source.js";
import { looksLikeLegacy, PickleSequence } from "../../reader/torch/legacyLoader.js";
import { looksLikeZip, openZip } from "../../reader/zip.js";
import { scanArchive } from "./scanArchive.js";
import { looksLikeNpy, scanNpy } from "./scanNumpy.js";
import {
  LOADERS,
  type PickleScan,
  payloadOf,
  type ScanMemo,
  type ScannedGlobal,
  Scanner,
  type ScanVerdict,
  type SecurityNote,
} from "./scanner.js";

/**
 * Finds every callable a file's pickles can reach, without running any of them: every pickle in the file
 * (`data.pkl`, `constants.pkl`, TorchScript's debug records, any archive member that parses as a pickle,
 * every copy of a duplicated name, each pickle of the legacy stream, data after STOP, object arrays of
 * `.npy`/`.npz` files, and pickles handed as bytes to loaders, depth-limited). A pickle is recognised by
 * running the machine over the bytes, not by its first byte: protocols 0 and 1 have no PROTO opcode.
 */
export type { PickleScan, ScannedGlobal, ScanVerdict, SecurityNote } from "./scanner.js";

export type ScannedFormat =
  | "torch-zip"
  | "torchscript"
  | "torch-legacy"
  | "pickle"
  | "safetensors"
  | "numpy"
  | "zip"
  | "archive"
  | "other";

export interface FileScan {
  readonly format: ScannedFormat;
  readonly globals: ScannedGlobal[];
  readonly notes: SecurityNote[];
  readonly pickles: PickleScan[];
  readonly verdict: ScanVerdict;
}

/** The largest bare file read whole to be run through the machine. */
const MAX_BARE_PICKLE = 256 * 1024 * 1024;

/**
 * Containers ckpt does not open: the file's bytes say what it is, and the user must unpack it first. The
 * signatures are each format's magic number (tar's is at byte 257).
 */
function archiveKind(head: Uint8Array): string | undefined {
  const at = (offset: number, ...bytes: number[]) => bytes.every((b, i) => head[offset + i] === b);
  if (at(0, 0x1f, 0x8b)) return "a gzip file";
  if (at(0, 0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c)) return "a 7z archive";
  if (at(0, 0x42, 0x5a, 0x68)) return "a bzip2 file";
  if (at(0, 0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return "an xz file";
  if (at(0, 0x28, 0xb5, 0x2f, 0xfd)) return "a zstd file";
  if (at(0, 0x52, 0x61, 0x72, 0x21, 0x1a, 0x07)) return "a rar archive";
  if (head.length >= 262 && at(257, 0x75, 0x73, 0x74, 0x61, 0x72)) return "a tar archive";
  return undefined;
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
    const context = { executedByTorch: true, legacy: true, only: true };
    let end: number;
    try {
      end = pickles.parseAt(offset, undefined, true).end;
    } catch {
      scanner.scanPickles(source.read(offset, Math.min(source.size - offset, 1024 * 1024)), label, context);
      return;
    }
    scanner.scanPickles(source.read(offset, end - offset), label, context);
    offset = end;
  }
}

/** Whether bytes start with PROTO: then they are certainly meant as a pickle, even one that breaks at once. */
function startsWithProto(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && (bytes[1] as number) <= 5;
}

/**
 * A file in no container format: whatever the machine can run in it. Bytes that break before naming anything
 * (text, images) are no pickle: nothing in them can run.
 */
function scanBare(source: ByteSource, scanner: Scanner): ScannedFormat {
  const bytes = source.read(0, Math.min(source.size, MAX_BARE_PICKLE));
  scanner.scanPickles(bytes, "pickle", { executedByTorch: true });
  if (scanner.pickles.length > 0 || scanner.globals.length > 0 || startsWithProto(bytes)) {
    if (source.size > MAX_BARE_PICKLE)
      scanner.unscanned({ code: "too-large-to-scan", record: "pickle", bytes: source.size });
    return "pickle";
  }
  scanner.notAPickle();
  return "other";
}

export interface ScanOptions {
  /** Probe every archive member for hidden pickles (costs one read per record). */
  readonly deep?: boolean;
  /** Scans of pickles already met, shared by the scans of many small archives (a DCP file's items). */
  readonly memo?: ScanMemo;
}

export function scanSource(source: ByteSource, options: ScanOptions = {}): FileScan {
  const scanner = new Scanner(options.memo);
  const head = source.read(0, Math.min(512, source.size));
  let format: ScannedFormat;
  const archive = archiveKind(head);
  if (looksLikeZip(head)) {
    const zip = openZip(source);
    format = zip.get("data.pkl")
      ? zip.get("constants.pkl")
        ? "torchscript"
        : "torch-zip"
      : zip.entries.some((e) => e.name.endsWith(".npy"))
        ? "numpy"
        : "zip";
    scanArchive(zip, scanner, options.deep ?? false);
  } else if (looksLikeLegacy(head)) {
    format = "torch-legacy";
    scanLegacy(source, scanner);
  } else if (looksLikeSafetensors(head, source.size)) {
    format = "safetensors";
  } else if (looksLikeNpy(head)) {
    format = "numpy";
    scanNpy(source.read(0, Math.min(source.size, MAX_BARE_PICKLE)), "array", scanner);
  } else if (archive) {
    format = "archive";
    scanner.unscanned({ code: "archive-not-opened", kind: archive });
  } else {
    format = scanBare(source, scanner);
  }
  scanner.settleEnumReads();
  return {
    format,
    globals: scanner.globals,
    notes: scanner.notes,
    pickles: scanner.pickles,
    verdict: scanner.verdict(),
  };
}

/**
 * A part that could not be opened to scan (a DCP item whose archive is damaged): it holds nothing ckpt read,
 * so the verdict says so rather than calling it clean, and the other parts are still scanned.
 */
export function unopenedScan(name: string, detail: string): FileScan {
  const scanner = new Scanner();
  scanner.unscanned({ code: "zip-member-unreadable", name, detail });
  return { format: "other", globals: [], notes: scanner.notes, pickles: [], verdict: scanner.verdict() };
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

/**
 * The scan of what torch.load runs, from what opening the checkpoint read, without probing the other records
 * for hidden pickles: for a remote file, where the probe is a request per record (hundreds of megabytes of a
 * large checkpoint) while the rest is the two requests inspect makes. Says so in a note.
 */
export function scanWithoutProbe(checkpoint: Checkpoint): FileScan {
  const scan = scanCheckpoint(checkpoint);
  if (checkpoint.format !== "torch-zip") return scan;
  const records = checkpoint.archive.entries.filter((e) => !/\.(pkl|debug_pkl)$/.test(e.name)).length;
  return records === 0 ? scan : { ...scan, notes: [...scan.notes, { code: "records-not-probed", records }] };
}

/** Globals and opcodes recorded while loading; loaders handed bytes are found in the loaded graph. */
function scanLoaded(checkpoint: TorchZipCheckpoint | PlainPickle): FileScan {
  const archive = checkpoint.format === "torch-zip" ? checkpoint.archive : undefined;
  return scanParsed(checkpoint.format, checkpoint.pickle, checkpoint.root, (scanner) => {
    if (archive === undefined) return;
    for (const name of archive.duplicates) scanner.notes.push({ code: "zip-duplicate-member", name });
    if (archive.junkBefore > 0) scanner.notes.push({ code: "zip-junk-before", bytes: archive.junkBefore });
    // Scanned without making an entry per record (a 200,000-tensor archive); encrypted ones are rare.
    if (archive.hasEncrypted())
      for (const entry of archive.entries) {
        if (entry.encrypted)
          scanner.unscanned({ code: "zip-encrypted-member", name: entry.name, scanned: false });
      }
  });
}

/**
 * The scan of a bare pickle that was parsed to be decoded (DCP's `.metadata`), when every CPython reader
 * reads it as that parse did; undefined otherwise, and then the file is scanned as it lies.
 */
export function scanParsedPickle(parse: {
  readonly pickle: PickleInfo;
  readonly root: () => PyValue;
  readonly readsAlike: boolean;
}): FileScan | undefined {
  if (!parse.readsAlike) return undefined;
  // The decoder let go of the graph (a large `.metadata`'s is hundreds of megabytes) and rebuilds it only
  // for a scan that walks it: loaders handed bytes, getattr calls that may read Enum members. A bare pickle's
  // weights_only judgement never does (torch.load cannot read one at all), so its scan keeps no root.
  const walks = parse.pickle.globals.some(
    (g) =>
      g.dynamic === true ||
      (g.module === "builtins" && g.name === "getattr") ||
      LOADERS.has(`${g.module}.${g.name}`),
  );
  return scanParsed("pickle", parse.pickle, walks ? parse.root() : undefined, () => {});
}

/** A scan built from one executed pickle's parse: its globals adopted, nested loaders' bytes scanned. */
function scanParsed(
  format: ScannedFormat,
  pickle: PickleInfo,
  root: PyValue | undefined,
  containerNotes: (scanner: Scanner) => void,
): FileScan {
  const scanner = new Scanner();
  const record = pickle.record;
  scanner.adopt(pickle.globals, record);
  for (const offset of pickle.foreignPersistentIds)
    scanner.notes.push({ code: "persistent-id-not-storage", record, offset });
  containerNotes(scanner);
  scanner.pickles.push({
    record,
    root,
    protocol: pickle.protocol,
    opcodes: pickle.opcodes,
    executedByTorch: true,
  });
  let nested = 0;
  // Only a named loader can be called with bytes: without one, the graph (200,000 tensors) is not walked.
  const namesLoader = pickle.globals.some((g) => g.dynamic === true || LOADERS.has(`${g.module}.${g.name}`));
  visitObjects(namesLoader ? (root ?? null) : null, (object) => {
    const callable = object.callable;
    if (!isBoxed(callable, "global") || !LOADERS.has(callable.qualified)) return;
    const payload = payloadOf(object.args);
    if (payload)
      scanner.scanPickles(payload, `${record} > nested pickle ${++nested}`, {
        executedByTorch: true,
        depth: 1,
      });
  });
  scanner.settleEnumReads();
  return {
    format,
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
