import { atLeast, type Severity } from "../inspect/findings.js";

export type FailOn = Severity | "none";

/** 0: fine; 1: a finding at or above `failOn`; 2 (unusable input, usage) is decided by the caller. */
export function exitCodeFor(findings: ReadonlyArray<{ severity: Severity }>, failOn: FailOn): 0 | 1 {
  if (failOn === "none") return 0;
  return findings.some((f) => atLeast(f.severity, failOn)) ? 1 : 0;
}
