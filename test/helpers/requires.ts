import { describe, it } from "vitest";

/** What a suite needs from the machine: found (with what it found), or missing (one line saying what). */
export type Requirement<T> = { readonly found: T } | { readonly missing: string };

/** The closing reporter lists skipped tests whose names start so: one line per suite that could not run. */
export const SKIP_PREFIX = "skipped: ";

/**
 * `describe(name, body)` when the requirement is met; otherwise one skipped test whose name says what is
 * missing. `describe.skip` and `describe.runIf(false)` still run their body to collect its tests, so a body
 * that uses what is missing (a torch version, a browser) throws while the suite is being collected.
 */
export function describeWith<T>(requirement: Requirement<T>, name: string, body: (found: T) => void): void {
  if ("missing" in requirement) {
    it.skip(`${SKIP_PREFIX}${requirement.missing}`, () => {});
    return;
  }
  describe(name, () => body(requirement.found));
}
