import { ReaderError } from "../../reader/errors.js";
import type { ShardedCheckpoint, ShardedFinding } from "../../reader/sharded/index.js";

/**
 * A sharded checkpoint that torch could not load whole is not converted at all: one error naming every
 * problem (the missing rank's file, the missing shard, the short file), so nothing partial is ever written.
 */

const list = (items: readonly string[], most = 3) =>
  items.length <= most
    ? items.join(", ")
    : `${items.slice(0, most).join(", ")} and ${items.length - most} more`;

const rankText = (rank: number | null) => (rank === null ? "" : ` (rank ${rank})`);

/** One error finding as a phrase; undefined for warnings and notes. */
export function damageText(finding: ShardedFinding): string | undefined {
  switch (finding.code) {
    case "metadata-missing":
      return `no .metadata beside the data files of rank${finding.ranks.length === 1 ? "" : "s"} ${finding.ranks.join(", ")}: the save did not finish${finding.partial.length > 0 ? ` (${finding.partial.join(", ")} is there)` : ""}`;
    case "file-missing":
      return `${finding.file}${rankText(finding.rank)} is missing, holding ${list(finding.items)}`;
    case "file-too-short":
      return `${finding.file}${rankText(finding.rank)} has ${finding.size} bytes where .metadata needs ${finding.needed}`;
    case "path-outside":
      return `.metadata names ${finding.file}, which is not a file of this directory`;
    case "chunk-storage-missing":
      return `a chunk of ${finding.fqn} has no storage entry in .metadata`;
    case "chunk-out-of-bounds":
      return `chunk ${finding.chunk} of ${finding.fqn} reaches outside its [${finding.shape.join(", ")}] shape`;
    case "chunk-overlap":
      return `chunks ${finding.chunks.join(" and ")} of ${finding.fqn} overlap`;
    case "chunk-gap":
      return `${finding.missingElements} of ${finding.totalElements} elements of ${finding.fqn} are in no chunk`;
    case "latest-target-missing":
      return `latest names ${finding.tag}, which is not there`;
    case "rank-file-missing":
      return `rank ${finding.rank}'s ${finding.role} file ${finding.file} is missing`;
    case "world-size-mismatch":
      return `${finding.expected} optimizer partitions expected, ${finding.found} found`;
    case "zero-layout-mismatch":
      return `group ${finding.group}'s partitions hold ${finding.available} elements where the parameters need ${finding.consumed}`;
    case "zero-state-unreadable":
      return `${finding.file} does not read as DeepSpeed writes it: ${finding.reason}`;
    case "shard-missing":
      return `shard ${finding.file} is missing, holding ${list(finding.tensors)}`;
    case "tensor-missing":
      return `the index puts ${finding.name} in ${finding.shard}, which does not hold it`;
    case "shard-unreadable":
      return `shard ${finding.file} does not open (${finding.error}: ${finding.message})`;
    default:
      return undefined;
  }
}

/** @throws ReaderError `sharded-incomplete` when any finding is an error. */
export function refuseDamaged(checkpoint: ShardedCheckpoint, path: string): void {
  const problems = checkpoint.findings.flatMap((f) => {
    if (f.severity !== "error") return [];
    const text = damageText(f);
    return text === undefined ? [] : [text];
  });
  if (problems.length === 0) return;
  throw new ReaderError(
    "sharded-incomplete",
    `${checkpoint.kind === "hf-index" ? "the sharded checkpoint" : `the ${checkpoint.kind === "dcp" ? "DCP" : "DeepSpeed"} checkpoint`} cannot be loaded whole: ${problems.join("; ")}`,
    { file: path },
  );
}
