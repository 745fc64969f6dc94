import {
  bytesItemFindings,
  type ShardedCheckpoint,
  type ShardedFinding,
} from "../../reader/sharded/index.js";

/**
 * Everything that stops a sharded checkpoint from loading whole, as one list for every judgement (inspect,
 * resume-plan, audit, convert): the structure's findings from opening (`.metadata`, indexes, the listing)
 * and, for DCP, the bytes items opened as `dcp.load` opens them. Worked out once per checkpoint.
 */
const judged = new WeakMap<ShardedCheckpoint, readonly ShardedFinding[]>();

export function completenessFindings(checkpoint: ShardedCheckpoint): readonly ShardedFinding[] {
  let findings = judged.get(checkpoint);
  if (!findings) {
    findings =
      checkpoint.kind === "dcp"
        ? [...checkpoint.findings, ...bytesItemFindings(checkpoint)]
        : checkpoint.findings;
    judged.set(checkpoint, findings);
  }
  return findings;
}
