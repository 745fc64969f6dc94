import { type Finding, type FindingReport, findingReport } from "../findings.js";
import { formatKeyPath } from "../walk.js";
import type { FileScan, ScannedGlobal, ScanVerdict } from "./scan.js";
import { judgeWeightsOnly, type WeightsOnlyVerdict } from "./weightsOnly.js";

/** The `ckpt.scan/1` contract: one object per file. */
export interface ScanReport {
  readonly schema: "ckpt.scan/1";
  readonly file: string;
  readonly format: FileScan["format"];
  readonly verdict: ScanVerdict;
  readonly globals: ReportedGlobal[];
  readonly weightsOnly: WeightsOnlyVerdict;
  readonly findings: FindingReport[];
  /** A file of a sharded checkpoint: how many items (torch.save archives) it holds, and what loads them. */
  readonly items?: number;
  readonly loadedBy?: string;
}

/**
 * A global as reported: where it first occurs and, for a safe or framework one named more than once, how
 * often (`occurrences`, absent when 1).
 */
export type ReportedGlobal = Pick<
  ScannedGlobal,
  "module" | "name" | "class" | "reason" | "record" | "offset" | "opcode" | "dynamic"
> & { occurrences?: number };

/**
 * The globals of a scan as the report lists them. Dangerous and unknown ones, and any found by a dynamic
 * lookup, are listed at every place they occur: those are the places to look at. A safe or framework one is
 * listed once, at its first place, with its count: a DCP data file of 50,000 tensors names
 * `_rebuild_tensor_v2` in each item's pickle, and listing each made `scan --json` of one such checkpoint
 * 164 MB. The findings and the weights-only verdict are judged from the full list, not from this one.
 */
function reportedGlobals(globals: readonly ScannedGlobal[]): ReportedGlobal[] {
  const reported: ReportedGlobal[] = [];
  const firstOf = new Map<string, ReportedGlobal>();
  for (const { module, name, class: cls, reason, record, offset, opcode, dynamic } of globals) {
    const collapsible = (cls === "safe" || cls === "framework") && !dynamic;
    const key = collapsible ? `${cls}\0${module}\0${name}\0${opcode}` : undefined;
    const first = key === undefined ? undefined : firstOf.get(key);
    if (first) {
      first.occurrences = (first.occurrences ?? 1) + 1;
      continue;
    }
    const entry: ReportedGlobal = {
      module,
      name,
      class: cls,
      reason,
      record,
      offset,
      opcode,
      ...(dynamic ? { dynamic } : {}),
    };
    if (key !== undefined) firstOf.set(key, entry);
    reported.push(entry);
  }
  return reported;
}

/** Security findings of one scan: what inspect, audit and scan all report. */
export function securityFindings(scan: FileScan, weightsOnly: WeightsOnlyVerdict): Finding[] {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  for (const g of scan.globals) {
    if (g.class !== "dangerous") continue;
    const key = `${g.module}.${g.name}@${g.record}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.push({
      code: "dangerous-global",
      module: g.module,
      name: g.name,
      record: g.record,
      offset: g.offset,
      dynamic: g.dynamic === true,
    });
  }
  const unknown = [
    ...new Set(scan.globals.filter((g) => g.class === "unknown").map((g) => `${g.module}.${g.name}`)),
  ];
  if (unknown.length > 0) findings.push({ code: "unknown-globals", names: unknown.sort() });
  for (const note of scan.notes) findings.push(note);
  // safetensors, TorchScript and files torch.load cannot read at all: weights_only does not apply to them.
  const notApplicable = weightsOnly.blockers.some((b) => b.kind === "format" || b.kind === "not-loadable");
  if (
    !weightsOnly.loads &&
    !notApplicable &&
    weightsOnly.blockers.length > 0 &&
    scan.verdict !== "dangerous"
  ) {
    const reasons = weightsOnly.blockers.map((b) =>
      b.kind === "global"
        ? `${b.name}${b.paths.length > 0 ? ` at ${b.paths.map(formatKeyPath).join(", ")}` : ""}`
        : b.kind === "opcodes"
          ? `pickle opcodes it does not implement (${b.opcodes.join(", ")})`
          : b.detail,
    );
    findings.push({ code: "weights-only-blocked", reasons, allow: weightsOnly.allow });
  }
  return findings;
}

/** The `ckpt.scan/1` report of a scan (`scanSource` with `deep`; `scanFile.ts` reads files by path). */
export function scanReportOf(file: string, scan: FileScan): ScanReport {
  const weightsOnly = judgeWeightsOnly(scan);
  return {
    schema: "ckpt.scan/1",
    file,
    format: scan.format,
    verdict: scan.verdict,
    globals: reportedGlobals(scan.globals),
    weightsOnly,
    findings: securityFindings(scan, weightsOnly).map(findingReport),
  };
}
