import { ReaderError } from "../../errors.js";
import type { ShardedFinding } from "../findings.js";
import { readDcpBytesItem } from "./items.js";
import type { DcpCheckpoint } from "./open.js";

/**
 * Each bytes item opened as `DefaultLoadPlanner.load_bytes` would (a judgement's read, not opening's: structure
 * reads stay on `.metadata`): `dcp.load` runs `torch.load` on every one, so
 * an item whose archive is damaged fails the whole load. Items are few (counters, train state, RNG, data
 * loader state) and opening one reads its directory and pickle, never a tensor's bytes. Items in files the
 * completeness checks already found missing or short are theirs.
 */
export function bytesItemFindings(checkpoint: DcpCheckpoint): ShardedFinding[] {
  const atFault = new Set(
    checkpoint.findings.flatMap((f) =>
      f.code === "file-missing" || f.code === "file-too-short" ? [f.file] : [],
    ),
  );
  const found: ShardedFinding[] = [];
  for (const item of checkpoint.bytesItems) {
    const info = item.storage;
    if (!info || atFault.has(info.relativePath) || (info.transformDescriptors?.length ?? 0) > 0) continue;
    try {
      readDcpBytesItem(checkpoint, item);
    } catch (error) {
      if (!(error instanceof ReaderError) || error.code === "storage-missing") continue;
      found.push({
        code: "item-unreadable",
        severity: "error",
        fqn: item.fqn,
        file: info.relativePath,
        detail: error.message,
      });
    }
  }
  return found;
}
