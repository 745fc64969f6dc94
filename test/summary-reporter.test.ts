import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { closingLine } from "./summaryReporter.js";

/** The closing line of `npm test` counts what failed outside any test, and says why suites were skipped. */
const ROOT = join(import.meta.dirname, "..");

describe("the summary reporter", () => {
  it("counts a suite that throws while collected as failed, and names what a skipped suite needs", () => {
    const run = spawnSync(
      process.execPath,
      [
        join(ROOT, "node_modules", "vitest", "vitest.mjs"),
        "run",
        "--config",
        "test/fixtures/reporter/vitest.config.ts",
      ],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } },
    );
    expect(run.status).toBe(1);
    const lines = run.stdout.trim().split("\n");
    expect(lines.at(-1)).toBe(
      "1 passed, 1 failed (1 suite failed outside its tests: throws.fixture.ts), 1 skipped",
    );
    expect(lines.at(-2)).toBe("skipped passes.fixture.ts: needs a unicorn (none at /nonexistent)");
  });

  it("never says 0 failed when only a suite failed", () => {
    const line = closingLine({
      passed: 3,
      failedTests: 0,
      skipped: 0,
      failedSuites: ["a.test.ts"],
      unhandledErrors: 1,
      skipReasons: [],
    });
    expect(line).toBe(
      "3 passed, 2 failed (1 suite failed outside its tests: a.test.ts; 1 unhandled error), 0 skipped",
    );
  });
});
