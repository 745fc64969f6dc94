import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ReaderError } from "../src/reader/errors.js";
import { parsePickle } from "../src/reader/pickle/machine.js";
import { type Canonical, canonical } from "./helpers/canonical.js";

/**
 * ckpt's pickle machine against CPython's own unpickler, on the corpus made by
 * `test/fixtures/make_pickle_corpus.py` (expected values computed by `pickle.Unpickler` with stub classes).
 */
interface CorpusCase {
  name: string;
  file: string;
  description: string;
  expected?: Canonical;
  error?: string;
  trailingBytes?: number;
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

function run(bytes: Uint8Array): { value?: Canonical; end?: number; error?: unknown } {
  try {
    const result = parsePickle(bytes);
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
