import { isPlainName, type TreeEntry } from "../../tree.js";
import { volume } from "../assemble.js";
import type { ShardedFinding } from "../findings.js";
import type { DcpStorageInfo } from "./metadata.js";
import { rankOfFile } from "./names.js";
import type { DcpCheckpoint } from "./open.js";
import { checkTiling } from "./tiling.js";

type Structure = Omit<DcpCheckpoint, "findings">;

/**
 * The completeness of a DCP checkpoint from its `.metadata` and the directory listing alone (no data file is
 * read): every named file present and long enough for its byte ranges, every chunk stored, and the chunks of
 * each tensor tiling it exactly.
 */
export function checkDcp(checkpoint: Structure, entries: readonly TreeEntry[]): ShardedFinding[] {
  const findings: ShardedFinding[] = [];
  const { metadata } = checkpoint;
  // Without `.metadata` a FileSystemWriter save has no tensors to check (`metadata-missing` says why); a
  // HuggingFaceStorageWriter save has none by design, its chunks read from the shards' headers.
  if (!metadata && checkpoint.writer === "filesystem") return findings;
  const used = new Set<DcpStorageInfo>();
  // The bytes each file must hold; which items a file holds is gathered only for a file found at fault.
  const needed = new Map<string, number>();
  const note = (fqn: string, info: DcpStorageInfo) => {
    used.add(info);
    const end = info.offset + info.length;
    const known = needed.get(info.relativePath);
    if (known === undefined || end > known) needed.set(info.relativePath, end);
    if (info.transformDescriptors && info.transformDescriptors.length > 0) {
      findings.push({
        code: "transform-unsupported",
        severity: "warning",
        fqn,
        descriptors: info.transformDescriptors,
      });
    }
  };

  for (const tensor of checkpoint.tensors) {
    tensor.chunks.forEach((chunk, i) => {
      if (chunk.storage) note(tensor.fqn, chunk.storage);
      // An empty chunk has no bytes to lose.
      else if (volume(chunk.sizes) > 0)
        findings.push({
          code: "chunk-storage-missing",
          severity: "error",
          fqn: tensor.fqn,
          chunk: i,
          offsets: chunk.offsets,
        });
    });
    for (const problem of checkTiling(tensor.shape, tensor.chunks)) {
      if (problem.kind === "out-of-bounds") {
        const chunk = tensor.chunks[problem.box] as (typeof tensor.chunks)[number];
        findings.push({
          code: "chunk-out-of-bounds",
          severity: "error",
          fqn: tensor.fqn,
          chunk: problem.box,
          offsets: chunk.offsets,
          sizes: chunk.sizes,
          shape: tensor.shape,
        });
      } else if (problem.kind === "overlap") {
        findings.push({ code: "chunk-overlap", severity: "error", fqn: tensor.fqn, chunks: problem.boxes });
      } else {
        findings.push({
          code: "chunk-gap",
          severity: "error",
          fqn: tensor.fqn,
          missingElements: problem.missingElements,
          totalElements: volume(tensor.shape),
        });
      }
    }
  }
  for (const item of checkpoint.bytesItems) {
    if (item.storage) note(item.fqn, item.storage);
    else
      findings.push({
        code: "chunk-storage-missing",
        severity: "error",
        fqn: item.fqn,
        chunk: null,
        offsets: null,
      });
  }
  for (const { index, info } of metadata?.storage ?? []) {
    if (!used.has(info))
      findings.push({
        code: "storage-undeclared",
        severity: "warning",
        fqn: index.fqn,
        offsets: index.offset,
      });
  }

  const sizes = new Map(entries.filter((e) => e.kind === "file").map((e) => [e.name, e.size]));
  const rankOf = (name: string) => rankOfFile(name);
  for (const [file, end] of needed) {
    if (!isPlainName(file)) {
      findings.push({ code: "path-outside", severity: "error", file, items: itemsIn(checkpoint, file) });
      continue;
    }
    const size = sizes.get(file);
    if (size === undefined) {
      findings.push({
        code: "file-missing",
        severity: "error",
        file,
        rank: rankOf(file),
        items: itemsIn(checkpoint, file),
      });
    } else if (size < end) {
      findings.push({
        code: "file-too-short",
        severity: "error",
        file,
        rank: rankOf(file),
        size,
        needed: end,
        items: itemsIn(checkpoint, file),
      });
    }
  }
  for (const file of checkpoint.files) {
    if (!needed.has(file.name))
      findings.push({ code: "file-unreferenced", severity: "info", file: file.name, rank: file.rank });
  }
  return findings;
}

/** The FQNs of the tensors and bytes items with bytes in `file`, in declaration order, each once. */
function itemsIn(checkpoint: Structure, file: string): string[] {
  const items = new Set<string>();
  for (const tensor of checkpoint.tensors)
    for (const chunk of tensor.chunks) if (chunk.storage?.relativePath === file) items.add(tensor.fqn);
  for (const item of checkpoint.bytesItems) if (item.storage?.relativePath === file) items.add(item.fqn);
  return [...items];
}
