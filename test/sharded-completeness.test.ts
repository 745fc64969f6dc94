import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openShardedPath } from "../src/reader/nodeTree.js";
import { parsePickle } from "../src/reader/pickle/machine.js";
import { storageLookup } from "../src/reader/sharded/dcp/open.js";
import {
  closeSharded,
  decodeDcpMetadata,
  detectSharded,
  openSharded,
  type ShardedCheckpoint,
  type ShardedFinding,
} from "../src/reader/sharded/index.js";
import { assemble } from "./helpers/pickleWriter.js";
import { MemoryTree, memoryTreeOf, SHARDED_DIR } from "./helpers/sharded.js";

/**
 * The completeness checks on variants damaged in memory (the damaged samples on disk are in
 * sharded-agreement): each damage is reported as data, naming the file, rank, tensor or shard concerned.
 */

const sample = (...parts: string[]) => memoryTreeOf(join(SHARDED_DIR, ...parts));

function findings(checkpoint: ShardedCheckpoint): ShardedFinding[] {
  return [...checkpoint.findings];
}

function editJson(tree: MemoryTree, path: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(new TextDecoder().decode(tree.files.get(path)));
  edit(json);
  tree.files.set(path, new TextEncoder().encode(JSON.stringify(json)));
}

describe("DCP completeness", () => {
  it("a data file no .metadata names is reported with its rank", () => {
    const tree = sample("dcp", "fsdp2_2ranks");
    tree.files.set("__7_0.distcp", new Uint8Array(0));
    expect(findings(openSharded(tree))).toEqual([
      { code: "file-unreferenced", severity: "info", file: "__7_0.distcp", rank: 7 },
    ]);
  });

  it("a directory of data files and a half-written .metadata.tmp is an unfinished save", () => {
    const tree = sample("dcp", "fsdp2_2ranks");
    tree.files.set(".metadata.tmp", (tree.files.get(".metadata") as Uint8Array).subarray(0, 100));
    tree.files.delete(".metadata");
    const checkpoint = openSharded(tree);
    expect(checkpoint.kind).toBe("dcp");
    expect(findings(checkpoint)).toEqual([
      {
        code: "metadata-missing",
        severity: "error",
        dataFiles: ["__0_0.distcp", "__1_0.distcp"],
        ranks: [0, 1],
        partial: [".metadata.tmp"],
      },
    ]);
    expect(checkpoint.kind === "dcp" && checkpoint.tensors).toEqual([]);
  });

  it("every rank's missing file is named, with the items it held", () => {
    const tree = sample("dcp", "fsdp2_4ranks");
    tree.files.delete("__2_0.distcp");
    tree.files.delete("__3_0.distcp");
    const missing = findings(openSharded(tree)).filter((f) => f.code === "file-missing");
    expect(missing.map((f) => f.code === "file-missing" && [f.file, f.rank])).toEqual([
      ["__2_0.distcp", 2],
      ["__3_0.distcp", 3],
    ]);
    expect(missing[0]?.code === "file-missing" && missing[0].items).toContain("model.fc1.weight");
  });

  it("a value read from a missing or cut file fails with storage-missing, not garbage", () => {
    const tree = sample("dcp", "fsdp2_2ranks");
    const cut = tree.files.get("__1_0.distcp") as Uint8Array;
    tree.files.set("__1_0.distcp", cut.subarray(0, cut.length - 3000));
    const checkpoint = openSharded(tree);
    if (checkpoint.kind !== "dcp") throw new Error("not dcp");
    const short = findings(checkpoint).find((f) => f.code === "file-too-short");
    expect(short).toMatchObject({ file: "__1_0.distcp", rank: 1, size: cut.length - 3000 });
    const victim = checkpoint.tensors.find((t) =>
      t.chunks.some((c) => c.storage && c.storage.offset + c.storage.length > cut.length - 3000),
    );
    expect(victim).toBeDefined();
  });

  it(".metadata that is some other pickle is not DCP metadata", () => {
    const dict = assemble([
      { op: "emptyDict" },
      { op: "mark" },
      { op: "str", value: "a" },
      { op: "int", value: 1 },
      { op: "setitems" },
    ]);
    expect(() => decodeDcpMetadata(dict)).toThrow(expect.objectContaining({ code: "not-a-checkpoint" }));
    const tree = sample("dcp", "fsdp2_2ranks");
    tree.files.set(".metadata", assemble([{ op: "emptyList" }]));
    expect(() => openSharded(tree)).toThrow(expect.objectContaining({ code: "not-a-checkpoint" }));
  });

  it("decodes the torch 1.13 classes and the 2.x ones alike", () => {
    const old = decodeDcpMetadata(sample("dcp", "torch1_13").files.get(".metadata") as Uint8Array);
    const current = decodeDcpMetadata(sample("dcp", "fsdp2_2ranks").files.get(".metadata") as Uint8Array);
    expect(old.classModule).toBe("torch.distributed._shard.checkpoint.metadata");
    expect(current.classModule).toBe("torch.distributed.checkpoint.metadata");
    expect([old.version, current.version]).toEqual([null, "1.0.0"]);
    expect(old.items.get("w")).toMatchObject({
      kind: "tensor",
      properties: { dtype: "float32", layout: "strided", memoryFormat: "contiguous_format" },
    });
    // torch's pickle is plain data to the machine: it names classes, it never needs them
    expect(parsePickle(sample("dcp", "fsdp2_2ranks").files.get(".metadata") as Uint8Array).protocol).toBe(4);
  });
});

