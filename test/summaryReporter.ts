import type { Reporter, SerializedError, TestModule } from "vitest/node";
import { SKIP_PREFIX } from "./helpers/requires.js";

/** What the closing line counts. A suite that throws outside any test (while collected, in a hook) has 0 tests. */
export interface Tally {
  passed: number;
  failedTests: number;
  skipped: number;
  /** Files and describe blocks that failed outside any test, by name. */
  failedSuites: string[];
  unhandledErrors: number;
  /** "test/torch-security.test.ts: needs torch 2.x (...)": suites that could not run here, and why. */
  skipReasons: string[];
}

export function tally(modules: ReadonlyArray<TestModule>, unhandled: ReadonlyArray<SerializedError>): Tally {
  const counts: Tally = {
    passed: 0,
    failedTests: 0,
    skipped: 0,
    failedSuites: [],
    unhandledErrors: unhandled.length,
    skipReasons: [],
  };
  for (const module of modules) {
    let failedHere = 0;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === "passed") counts.passed++;
      else if (state === "failed") {
        counts.failedTests++;
        failedHere++;
      } else {
        counts.skipped++;
        if (test.name.startsWith(SKIP_PREFIX))
          counts.skipReasons.push(`${module.relativeModuleId}: ${test.name.slice(SKIP_PREFIX.length)}`);
      }
    }
    // A module that failed with no failed test threw while it was collected (or in a file-level hook).
    if (module.errors().length > 0 || (module.state() === "failed" && failedHere === 0))
      counts.failedSuites.push(module.relativeModuleId);
    for (const suite of module.children.allSuites())
      if (suite.errors().length > 0)
        counts.failedSuites.push(`${module.relativeModuleId} > ${suite.fullName}`);
  }
  return counts;
}

/** "1450 passed, 1 failed (1 suite failed outside its tests: test/x.test.ts), 3 skipped": never "0 failed" then. */
export function closingLine(t: Tally): string {
  const failed = t.failedTests + t.failedSuites.length + t.unhandledErrors;
  const why: string[] = [];
  if (t.failedSuites.length > 0) {
    const suites = t.failedSuites.length === 1 ? "suite" : "suites";
    why.push(`${t.failedSuites.length} ${suites} failed outside its tests: ${t.failedSuites.join(", ")}`);
  }
  if (t.unhandledErrors > 0)
    why.push(`${t.unhandledErrors} unhandled error${t.unhandledErrors === 1 ? "" : "s"}`);
  const detail = why.length > 0 ? ` (${why.join("; ")})` : "";
  return `${t.passed} passed, ${failed} failed${detail}, ${t.skipped} skipped`;
}

/**
 * Prints, after vitest's own report, one line per suite that could not run on this machine and a closing
 * line, `N passed, N failed, N skipped`: a plain summary any CI log reader understands, whatever it knows of
 * vitest.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const t = tally(modules, unhandledErrors);
    const skips = t.skipReasons.map((reason) => `skipped ${reason}\n`).join("");
    process.stdout.write(`\n${skips}${closingLine(t)}\n`);
  }
}
