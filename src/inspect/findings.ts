import type { ReaderNote } from "../reader/checkpoint.js";
import type { KeyPath } from "./walk.js";

/**
 * Findings are data: a stable code plus the facts behind it. Severity and prose live in one table below, so
 * detectors never write sentences and every code has exactly one severity.
 */
export type Severity = "error" | "warning" | "info";

export type Finding =
  | ReaderNote
  | { readonly code: "pointer-file"; readonly target: string; readonly exists: boolean }
  | { readonly code: "walk-truncated"; readonly visits: number }
  | { readonly code: "classes-not-modelled"; readonly classes: string[] }
  | { readonly code: "tensor-without-data"; readonly path: KeyPath; readonly rebuild: string };

export type FindingCode = Finding["code"];

type FindingOf<C extends FindingCode> = Extract<Finding, { code: C }>;

interface FindingInfo<C extends FindingCode> {
  readonly severity: Severity | ((finding: FindingOf<C>) => Severity);
  readonly message: (finding: FindingOf<C>) => string;
}

export const FINDING_INFO: { readonly [C in FindingCode]: FindingInfo<C> } = {
  "storage-record-missing": {
    severity: "error",
    message: (f) =>
      `storage ${f.key} is used by tensors but its record ${f.record} is missing: torch.load will fail`,
  },
  "storage-size-mismatch": {
    severity: "error",
    message: (f) => `storage ${f.key} should hold ${f.expected} bytes but its record has ${f.actual}`,
  },
  "zip-duplicate-name": {
    severity: "warning",
    message: (f) =>
      `the archive holds ${f.name} more than once; torch reads the first copy, other zip tools may not`,
  },
  "pickle-trailing-bytes": {
    severity: "warning",
    message: (f) => `${f.count} bytes follow the STOP opcode of ${f.record}; torch ignores them`,
  },
  "big-endian": {
    severity: "info",
    message: (f) => `tensor bytes are big-endian (${f.detail}); hashes are computed on little-endian values`,
  },
  "pointer-file": {
    severity: (f) => (f.exists ? "info" : "error"),
    message: (f) =>
      f.exists
        ? `this is a pointer file naming ${f.target}: inspect that file; to resume, pass the run directory, not the pointer as weights`
        : `this pointer names ${f.target}, which does not exist: resume from this run would fail or start over`,
  },
  "walk-truncated": {
    severity: "warning",
    message: (f) =>
      `the object graph expands to more than ${f.visits} nodes (shared references); listing stopped there`,
  },
  "classes-not-modelled": {
    severity: "info",
    message: (f) =>
      `the pickle instantiates ${f.classes.length} class(es) ckpt describes without importing: ${f.classes.slice(0, 5).join(", ")}${f.classes.length > 5 ? ", ..." : ""}`,
  },
  "tensor-without-data": {
    severity: "info",
    message: (f) => `a tensor saved without data (${f.rebuild}): shape and dtype only`,
  },
};

export function severityOf(finding: Finding): Severity {
  const info = FINDING_INFO[finding.code] as FindingInfo<FindingCode>;
  return typeof info.severity === "function" ? info.severity(finding as never) : info.severity;
}

export function messageOf(finding: Finding): string {
  const info = FINDING_INFO[finding.code] as FindingInfo<FindingCode>;
  return info.message(finding as never);
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

export function atLeast(severity: Severity, threshold: Severity): boolean {
  return RANK[severity] >= RANK[threshold];
}
