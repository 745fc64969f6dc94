import type { ShardedFinding } from "../../reader/sharded/index.js";

/**
 * Sharded completeness findings in words: what is wrong and where, named the way the files are (rank, shard,
 * tensor), so the sentence says which node to look at. The reader reports them as data; this is the one place
 * they are worded, for every command.
 */

const rankOf = (rank: number | null) => (rank === null ? "" : ` (rank ${rank})`);

function some(names: readonly string[], max = 3): string {
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

export function shardedFindingMessage(finding: ShardedFinding): string {
  switch (finding.code) {
    case "metadata-missing":
      return `no .metadata beside ${finding.dataFiles.length} data file(s): the save was cut before the coordinator finished${finding.partial.length > 0 ? ` (left: ${some(finding.partial)})` : ""}`;
    case "file-missing":
      return `${finding.file}${rankOf(finding.rank)} is missing; it holds ${some(finding.items)}`;
    case "file-too-short":
      return `${finding.file}${rankOf(finding.rank)} has ${finding.size} bytes where .metadata needs ${finding.needed} (truncated); it holds ${some(finding.items)}`;
    case "path-outside":
      return `.metadata names ${finding.file}, which is not a file of this directory`;
    case "chunk-storage-missing":
      return `${finding.fqn}: ${finding.chunk === null ? "the item" : `chunk ${finding.chunk}`} has no storage_data entry`;
    case "chunk-out-of-bounds":
      return `${finding.fqn}: chunk ${finding.chunk} at [${finding.offsets.join(", ")}] of [${finding.sizes.join(", ")}] reaches outside [${finding.shape.join(", ")}]`;
    case "chunk-overlap":
      return `${finding.fqn}: chunks ${finding.chunks[0]} and ${finding.chunks[1]} overlap`;
    case "chunk-gap":
      return `${finding.fqn}: ${finding.missingElements} of ${finding.totalElements} elements are in no chunk`;
    case "storage-undeclared":
      return `${finding.fqn}: a storage_data entry no chunk uses`;
    case "transform-unsupported":
      return `${finding.fqn}: written through ${finding.descriptors.join(", ")}; ckpt reads its structure, not its values`;
    case "file-unreferenced":
      return `${finding.file}${rankOf(finding.rank)} is not named in .metadata`;
    case "latest-missing":
      return `no latest file: load_checkpoint(dir) without a tag finds nothing (tags: ${some(finding.tags)})`;
    case "latest-target-missing":
      return `latest names ${finding.tag}, which is not there`;
    case "rank-file-missing":
      return `${finding.file} (rank ${finding.rank}'s ${finding.role === "optim-states" ? "optimizer partition" : "model states"}) is missing`;
    case "item-unreadable":
      return `the bytes item ${finding.fqn} in ${finding.file} cannot be read (${finding.detail}): dcp.load's torch.load of it fails`;
    case "model-parallel-ranks":
      return `model states of ${finding.files.length} model-parallel ranks (${some(finding.files)}): the tensors shown are rank 0's slice of the tensor-parallel layers`;
    case "world-size-mismatch":
      return `${finding.found} optimizer partition file(s) where the checkpoint was saved by ${finding.expected} ranks`;
    case "zero-layout-mismatch":
      return `group ${finding.group}: the fp32 partitions hold ${finding.available} elements where param_shapes needs ${finding.consumed}`;
    case "zero-state-unreadable":
      return `${finding.file}: ${finding.reason}`;
    case "shard-missing":
      return `${finding.file} is missing; the index puts ${finding.tensors.length} tensor(s) in it (${some(finding.tensors)})`;
    case "tensor-missing":
      return `the index puts ${finding.name} in ${finding.shard}, which does not hold it`;
    case "tensor-unlisted":
      return `${finding.shard} holds ${finding.name}, which the index does not list: loaders never see it`;
    case "total-size-mismatch":
      return `metadata.total_size is ${finding.declared} but the shards' tensors hold ${finding.actual} bytes`;
    case "shard-name-irregular":
      return `${finding.file} is not named <stem>-NNNNN-of-NNNNN`;
    case "shard-unreadable":
      return `${finding.file}: ${finding.message}`;
    case "shard-unreferenced":
      return `${finding.file} looks like a shard of this index but the index never names it`;
  }
}

/** The first finding that stops the checkpoint from loading whole, if any. */
export function blockingFinding(findings: readonly ShardedFinding[]): ShardedFinding | undefined {
  return findings.find((f) => f.severity === "error");
}
