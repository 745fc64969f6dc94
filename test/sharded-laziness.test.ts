import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NodeTree } from "../src/reader/nodeTree.js";
import {
  CountingTree,
  closeSharded,
  type DcpCheckpoint,
  logicalTensorBytes,
  openSharded,
  type ShardedCheckpoint,
  shardedTensors,
} from "../src/reader/sharded/index.js";
import { findShardedTruths, hashLogical, SHARDED_DIR } from "./helpers/sharded.js";

/**
 * Structure reads touch only what describes the checkpoint: DCP's `.metadata`, an index and its shards'
 * headers, DeepSpeed's pickles and zip directories. Tensor bytes are read only when a tensor is asked for,
 * and then only that tensor's pieces.
 */

function openCounted(dir: string): { tree: CountingTree; checkpoint: ShardedCheckpoint } {
  const tree = new CountingTree(new NodeTree(dir));
  return { tree, checkpoint: openSharded(tree) };
}

const healthyDcp = findShardedTruths<{ kind: string; damage?: unknown }>().filter(
  (s) => s.truth.kind === "dcp" && !s.truth.damage,
);
/** FileSystemWriter saves (`.metadata`); HuggingFaceStorageWriter's have safetensors shards and no `.metadata`. */
const dcpSamples = healthyDcp.filter((s) => existsSync(join(s.dir, ".metadata")));
const hfWriterSamples = healthyDcp.filter((s) => !existsSync(join(s.dir, ".metadata")));

/** The DCP sample with the most bytes on disk: the one whose laziness says the most. */
function biggestDcp(): string {
  const total = (dir: string) =>
    (openSharded(new NodeTree(dir)) as DcpCheckpoint).files.reduce((sum, f) => sum + f.size, 0) +
    statSync(join(dir, ".metadata")).size;
  return dcpSamples.map((s) => s.dir).sort((a, b) => total(b) - total(a))[0] as string;
}