describe("DeepSpeed completeness", () => {
  it("no latest: the last tag is read, and the missing pointer is reported", () => {
    const tree = sample("deepspeed", "zero1");
    tree.files.delete("latest");
    const checkpoint = openSharded(tree);
    if (checkpoint.kind !== "deepspeed") throw new Error("not deepspeed");
    expect(checkpoint.tag).toBe("global_step4");
    expect(findings(checkpoint)).toEqual([
      { code: "latest-missing", severity: "warning", tags: ["global_step2", "global_step4"] },
    ]);
  });

  it("latest naming a tag that is not there", () => {
    const tree = sample("deepspeed", "zero1");
    tree.files.set("latest", new TextEncoder().encode("global_step9"));
    expect(findings(openSharded(tree))).toEqual([
      { code: "latest-target-missing", severity: "error", tag: "global_step9" },
    ]);
  });

  it("ZeRO-3: a rank's model states are needed too", () => {
    const tree = sample("deepspeed", "zero3_fp16");
    tree.files.delete("global_step3/zero_pp_rank_1_mp_rank_00_model_states.pt");
    expect(findings(openSharded(tree))).toEqual([
      {
        code: "rank-file-missing",
        severity: "error",
        file: "zero_pp_rank_1_mp_rank_00_model_states.pt",
        rank: 1,
        role: "model-states",
      },
    ]);
  });

  it("a tag directory opens by itself, and the older tag by name", () => {
    const tree = sample("deepspeed", "zero1");
    const tagDir = openSharded(tree, "global_step2");
    expect(tagDir.kind === "deepspeed" && [tagDir.tag, tagDir.globalSteps, tagDir.findings.length]).toEqual([
      "global_step2",
      2,
      0,
    ]);
  });
});

describe("Hugging Face index completeness", () => {
  const index = "model.safetensors.index.json";

  it("a shard tensor the index does not list, and a total_size that does not add up", () => {
    const tree = sample("hf", "safetensors_5digit");
    editJson(tree, index, (json) => {
      delete (json.weight_map as Record<string, string>)["model.norm.weight"];
      const metadata = json.metadata as Record<string, number>;
      metadata.total_size = (metadata.total_size as number) + 2;
    });
    const result = findings(openSharded(tree));
    expect(result).toContainEqual({
      code: "tensor-unlisted",
      severity: "warning",
      name: "model.norm.weight",
      shard: "model-00002-of-00003.safetensors",
    });
    expect(result).toContainEqual({
      code: "total-size-mismatch",
      severity: "warning",
      declared: 13474,
      actual: 13472,
    });
  });

  it("irregular and unreferenced shard names; names that climb out of the directory are never opened", () => {
    const tree = sample("hf", "safetensors_5digit");
    tree.files.set("model-00004-of-00003.safetensors", new Uint8Array(16));
    editJson(tree, index, (json) => {
      (json.weight_map as Record<string, string>)["model.norm.weight"] =
        "../model-00002-of-00003.safetensors";
    });
    const result = findings(openSharded(tree));
    expect(result).toContainEqual({
      code: "shard-unreferenced",
      severity: "info",
      file: "model-00004-of-00003.safetensors",
    });
    expect(result).toContainEqual(
      expect.objectContaining({ code: "shard-missing", file: "../model-00002-of-00003.safetensors" }),
    );
    expect(result).toContainEqual({
      code: "shard-name-irregular",
      severity: "info",
      file: "../model-00002-of-00003.safetensors",
    });
    expect(result).toContainEqual({
      code: "tensor-unlisted",
      severity: "warning",
      name: "model.norm.weight",
      shard: "model-00002-of-00003.safetensors",
    });
  });

  it("a shard that is not what its name says", () => {
    const tree = sample("hf", "safetensors_5digit");
    tree.files.set(
      "model-00003-of-00003.safetensors",
      new TextEncoder().encode("not a safetensors file at all"),
    );
    expect(findings(openSharded(tree))).toContainEqual(
      expect.objectContaining({ code: "shard-unreadable", file: "model-00003-of-00003.safetensors" }),
    );
  });

  it("the index file itself opens the checkpoint too", () => {
    const tree = sample("hf", "bin_shards");
    expect(detectSharded(tree, "pytorch_model.bin.index.json")).toBe("hf-index");
    const checkpoint = openSharded(tree, "pytorch_model.bin.index.json");
    expect(checkpoint.kind === "hf-index" && [checkpoint.format, checkpoint.tensors.length]).toEqual([
      "torch",
      21,
    ]);
    const onDisk = openShardedPath(join(SHARDED_DIR, "hf", "bin_shards", "pytorch_model.bin.index.json"));
    expect(onDisk.kind === "hf-index" && [onDisk.dir, onDisk.indexFile]).toEqual([
      "",
      "pytorch_model.bin.index.json",
    ]);
    closeSharded(onDisk);
    expect(() => openShardedPath(join(SHARDED_DIR, "nothing-here"))).toThrow(
      expect.objectContaining({ code: "file-not-found" }),
    );
  });
});

