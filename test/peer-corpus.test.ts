import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ScanReport } from "../src/inspect/security/report.js";
import { scanFile, scanReport } from "../src/inspect/security/scanFile.js";

/**
 * ckpt scan against files whose truth was established without ckpt: other scanners' test corpora rebuilt
 * (`test/fixtures/make_peer_corpus.py`) and fixtures for the classes of input ckpt is known to miss
 * (`test/fixtures/make_security_fixtures.py`). For each file the manifest says which globals CPython's own
 * readers (loads, load over BytesIO, the pure-Python unpickler, stacked loads, numpy, torch 2.13) would
 * resolve, judged by the generator's policy, and which ckpt verdicts agree with that. Failing cases here are
 * findings for src/, not tests to relax.
 */
interface ExpectedGlobal {
  readonly module: string;
  readonly name: string;
  readonly raw?: [string, string];
  readonly computed?: boolean;
}

interface Entry {
  readonly file: string;
  readonly kind: string;
  readonly about: string | null;
  readonly origin: {
    readonly repo: string;
    readonly path: string;
    readonly test: string;
    readonly case?: string;
  };
  readonly peer: { readonly tool: string; readonly expects: string } | null;
  readonly truth: {
    readonly verdict: string;
    readonly resolved: Array<{ module: string; name: string; class: string; readers: string[] }>;
  };
  readonly expected: {
    readonly verdicts: ScanReport["verdict"][];
    readonly dangerousGlobals: ExpectedGlobal[];
    readonly mustList?: Array<{ module: string; name: string }>;
    readonly notesAbsent?: string[];
    readonly messageMatches?: string;
    readonly reason?: string;
  };
}

interface Manifest {
  readonly title: string;
  readonly generator: string;
  readonly entries: Entry[];
  readonly skipped: Array<{ name: string; reason: string }>;
}

const FIXTURES = join(import.meta.dirname, "fixtures");

function load(dir: string): Manifest {
  return JSON.parse(readFileSync(join(FIXTURES, dir, "manifest.json"), "utf8")) as Manifest;
}

/** What Python would run, for the failure message. */
function whatPythonDoes(entry: Entry): string {
  const named = entry.truth.resolved
    .filter((g) => g.class === "dangerous" || g.class === "unknown")
    .map((g) => `${g.class} ${g.module}.${g.name} (${g.readers.slice(0, 2).join(", ")})`);
  return named.length > 0 ? `Python resolves ${named.join("; ")}` : `Python resolves nothing harmful`;
}

function covers(report: ScanReport, g: ExpectedGlobal): boolean {
  return report.globals.some(
    (found) =>
      (found.module === g.module && found.name === g.name) ||
      (g.raw !== undefined && found.module === g.raw[0] && found.name === g.raw[1]) ||
      (g.computed === true && found.dynamic === true && found.class === "dangerous"),
  );
}

for (const dir of ["peer-corpus", "security"]) {
  const manifest = load(dir);

  describe(`${dir}: ${manifest.title}`, () => {
    it("holds the corpus the generator wrote", () => {
      expect(manifest.entries.length).toBeGreaterThan(50);
    });

    for (const entry of manifest.entries) {
      const label = `${entry.file}: truth ${entry.truth.verdict}${entry.about ? ` (${entry.about})` : ""}`;
      it(label, () => {
        const path = join(FIXTURES, dir, entry.file);
        const report = scanReport(path);
        const context = `${entry.file}: ${whatPythonDoes(entry)}; ckpt says ${report.verdict} with ${
          report.globals.map((g) => `${g.module}.${g.name}`).join(", ") || "no globals"
        }${entry.expected.reason ? ` [${entry.expected.reason}]` : ""}`;

        expect(entry.expected.verdicts, context).toContain(report.verdict);
        for (const g of entry.expected.dangerousGlobals) {
          expect(covers(report, g), `${context}: missing ${g.module}.${g.name}`).toBe(true);
        }
        for (const g of entry.expected.mustList ?? []) {
          expect(
            report.globals.some((found) => found.module === g.module && found.name === g.name),
            `${context}: an array file ckpt must open lists ${g.module}.${g.name}`,
          ).toBe(true);
        }
        if (entry.expected.notesAbsent) {
          const notes = scanFile(path).notes.map((n) => n.code);
          for (const code of entry.expected.notesAbsent) expect(notes, context).not.toContain(code);
        }
        if (entry.expected.messageMatches) {
          const pattern = new RegExp(entry.expected.messageMatches, "i");
          expect(
            report.findings.some((f) => pattern.test(f.message)),
            `${context}: a finding should say to ${entry.expected.messageMatches}`,
          ).toBe(true);
        }
      });
    }
  });
}
