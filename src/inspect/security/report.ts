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
  readonly globals: Array<
    Pick<ScannedGlobal, "module" | "name" | "class" | "reason" | "record" | "offset" | "opcode" | "dynamic">
  >;
  readonly weightsOnly: WeightsOnlyVerdict;
  readonly findings: FindingReport[];
  /** A file of a sharded checkpoint: how many items (torch.save archives) it holds, and what loads them. */
  readonly items?: number;
  readonly loadedBy?: string;
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
    globals: scan.globals.map(({ module, name, class: cls, reason, record, offset, opcode, dynamic }) => ({
      module,
      name,
      class: cls,
      reason,
      record,
      offset,
      opcode,
      ...(dynamic ? { dynamic } : {}),
    })),
    weightsOnly,
    findings: securityFindings(scan, weightsOnly).map(findingReport),
  };
}
