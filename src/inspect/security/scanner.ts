import { latin1 } from "../../reader/bytes.js";
import { ReaderError } from "../../reader/errors.js";
import {
  type FrameIssue,
  type FrameReading,
  type GlobalReference,
  type PickleHooks,
  parsePickle,
} from "../../reader/pickle/machine.js";
import { isBoxed, type PyGlobal, type PyValue } from "../../reader/pickle/value.js";
import { moduleClassOf, torchAcceptsPersistentId } from "../../reader/torch/rebuild.js";
import { classifyGlobal, type GlobalClass } from "./classify.js";
import { ENUM_MEMBER_REASON, getattrOnlyReadsMembers } from "./enumMembers.js";

/**
 * The pickle-level scanner: runs the machine over every pickle it is given, records every global each one
 * names (classified, with the byte that named it), follows bytes handed to nested loaders, and turns what it
 * saw into one verdict. Containers (zip members, legacy streams, npy files) feed it their pickles.
 */
export type ScanVerdict = "clean" | "framework" | "unknown" | "dangerous" | "inconclusive";

export interface ScannedGlobal {
  readonly module: string;
  readonly name: string;
  readonly class: GlobalClass;
  /** Why it has that class ("runs commands or processes", "on torch's weights_only allowlist"). */
  readonly reason: string;
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
  /** The cheap scan (a remote file's): records that are not pickles were not probed for hidden ones. */
  | { readonly code: "records-not-probed"; readonly records: number }
  | { readonly code: "zip-duplicate-member"; readonly name: string }
  | { readonly code: "zip-name-mismatch"; readonly name: string }
  | { readonly code: "zip-encrypted-member"; readonly name: string; readonly scanned: boolean }
  | { readonly code: "zip-member-unreadable"; readonly name: string; readonly detail: string }
  | { readonly code: "zip-junk-before"; readonly bytes: number }
  | { readonly code: "zip-member-outside-archive"; readonly name: string }
  | { readonly code: "archive-not-opened"; readonly kind: string }
  | { readonly code: "too-large-to-scan"; readonly record: string; readonly bytes: number }
  | {
      readonly code: "pickle-frames-not-honoured";
      readonly record: string;
      readonly kinds: FrameIssue["kind"][];
      readonly offset: number;
    };

/** Notes that mean part of the file could not be read: the verdict can then never be clean. */
const UNSCANNED: ReadonlySet<SecurityNote["code"]> = new Set([
  // CPython's readers disagree about such a stream: ckpt reports what each could run, but vouches for none.
  "pickle-frames-not-honoured",
  "archive-not-opened",
  "zip-encrypted-member",
  "zip-member-unreadable",
  "too-large-to-scan",
]);

export interface PickleScan {
  readonly record: string;
  readonly root: PyValue | undefined;
  readonly protocol: number;
  readonly opcodes: Uint8Array;
  /** torch executes this pickle on load (data.pkl, the legacy stream's pickles, a bare pickle). */
  readonly executedByTorch: boolean;
}

/** How one pickle is read: by whom, and in which container. */
export interface PickleContext {
  /** torch.load (or torch.jit.load) runs this pickle. */
  readonly executedByTorch: boolean;
  /** Part of a legacy stream: torch's legacy persistent_load accepts `("module", cls, ...)` ids. */
  readonly legacy?: boolean;
  /** Loaders handed bytes by loaders: bounded by `MAX_NESTING`. */
  readonly depth?: number;
  /** Bytes after the first STOP are someone else's (a legacy stream's next pickle). */
  readonly only?: boolean;
}

const MAX_NESTING = 3;
const MAX_PICKLES_AFTER_STOP = 16;
export const LOADERS = new Set([
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
export function payloadOf(args: readonly PyValue[]): Uint8Array | undefined {
  const first = args[0];
  if (isBoxed(first, "bytes")) return first.value;
  if (isBoxed(first, "object") && isBoxed(first.args[0], "bytes")) return first.args[0].value;
  return undefined;
}

/** What one run of the machine over some bytes found. */
type OneScan =
  /** It parsed to STOP: `end` is the offset just past it. */
  | { readonly kind: "parsed"; readonly end: number }
  /** It broke; `globals` were named before the break. */
  | { readonly kind: "broken"; readonly globals: number; readonly error: ReaderError };

/** What one `scanPickles` call added, to be replayed for the same bytes read the same way. */
interface MemoizedScan {
  readonly globals: readonly ScannedGlobal[];
  readonly notes: readonly SecurityNote[];
  readonly pickles: readonly PickleScan[];
  readonly malformed: boolean;
  readonly first: number | undefined;
}

/** Pickles longer than this are rarely repeated, and their key would cost as much as a scan. */
const MEMO_MAX_BYTES = 64 * 1024;

/**
 * Scans of identical pickles, shared between scanners. A DCP data file holds one `torch.save` archive per
 * item, and every item of one dtype and chunk shape pickles to the same bytes: 40,000 items are a handful
 * of distinct pickles. A scan depends only on the bytes, their record name and how they are read, which is
 * the key; what the scan records (globals, notes, the inert loaded value) is replayed, never re-run.
 */
export class ScanMemo {
  private readonly scans = new Map<string, MemoizedScan>();

  key(bytes: Uint8Array, record: string, context: PickleContext): string | undefined {
    if (bytes.length > MEMO_MAX_BYTES) return undefined;
    const how = `${context.executedByTorch ? 1 : 0}${context.legacy ? 1 : 0}${context.only ? 1 : 0}${context.depth ?? 0}`;
    return `${record}\0${how}\0${latin1(bytes)}`;
  }

  get(key: string): MemoizedScan | undefined {
    return this.scans.get(key);
  }

  set(key: string, scan: MemoizedScan): void {
    this.scans.set(key, scan);
  }
}

export class Scanner {
  readonly globals: ScannedGlobal[] = [];
  readonly notes: SecurityNote[] = [];
  readonly pickles: PickleScan[] = [];
  private malformed = false;
  private readonly memo: ScanMemo | undefined;

  constructor(memo?: ScanMemo) {
    this.memo = memo;
  }

  /**
   * Scans the pickle(s) in `bytes`: the first, then any that follow its STOP (Python's `pickle.load` called
   * again on the same file reads them). Returns the first's end, or undefined when the first did not parse.
   */
  scanPickles(bytes: Uint8Array, record: string, context: PickleContext): number | undefined {
    const key = this.memo?.key(bytes, record, context);
    const hit = key === undefined ? undefined : this.memo?.get(key);
    if (hit !== undefined) {
      this.globals.push(...hit.globals);
      this.notes.push(...hit.notes);
      this.pickles.push(...hit.pickles);
      if (hit.malformed) this.malformed = true;
      return hit.first;
    }
    const marks = [this.globals.length, this.notes.length, this.pickles.length] as const;
    const wasMalformed = this.malformed;
    const first = this.scanAll(bytes, record, context);
    if (key !== undefined) {
      this.memo?.set(key, {
        globals: this.globals.slice(marks[0]),
        notes: this.notes.slice(marks[1]),
        pickles: this.pickles.slice(marks[2]),
        malformed: this.malformed && !wasMalformed,
        first,
      });
    }
    return first;
  }

  private scanAll(bytes: Uint8Array, record: string, context: PickleContext): number | undefined {
    let start = 0;
    let first: number | undefined;
    for (let index = 0; start < bytes.length && index <= MAX_PICKLES_AFTER_STOP; index++) {
      const name = index === 0 ? record : `${record} (pickle ${index + 1} after STOP)`;
      const executed = context.executedByTorch && index === 0;
      const scan = this.scanOne(bytes.subarray(start), name, { ...context, executedByTorch: executed });
      if (scan.kind === "broken") {
        // Whatever follows a pickle that names nothing and then breaks is not a pickle: say nothing of it.
        if (index > 0 && scan.globals === 0) this.notes.pop();
        else this.malformed = true;
        break;
      }
      if (index === 0) first = scan.end;
      start += scan.end;
      if (context.only) break;
      if (start < bytes.length && index === 0)
        this.notes.push({ code: "pickle-after-stop", record, count: bytes.length - start });
    }
    return first;
  }

  /**
   * Whether `bytes` are one pickle that names at least one global and ends exactly at their end: what a
   * tensor record or a code file never is by chance. Records nothing.
   */
  static isPickle(bytes: Uint8Array): boolean {
    const probe = new Scanner();
    const scan = probe.scanOne(bytes, "probe", { executedByTorch: false });
    return scan.kind === "parsed" && scan.end === bytes.length && probe.globals.length > 0;
  }

  /**
   * Whether the head of some bytes could begin a pickle: the machine either names a global in it or runs to
   * its end still wanting more. Tensor data fails on its first opcodes; a pickle that ends early is not one
   * filling the whole member.
   */
  static couldBePickle(head: Uint8Array): boolean {
    const probe = new Scanner();
    const scan = probe.scanOne(head, "probe", { executedByTorch: false });
    if (probe.globals.length > 0) return true;
    return scan.kind === "broken" && scan.error.code === "pickle-truncated";
  }

  /**
   * One pickle, read as every CPython reader could read it: contiguously (`pickle.loads`; and
   * `pickle._loads`, which reads on through a FRAME longer than the bytes), and, when the stream's frames
   * do not match its opcodes, as the C unpickler reads a file object (what `torch.load` does), where an operand
   * that runs past a frame's end is taken from after it. Globals either reading names are all reported.
   */
  private scanOne(bytes: Uint8Array, record: string, context: PickleContext): OneScan {
    const issues: FrameIssue[] = [];
    const scan = this.scanFramed(bytes, record, context, "contiguous", issues);
    if (issues.length === 0) return scan;
    this.notes.push({
      code: "pickle-frames-not-honoured",
      record,
      kinds: [...new Set(issues.map((i) => i.kind))],
      offset: (issues[0] as FrameIssue).offset,
    });
    if (issues.some((i) => i.kind !== "frame-past-end")) {
      const seen = new Set(this.globals.map((g) => `${g.record}@${g.offset}:${g.module}.${g.name}`));
      const other = new Scanner();
      other.scanFramed(bytes, record, context, "file", []);
      for (const g of other.globals) {
        if (!seen.has(`${g.record}@${g.offset}:${g.module}.${g.name}`)) this.globals.push(g);
      }
    }
    return scan;
  }

  private scanFramed(
    bytes: Uint8Array,
    record: string,
    context: PickleContext,
    frames: FrameReading,
    issues: FrameIssue[],
  ): OneScan {
    const before = this.globals.length;
    const nested: Uint8Array[] = [];
    const legacy = context.legacy === true;
    const hooks: PickleHooks = {
      // torch's legacy persistent_load turns a module id into the class it carries; other ids stay inert.
      persistentLoad: (pid) => (legacy ? moduleClassOf(pid) : undefined) ?? { kind: "persistent", id: pid },
      call: (callable: PyGlobal, args: PyValue[]) => {
        if (LOADERS.has(callable.qualified)) {
          const payload = payloadOf(args);
          if (payload) nested.push(payload);
        }
        return undefined;
      },
    };
    try {
      const result = parsePickle(bytes, {
        scan: true,
        frames,
        hooks,
        trace: {
          onFrameIssue: (issue) => issues.push(issue),
          onGlobal: (g) => this.addGlobal(g, record),
          // The offset of the persistent-id opcode, as the loaders record it (PickleInfo.foreignPersistentIds).
          onPersistentId: (pid, _start, opcode) => {
            if (!torchAcceptsPersistentId(pid, legacy))
              this.notes.push({ code: "persistent-id-not-storage", record, offset: opcode });
          },
        },
      });
      this.pickles.push({
        record,
        root: result.value,
        protocol: result.protocol,
        opcodes: result.opcodes,
        executedByTorch: context.executedByTorch,
      });
      const depth = context.depth ?? 0;
      if (depth < MAX_NESTING) {
        nested.forEach((payload, i) => {
          this.scanPickles(payload, `${record} > nested pickle ${i + 1}`, {
            executedByTorch: context.executedByTorch,
            depth: depth + 1,
          });
        });
      }
      return { kind: "parsed", end: result.end };
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      const seen = this.globals.length - before;
      this.notes.push(
        seen > 0
          ? { code: "pickle-malformed-after-globals", record, detail: error.message, globals: seen }
          : { code: "pickle-unreadable", record, detail: error.message },
      );
      return { kind: "broken", globals: seen, error };
    }
  }

  /** Globals recorded while the pickle was loaded elsewhere. */
  adopt(globals: readonly GlobalReference[], record: string): void {
    for (const g of globals) this.addGlobal(g, record);
  }

  /** Something that could not be scanned: the verdict cannot be clean. */
  unscanned(note: SecurityNote): void {
    this.notes.push(note);
  }

  private addGlobal(g: GlobalReference, record: string): void {
    const dynamic = g.dynamic === true;
    const classification = classifyGlobal(g.module, g.name, {
      dynamic,
      ...(g.unresolvable ? { unresolvable: g.unresolvable } : {}),
    });
    this.globals.push({
      module: g.module,
      name: g.name,
      class: classification.class,
      reason: classification.reason,
      record,
      offset: g.offset,
      opcode: g.opcode,
      ...(dynamic ? { dynamic } : {}),
    });
  }

  /** Forgets that a pickle broke: the caller decided the bytes were not a pickle at all. */
  notAPickle(): void {
    this.malformed = false;
    this.notes.length = 0;
  }

  /**
   * Reclassifies `builtins.getattr` in each pickle whose every use of it reads an Enum member by name
   * (`enumMembers.ts`): called once scanning is done, before `verdict`.
   */
  settleEnumReads(): void {
    const isGetattr = (g: ScannedGlobal) => g.module === "builtins" && g.name === "getattr" && !g.dynamic;
    const records = new Set(this.globals.filter(isGetattr).map((g) => g.record));
    for (const record of records) {
      const pickle = this.pickles.find((p) => p.record === record);
      if (!pickle || !getattrOnlyReadsMembers(pickle.root)) continue;
      this.globals.forEach((g, i) => {
        if (g.record === record && isGetattr(g))
          this.globals[i] = { ...g, class: "framework", reason: ENUM_MEMBER_REASON };
      });
    }
  }

  verdict(): ScanVerdict {
    const classes = new Set(this.globals.map((g) => g.class));
    if (classes.has("dangerous")) return "dangerous";
    // A stream that breaks after naming globals may hide what follows, and parts that could not be read may
    // hide anything: never call either clean.
    if (this.malformed || this.notes.some((n) => UNSCANNED.has(n.code))) return "inconclusive";
    if (classes.has("unknown") || this.notes.some((n) => n.code === "persistent-id-not-storage"))
      return "unknown";
    if (classes.has("framework")) return "framework";
    return "clean";
  }
}