describe("sharded structure is read lazily", () => {
  it("DCP: opening reads .metadata once, whole, and no data file", () => {
    for (const { dir, name } of dcpSamples) {
      const { tree, checkpoint } = openCounted(dir);
      const metadataSize = statSync(join(dir, ".metadata")).size;
      expect([...tree.bytesByFile()], name).toEqual([[".metadata", metadataSize]]);
      expect(checkpoint.kind).toBe("dcp");
      closeSharded(checkpoint);
    }
  });

  it("DCP: the biggest sample's structure costs only its .metadata; one tensor costs its chunks", () => {
    const dir = biggestDcp();
    const { tree, checkpoint } = openCounted(dir);
    const structure = tree.bytesRead;
    const data = (checkpoint as DcpCheckpoint).files.reduce((sum, f) => sum + f.size, 0);
    expect(structure).toBe(statSync(join(dir, ".metadata")).size);
    expect(data).toBeGreaterThan(5 * structure);
    // One tensor: its chunks' zip directories and records, a small part of the data files.
    const tensor = (checkpoint as DcpCheckpoint).tensors.find(
      (t) => t.chunks.length > 1,
    ) as DcpCheckpoint["tensors"][number];
    hashLogical(checkpoint, tensor.fqn);
    const chunkBytes = tensor.chunks.reduce((sum, c) => sum + (c.storage?.length ?? 0), 0);
    // Each chunk's archive read once: its head, end records and central directory, pickle and the record.
    expect(tree.bytesRead - structure).toBeLessThanOrEqual(2 * chunkBytes + 1024 * tensor.chunks.length);
    expect(tree.bytesRead - structure).toBeLessThan(data / 4);
    closeSharded(checkpoint);
  });

  it("DCP from HuggingFaceStorageWriter: each shard's 8 + N header bytes, nothing more", () => {
    expect(hfWriterSamples.length).toBeGreaterThanOrEqual(2);
    for (const { dir, name } of hfWriterSamples) {
      const { tree, checkpoint } = openCounted(dir);
      if (checkpoint.kind !== "dcp") throw new Error(`${name}: not DCP`);
      expect(checkpoint.writer, name).toBe("huggingface");
      const expected = checkpoint.files.map((f) => {
        const head = readFileSync(join(dir, f.name)).subarray(0, 8);
        return [f.name, 8 + Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true))];
      });
      expect([...tree.bytesByFile()].sort(), name).toEqual(expected.sort());
      closeSharded(checkpoint);
    }
  });

  it("HF safetensors: the index and each shard's 8 + N header bytes, nothing more", () => {
    const dir = join(SHARDED_DIR, "hf", "safetensors_5digit");
    const { tree, checkpoint } = openCounted(dir);
    if (checkpoint.kind !== "hf-index") throw new Error("not an index");
    const reads = tree.bytesByFile();
    expect(reads.get(checkpoint.indexFile)).toBe(statSync(join(dir, checkpoint.indexFile)).size);
    for (const shard of checkpoint.shards) {
      const header = readFileSync(join(dir, shard.file)).readUInt32LE(0);
      // The format sniff (the first 512 bytes), then the 8-byte length and exactly the JSON header.
      expect(reads.get(shard.file), shard.file).toBe(Math.min(512, shard.size) + 8 + header);
    }
    closeSharded(checkpoint);
  });

  it("tensor bytes are read only when asked for, and then only that tensor's", () => {
    for (const sample of ["deepspeed/zero3_fp16", "hf/bin_shards", "dcp/fsdp2_2ranks"]) {
      const { tree, checkpoint } = openCounted(join(SHARDED_DIR, sample));
      const before = tree.bytesRead;
      const tensor = shardedTensors(checkpoint).find((t) => t.shape.length === 2) as { name: string };
      const { bytes } = hashLogical(checkpoint, tensor.name);
      const spent = tree.bytesRead - before;
      if (checkpoint.kind === "dcp") {
        // Each chunk is a small torch.save archive of its own: its end records, pickle and record, once.
        const chunks = checkpoint.tensors.find((t) => t.fqn === tensor.name)?.chunks ?? [];
        const items = chunks.reduce((sum, c) => sum + (c.storage?.length ?? 0), 0);
        expect(spent, sample).toBeLessThanOrEqual(2 * items + 1024 * chunks.length);
      } else {
        // The files are open and parsed: the tensor's elements, and each record's local header (where the
        // zip says its data starts) the first time it is read.
        expect(spent, sample).toBeGreaterThanOrEqual(bytes);
        expect(spent, sample).toBeLessThanOrEqual(bytes + 2 * 128);
      }
      closeSharded(checkpoint);
    }
  });

  it("DCP, every tensor in bulk: small items read in blocks, a few reads a file, the same bytes as exact reads", () => {
    const dir = biggestDcp();
    const exact = openCounted(dir);
    const bulk = openCounted(dir);
    const tensors = (exact.checkpoint as DcpCheckpoint).tensors;
    const chunks = tensors.reduce((sum, t) => sum + t.chunks.length, 0);
    const digest = (checkpoint: ShardedCheckpoint, fqn: string, inBulk: boolean) => {
      const hash = createHash("sha256");
      for (const piece of logicalTensorBytes(checkpoint, fqn, { inBulk })) hash.update(piece);
      return hash.digest("hex");
    };
    const readsBefore = { exact: exact.tree.readCount, bulk: bulk.tree.readCount };
    for (const { fqn } of tensors)
      expect(digest(bulk.checkpoint, fqn, true), fqn).toBe(digest(exact.checkpoint, fqn, false));
    const exactReads = exact.tree.readCount - readsBefore.exact;
    const bulkReads = bulk.tree.readCount - readsBefore.bulk;
    expect(exactReads).toBeGreaterThanOrEqual(chunks);
    const files = (bulk.checkpoint as DcpCheckpoint).files;
    // Items of a few kilobytes: each file in 256 KiB blocks, plus the first archive opened per layout.
    const blocks = files.reduce((sum, f) => sum + Math.ceil(f.size / (256 * 1024)), 0);
    expect(bulkReads).toBeLessThanOrEqual(blocks + 4 * files.length);
    expect(bulkReads).toBeLessThan(exactReads / 4);
    closeSharded(exact.checkpoint);
    closeSharded(bulk.checkpoint);
  });
});
