import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ReaderError } from "../src/reader/errors.js";
import {
  type FrameIssue,
  type FrameReading,
  type GlobalReference,
  parsePickle,
} from "../src/reader/pickle/machine.js";
import { python3Name } from "../src/reader/pickle/ops/globals.js";
import { type Canonical, canonical } from "./helpers/canonical.js";

/**
 * ckpt's pickle machine against CPython's own unpickler, on the corpus made by
 * `test/fixtures/make_pickle_corpus.py` (expected values computed by `pickle.Unpickler` with stub classes,
 * reading the stream as `pickle.loads` does). Cases with `readers` also record what each of CPython's three
 * readers did: `frames: "contiguous"` must agree with `loads`, `frames: "file"` with `file` (what
 * `torch.load` does), and a scan in either framing must name every global any of them asked for.
 */
interface ReaderOutcome {
  expected?: Canonical;
  error?: string;
  /** [module, name] as each reader's find_class was asked, in order. */
  globals: Array<[string, string]>;
}

interface CorpusCase {
  name: string;
  file: string;
  description: string;
  expected?: Canonical;
  error?: string;
  trailingBytes?: number;
  readers?: { loads: ReaderOutcome; file: ReaderOutcome; python: ReaderOutcome };
}

const corpusDir = join(import.meta.dirname, "fixtures", "pickle-corpus");
const manifest = JSON.parse(readFileSync(join(corpusDir, "manifest.json"), "utf8")) as {
  cases: CorpusCase[];
};

/**
 * Where ckpt deliberately answers differently from CPython, and why. Every entry must still hold (the test
 * below fails if a listed case starts agreeing, so this list cannot go stale).
 */
const DIVERGENCES: Record<string, string> = {
  err_short_binstring_nonascii:
    "Python 2 str bytes are decoded as torch.load does (encoding='utf-8', latin-1 fallback), not as pickle.loads does (ASCII)",
};

/** NaN payloads are not preserved by JS numbers; any NaN equals any NaN. */
function normalizeNaN(value: Canonical): Canonical {
  if (Array.isArray(value)) return value.map(normalizeNaN);
  if (value !== null && typeof value === "object") {
    if (
      typeof value.float === "string" &&
      /^[7f]ff[8-9a-f]/.test(value.float) &&
      value.float.slice(3) !== "0000000000000"
    ) {
      return { float: "nan" };
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeNaN(v as Canonical)]));
  }
  return value;
}

function run(bytes: Uint8Array, frames?: FrameReading): { value?: Canonical; end?: number; error?: unknown } {
  try {
    const result = parsePickle(bytes, frames ? { frames } : {});
    return { value: normalizeNaN(canonical(result.value)), end: result.end };
  } catch (error) {
    return { error };
  }
}

describe("pickle machine agrees with CPython's unpickler", () => {
  it("has a corpus", () => {
    expect(manifest.cases.length).toBeGreaterThan(200);
  });

  for (const testCase of manifest.cases) {
    const divergence = DIVERGENCES[testCase.name];
    it(`${testCase.name}${divergence ? " (documented divergence)" : ""}`, () => {
      const bytes = new Uint8Array(readFileSync(join(corpusDir, testCase.file)));
      const outcome = run(bytes);
      if (outcome.error !== undefined && !(outcome.error instanceof ReaderError)) throw outcome.error;
      const agrees =
        testCase.error !== undefined
          ? outcome.error !== undefined
          : outcome.error === undefined &&
            JSON.stringify(outcome.value) === JSON.stringify(normalizeNaN(testCase.expected as Canonical)) &&
            outcome.end === bytes.length - (testCase.trailingBytes ?? 0);
      if (divergence) {
        expect(agrees, `${testCase.name} now agrees with CPython: remove it from DIVERGENCES`).toBe(false);
        return;
      }
      if (testCase.error !== undefined) {
        expect(outcome.error, `CPython raises ${testCase.error}`).toBeInstanceOf(ReaderError);
      } else {
        if (outcome.error) throw outcome.error;
        expect(outcome.value).toEqual(normalizeNaN(testCase.expected as Canonical));
        expect(outcome.end).toBe(bytes.length - (testCase.trailingBytes ?? 0));
      }
    });
  }
});

const bytesOf = (testCase: CorpusCase) => new Uint8Array(readFileSync(join(corpusDir, testCase.file)));
const threeReaders = manifest.cases.filter((c) => c.readers !== undefined);

describe('frames: "file" agrees with pickle.load(io.BytesIO(...)), the reader torch.load uses', () => {
  it("has cases where the readers disagree", () => {
    const differ = threeReaders.filter(
      (c) => JSON.stringify(c.readers?.loads) !== JSON.stringify(c.readers?.file),
    );
    expect(differ.length).toBeGreaterThanOrEqual(6);
  });

  for (const testCase of threeReaders) {
    const expected = testCase.readers?.file as ReaderOutcome;
    it(testCase.name, () => {
      const outcome = run(bytesOf(testCase), "file");
      if (outcome.error !== undefined && !(outcome.error instanceof ReaderError)) throw outcome.error;
      if (expected.error !== undefined) {
        expect(outcome.error, `pickle.load(BytesIO) raises ${expected.error}`).toBeInstanceOf(ReaderError);
      } else {
        if (outcome.error) throw outcome.error;
        expect(outcome.value).toEqual(normalizeNaN(expected.expected as Canonical));
      }
    });
  }
});

