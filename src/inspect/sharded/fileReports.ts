import { type FindingReport, findingReport } from "../findings.js";
import { type ScanReport, scanReportOf, securityFindings } from "../security/report.js";
import type { ScanVerdict } from "../security/scan.js";
import { judgeWeightsOnly } from "../security/weightsOnly.js";
import type { ShardedFileRole, ShardedFileScan } from "./fileScan.js";

/**
 * What each command keeps of a sharded file's scan. A DCP data file's merged scan holds a record per global
 * of each of its items (a million at 50,000 tensors x 4 ranks); these are a few hundred bytes, so a second
 * thread that scanned the file sends back one of them, by name, rather than the scan.
 */

/** A file's line in `inspect`'s security section. */
export interface ShardedSecurityFile {
  readonly file: string;
  readonly role: ShardedFileRole;
  readonly items: number;
  readonly loadedBy: string;
  readonly verdict: ScanVerdict;
  readonly findings: FindingReport[];
}

/** `scan`'s report of a file of a sharded checkpoint (`file` relative to the checkpoint's directory). */
type ShardedScanReport = ScanReport & { readonly items: number; readonly loadedBy: string };

export const FILE_REPORTS = {
  inspect: (s: ShardedFileScan): ShardedSecurityFile => ({
    file: s.file,
    role: s.role,
    items: s.items,
    loadedBy: s.loadedBy,
    verdict: s.scan.verdict,
    findings: securityFindings(s.scan, judgeWeightsOnly(s.scan)).map(findingReport),
  }),
  scan: (s: ShardedFileScan): ShardedScanReport => ({
    ...scanReportOf(s.file, s.scan),
    items: s.items,
    loadedBy: s.loadedBy,
  }),
} as const;

export type FileReportKind = keyof typeof FILE_REPORTS;
export type FileReport<K extends FileReportKind> = ReturnType<(typeof FILE_REPORTS)[K]>;