describe("what is not a sharded checkpoint", () => {
  it("is said so", () => {
    const tree = new MemoryTree({ "notes.txt": "hello", "sub/model.pt": new Uint8Array(4) });
    expect(detectSharded(tree)).toBeUndefined();
    expect(() => openSharded(tree)).toThrow(expect.objectContaining({ code: "not-a-checkpoint" }));
    expect(detectSharded(tree, "missing")).toBeUndefined();
  });

  it("names the unsharded weight file a directory holds, model first, as the next step", () => {
    const tree = new MemoryTree({
      "run/optimizer.pt": new Uint8Array(4),
      "run/model.safetensors": new Uint8Array(4),
      "run/trainer_state.json": "{}",
    });
    let error: unknown;
    try {
      openSharded(tree, "run");
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({
      code: "not-a-checkpoint",
      message: expect.stringContaining("it holds model.safetensors, optimizer.pt (not shards)"),
      nextStep: "pass the file itself: run/model.safetensors",
    });
    // Nothing to name: the general next step.
    const bare = new MemoryTree({ "run/notes.txt": "hello" });
    expect(() => openSharded(bare, "run")).toThrow(
      expect.objectContaining({ nextStep: expect.stringContaining("torch.save") }),
    );
  });
});

describe("a .metadata that is not a pickle", () => {
  it("is an error naming .metadata in its message, with the pickle machine's code", () => {
    const dir = join(SHARDED_DIR, "dcp", "fsdp2_2ranks");
    const damaged = memoryTreeOf(dir);
    damaged.files.set(
      ".metadata",
      new Uint8Array(300).map((_, i) => (i * 167 + 0xa7) & 0xff),
    );
    expect(() => openSharded(damaged, "")).toThrow(
      expect.objectContaining({
        code: expect.stringMatching(/^pickle-/),
        message: expect.stringMatching(/^\.metadata: /),
      }),
    );
  });
});

describe("finding a chunk's storage_data entry", () => {
  const entry = (fqn: string, offsets: number[] | null, file: string) => ({
    index: { fqn, offset: offsets, index: null },
    info: { relativePath: file, offset: 0, length: 1, transformDescriptors: null },
  });
  it.each([4, 40])("finds each of %i chunks, a later equal key winning as in the dict", (chunks) => {
    const storage = [
      ...Array.from({ length: chunks }, (_, r) => entry("w", [r, 0], `__${r}_0.distcp`)),
      entry("w", [1, 0], "later.distcp"),
      entry("b", null, "__0_0.distcp"),
    ];
    const find = storageLookup(storage);
    expect(find("w", [0, 0])?.relativePath).toBe("__0_0.distcp");
    expect(find("w", [chunks - 1, 0])?.relativePath).toBe(`__${chunks - 1}_0.distcp`);
    expect(find("w", [1, 0])?.relativePath).toBe("later.distcp");
    expect(find("w", [chunks, 0])).toBeNull();
    expect(find("w", [0])).toBeNull();
    expect(find("w", null)).toBeNull();
    expect(find("b", null)?.relativePath).toBe("__0_0.distcp");
    expect(find("missing", null)).toBeNull();
  });
});

/** A safetensors file with its `__metadata__` edited, the header padded with spaces to its old length. */
function editShardMetadata(tree: MemoryTree, path: string, edit: (metadata: Record<string, string>) => void) {
  const bytes = tree.files.get(path) as Uint8Array;
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  edit(header.__metadata__);
  const text = new TextEncoder().encode(JSON.stringify(header));
  expect(text.length).toBeLessThanOrEqual(n);
  const out = bytes.slice();
  out.fill(0x20, 8, 8 + n);
  out.set(text, 8);
  tree.files.set(path, out);
}

describe("DCP from HuggingFaceStorageWriter: completeness from the shards' headers", () => {
  const FILE = "shard-00002-model-00001-of-00002.safetensors";

  it("every shard read, the global shapes rebuilt, nothing missing", () => {
    const checkpoint = openSharded(sample("dcp", "hf_writer_2ranks"));
    if (checkpoint.kind !== "dcp") throw new Error("not DCP");
    expect(checkpoint.writer).toBe("huggingface");
    expect(checkpoint.files.map((f) => [f.rank, f.index])).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
    ]);
    expect(checkpoint.tensors.find((t) => t.fqn === "fc1.weight")?.shape).toEqual([8, 6]);
    expect(findings(checkpoint)).toEqual([]);
  });

  it("a shard cut short is shard-unreadable, and the gap it leaves is a gap (the file is there: not missing)", () => {
    const tree = sample("dcp", "hf_writer_2ranks");
    const first = "shard-00001-model-00001-of-00002.safetensors";
    tree.files.set(first, (tree.files.get(first) as Uint8Array).subarray(0, 300));
    const found = findings(openSharded(tree));
    expect(found[0]).toMatchObject({ code: "shard-unreadable", file: first, error: "safetensors-truncated" });
    expect(found).toContainEqual(expect.objectContaining({ code: "chunk-gap", fqn: "fc1.weight" }));
    expect(found.some((f) => f.code === "file-missing")).toBe(false);
  });

  it("a lost shard is named with its rank from the gap it leaves", () => {
    const tree = sample("dcp", "hf_writer_2ranks");
    const first = "shard-00001-model-00001-of-00002.safetensors";
    tree.files.delete(first);
    const found = findings(openSharded(tree));
    const missing = found[0];
    if (missing?.code !== "file-missing") throw new Error(`first finding: ${missing?.code}`);
    expect(missing).toMatchObject({ file: first, rank: 0 });
    expect(missing.items).toContain("fc1.weight");
  });

  it("a tensor DCP_SHARDING_INFO does not place is the shard's error (torch's read_metadata fails on it)", () => {
    const tree = sample("dcp", "hf_writer_2ranks");
    editShardMetadata(tree, FILE, (metadata) => {
      const info = JSON.parse(metadata.DCP_SHARDING_INFO as string);
      delete info["fc1.weight"];
      metadata.DCP_SHARDING_INFO = JSON.stringify(info);
    });
    const found = findings(openSharded(tree));
    expect(found[0]).toMatchObject({ code: "shard-unreadable", file: FILE, error: "safetensors-malformed" });
    const unreadable = found[0];
    if (unreadable?.code !== "shard-unreadable") throw new Error(`first finding: ${unreadable?.code}`);
    expect(unreadable.message).toContain("no saved_offsets for fc1.weight");
  });

  it("a shard whose chunk overlaps another rank's is an overlap, not a larger tensor", () => {
    const tree = sample("dcp", "hf_writer_2ranks");
    editShardMetadata(tree, FILE, (metadata) => {
      const info = JSON.parse(metadata.DCP_SHARDING_INFO as string);
      info["fc1.weight"].saved_offsets = [2, 0];
      metadata.DCP_SHARDING_INFO = JSON.stringify(info);
    });
    const found = findings(openSharded(tree));
    expect(found).toContainEqual(expect.objectContaining({ code: "chunk-overlap", fqn: "fc1.weight" }));
  });

  it("is told from a directory of unrelated safetensors files by the writer's names", () => {
    const tree = sample("dcp", "hf_writer_2ranks");
    expect(detectSharded(tree)).toBe("dcp");
    for (const name of [...tree.files.keys()]) {
      tree.files.set(name.replace(/^shard-/, "part-"), tree.files.get(name) as Uint8Array);
      tree.files.delete(name);
    }
    expect(detectSharded(tree)).toBeUndefined();
  });
});