/** Every global a scan names, even past an error, as `module.name`. */
function scannedGlobals(bytes: Uint8Array, frames: FrameReading): Set<string> {
  const named = new Set<string>();
  const onGlobal = (reference: GlobalReference) => named.add(`${reference.module}.${reference.name}`);
  try {
    parsePickle(bytes, { scan: true, frames, trace: { onGlobal } });
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
  }
  return named;
}

describe("a scan names every global any CPython reader would resolve", () => {
  for (const testCase of threeReaders) {
    it(testCase.name, () => {
      const bytes = bytesOf(testCase);
      const scanned = new Set([...scannedGlobals(bytes, "contiguous"), ...scannedGlobals(bytes, "file")]);
      for (const [reader, outcome] of Object.entries(testCase.readers ?? {})) {
        for (const [module, name] of outcome.globals) {
          // find_class is asked for the stream's own names; ckpt reports the Python 3 names they import.
          const [module3, name3] = python3Name(module, name);
          expect(scanned, `${reader} asks for ${module}.${name}`).toContain(`${module3}.${name3}`);
        }
      }
    });
  }

  it("sees the call that only pickle.load(BytesIO) makes", () => {
    const testCase = manifest.cases.find((c) => c.name === "frame_loads_vs_file_globals") as CorpusCase;
    expect(testCase.readers?.loads.globals).toEqual([["builtins", "len"]]);
    expect(testCase.readers?.file.globals).toEqual([
      ["os", "system"],
      ["builtins", "len"],
    ]);
    const bytes = bytesOf(testCase);
    expect([...scannedGlobals(bytes, "contiguous")]).toEqual(["builtins.len"]);
    expect([...scannedGlobals(bytes, "file")]).toEqual(["os.system", "builtins.len"]);
  });
});

/**
 * The frame issues each hand-written FRAME case must report, in both framings (scan mode, so that a FRAME
 * past the end is reported and read through). Every other case, everything `pickle.dumps` writes included,
 * must report none.
 */
const FRAME_ISSUES: Record<string, Array<FrameIssue["kind"]>> = {
  frame_loads_vs_file_globals: ["operand-crosses-frame-end"],
  frame_len0_inside_frame: ["frame-inside-frame"],
  frame_inside_frame_fits: ["frame-inside-frame"],
  frame_inside_frame_overflows: ["frame-inside-frame"],
  frame_length_straddles: ["operand-crosses-frame-end"],
  frame_past_end: ["frame-past-end"],
  frame_past_end_short: ["frame-past-end"],
  frame_binint_straddles: ["operand-crosses-frame-end"],
  frame_line_straddles_global: ["operand-crosses-frame-end"],
  frame_line_straddles_int: ["operand-crosses-frame-end"],
  frame_binbytes_straddles: ["operand-crosses-frame-end"],
  frame_binbytes_length_straddles: ["operand-crosses-frame-end"],
  frame_bytearray8_straddles: ["operand-crosses-frame-end"],
  frame_binunicode_straddles: ["operand-crosses-frame-end"],
  frame_memo_index_straddles: ["operand-crosses-frame-end"],
  err_truncated_frame: ["frame-past-end"],
};

function frameIssueKinds(bytes: Uint8Array, frames: FrameReading): Array<FrameIssue["kind"]> {
  const seen: FrameIssue[] = [];
  try {
    const result = parsePickle(bytes, { scan: true, frames, trace: { onFrameIssue: (i) => seen.push(i) } });
    expect(result.frameIssues).toEqual(seen);
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
  }
  return seen.map((issue) => issue.kind);
}

describe("frame issues", () => {
  it("every listed case exists", () => {
    const names = new Set(manifest.cases.map((c) => c.name));
    for (const name of Object.keys(FRAME_ISSUES)) expect(names).toContain(name);
  });

  for (const testCase of manifest.cases) {
    const kinds = FRAME_ISSUES[testCase.name] ?? [];
    it(`${testCase.name}: ${kinds.length > 0 ? kinds.join(", ") : "none"}`, () => {
      const bytes = bytesOf(testCase);
      expect(frameIssueKinds(bytes, "contiguous")).toEqual(kinds);
      expect(frameIssueKinds(bytes, "file")).toEqual(kinds);
    });
  }

  it("a FRAME past the end is told to the trace before the parse fails, outside scan mode", () => {
    const testCase = manifest.cases.find((c) => c.name === "frame_past_end") as CorpusCase;
    const seen: FrameIssue[] = [];
    expect(() => parsePickle(bytesOf(testCase), { trace: { onFrameIssue: (i) => seen.push(i) } })).toThrow(
      expect.objectContaining({ code: "pickle-truncated" }),
    );
    expect(seen).toEqual([{ kind: "frame-past-end", offset: 2, length: 100, available: 18 }]);
  });

  it("says where the crossing is and which frame it crosses", () => {
    const testCase = manifest.cases.find((c) => c.name === "frame_binint_straddles") as CorpusCase;
    // PROTO 4, FRAME 5 at byte 2: the frame holds bytes 11-15; BININT at 13 needs 14-17.
    expect(parsePickle(bytesOf(testCase)).frameIssues).toEqual([
      { kind: "operand-crosses-frame-end", offset: 13, frameStart: 11, frameEnd: 16 },
    ]);
  });
});
