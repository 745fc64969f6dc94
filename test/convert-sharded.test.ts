import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findTensors } from "../src/inspect/walk.js";
import { hasTensors } from "../src/reader/checkpoint.js";
import { openCheckpoint } from "../src/reader/open.js";
import { tensorBytes } from "../src/reader/tensorData.js";
import { ckpt } from "./helpers/cli.js";
import { findShardedTruths, SHARDED_DIR } from "./helpers/sharded.js";

/**
 * `ckpt convert` from sharded checkpoints without Python: every sample's consolidated tensors, written to
 * safetensors, hash to what torch's own consolidation gave (`.truth.json`: dcp_to_torch_save, zero_to_fp32's
 * logic, the shards' loaders); the default takes the model keyed as its loader expects; damaged samples are
 * refused with the missing rank or shard named and nothing written. The torch suite loads the same outputs.
 */
const scratch = mkdtempSync(join(tmpdir(), "ckpt-convert-sharded-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const out = (name: string) => join(scratch, name);

interface Truth {
  kind: string;
  tensors: Array<{
    name: string;
    sha256: string | null;
    shape: number[];
    dtype: string;
    source?: string;
    target?: string;
  }>;
  damage?: { kind: string };
  /** DCP bytes items, with the tensors torch.load finds inside each (hashed by torch). */
  bytes?: Array<{
    name: string;
    loaded: { tensors?: Array<{ path: Array<string | number>; sha256: string }> };
  }>;
}

/** Tensors inside bytes items, under the names convert gives them: the item, then the path below it. */
function nestedTruth(truth: Truth): Array<{ name: string; sha256: string }> {
  return (truth.bytes ?? []).flatMap((item) =>
    (item.loaded.tensors ?? []).map((t) => ({ name: [item.name, ...t.path].join("."), sha256: t.sha256 })),
  );
}

async function convert(...args: string[]) {
  const run = await ckpt("convert", ...args, "--json");
  return { ...run, json: JSON.parse(run.out) };
}

function digests(path: string): Map<string, string> {
  const checkpoint = openCheckpoint(path);
  try {
    if (!hasTensors(checkpoint) || checkpoint.format !== "safetensors")
      throw new Error(`${path}: not safetensors`);
    const result = new Map<string, string>();
    for (const { path: at, tensor } of findTensors(checkpoint.root).tensors) {
      const hash = createHash("sha256");
      for (const chunk of tensorBytes(checkpoint, tensor)) hash.update(chunk);
      result.set(at.join("."), hash.digest("hex"));
    }
    return result;
  } finally {
    checkpoint.source.close();
  }
}

/** The file's `__metadata__`, aliases included. */
function headerMetadata(path: string): Record<string, string> {
  const text = readFileSync(path);
  const length = Number(text.readBigUInt64LE(0));
  return JSON.parse(text.subarray(8, 8 + length).toString("utf8")).__metadata__ ?? {};
}

const samples = findShardedTruths<Truth>();
const whole = samples.filter(
  (s) => !s.truth.damage && !s.name.includes("transform_descriptors") && s.truth.tensors.length > 0,
);
// Samples damaged so that the checkpoint is incomplete; dcp_malicious_bytes_item is whole (its damage is a
// pickled bytes item, for scan), so convert writes its tensors and leaves the bytes item out.
const SECURITY_DAMAGE = new Set(["malicious-bytes-item"]);
const damaged = samples.filter((s) => s.truth.damage && !SECURITY_DAMAGE.has(s.truth.damage.kind));

describe("ckpt convert from sharded checkpoints writes torch's consolidation", () => {
  it("finds the samples", () => {
    expect(whole.length).toBeGreaterThanOrEqual(15);
    expect(damaged.length).toBe(7);
  });

  for (const { dir, name, truth } of whole) {
    it(`${name}: --all, every tensor's bytes`, async () => {
      const target = out(`${name.replaceAll("/", "_")}.safetensors`);
      const run = await convert(dir, "-o", target, "--all");
      expect(run.code, run.out).toBe(0);
      expect(run.json.source.format).toBe(truth.kind);
      const written = digests(target);
      const metadata = headerMetadata(target);
      for (const tensor of truth.tensors) {
        if (tensor.sha256 === null) continue;
        // A tied name is written once, under the first name in sorted order; the other is an alias.
        const stored = written.has(tensor.name) ? tensor.name : metadata[tensor.name];
        expect(stored, `${name}: ${tensor.name}`).toBeDefined();
        expect(written.get(stored as string), `${name}: ${tensor.name}`).toBe(tensor.sha256);
      }
      const nested = nestedTruth(truth);
      for (const tensor of nested)
        expect(written.get(tensor.name), `${name}: ${tensor.name}`).toBe(tensor.sha256);
      expect(written.size + run.json.aliases.length).toBe(truth.tensors.length + nested.length);
    });
  }
});

describe("what goes in by default", () => {
  const dcp = (...parts: string[]) => join(SHARDED_DIR, "dcp", ...parts);

  it("FSDP2: the model subtree without its prefix; the optimizer left out, and said so", async () => {
    const run = await convert(dcp("fsdp2_2ranks"), "-o", out("fsdp2.safetensors"));
    expect(run.code).toBe(0);
    expect(run.json.taken).toBe("model (model)");
    const names = [...digests(out("fsdp2.safetensors")).keys()];
    expect(names).toContain("fc1.weight");
    expect(names.every((k) => !k.startsWith("model."))).toBe(true);
    expect(run.json.leftOut).toEqual([
      expect.objectContaining({ part: "optimizer", key: "optimizer", tensors: 24 }),
    ]);
    expect(run.json.valuesLeftOut).toContain("optimizer.param_groups.0.lr");
  });

  it("Lightning: state_dict's keys, as LightningModule.load_state_dict takes them", async () => {
    const run = await convert(
      dcp("lightning", "checkpoints", "epoch=0-step=4.ckpt"),
      "-o",
      out("pl.safetensors"),
    );
    expect(run.code).toBe(0);
    const names = [...digests(out("pl.safetensors")).keys()];
    expect(names.every((n) => n.startsWith("net."))).toBe(true);
    expect(run.json.leftOut.map((p: { key: string }) => p.key)).toEqual(["optimizer_0"]);
  });

  it("torchtitan: the model's top-level keys; optimizer and train_state left out", async () => {
    const run = await convert(dcp("torchtitan", "checkpoint", "step-20"), "-o", out("titan.safetensors"));
    expect(run.code).toBe(0);
    expect(run.json.tensorsWritten).toBe(9);
    expect(run.json.leftOut.map((p: { key: string }) => p.key).sort()).toEqual(["optimizer", "train_state"]);
  });

  it("--select takes another part, --metadata carries a DCP value", async () => {
    const run = await convert(
      dcp("fsdp2_2ranks"),
      "-o",
      out("optim.safetensors"),
      "--select",
      "optimizer",
      "--metadata",
      "train_state.step",
    );
    expect(run.code, run.out).toBe(0);
    expect(run.json.tensorsWritten).toBe(24);
    expect([...digests(out("optim.safetensors")).keys()].every((k) => k.startsWith("state."))).toBe(true);
    expect(run.json.metadata["train_state.step"]).toMatch(/^\d+$/);
  });

  it("DeepSpeed: the fp32 weights, a tied name written once, the Adam states left out", async () => {
    const run = await convert(join(SHARDED_DIR, "deepspeed", "zero1"), "-o", out("ds.safetensors"));
    expect(run.code).toBe(0);
    expect(run.json.aliases).toEqual([{ name: "emb.weight", keptAs: "decoder.weight" }]);
    expect(headerMetadata(out("ds.safetensors"))["emb.weight"]).toBe("decoder.weight");
    expect(run.json.leftOut).toEqual([expect.objectContaining({ part: "optimizer" })]);
    const refused = await convert(
      join(SHARDED_DIR, "deepspeed", "zero1"),
      "-o",
      out("x.safetensors"),
      "--select",
      "x",
    );
    expect(refused.json.code).toBe("convert-refused");
  });

  it("into a torch state dict: the same bytes, the tied name sharing its storage", async () => {
    const target = out("ds.pth");
    const run = await convert(join(SHARDED_DIR, "deepspeed", "zero1"), "-o", target);
    expect(run.code, run.out).toBe(0);
    const checkpoint = openCheckpoint(target);
    try {
      if (!hasTensors(checkpoint)) throw new Error("no tensors");
      const found = findTensors(checkpoint.root).tensors;
      const storage = (name: string) => found.find((t) => t.path.join(".") === name)?.tensor.storage?.key;
      expect(found.length).toBe(10);
      expect(storage("emb.weight")).toBeDefined();
      expect(storage("emb.weight")).toBe(storage("decoder.weight"));
    } finally {
      checkpoint.source.close();
    }
  });

  it("Hugging Face shards to shards: the index transformers reads, from a directory or its index file", async () => {
    const directory = join(scratch, "hf-out/");
    const index = join(SHARDED_DIR, "hf", "bin_shards", "pytorch_model.bin.index.json");
    const run = await convert(index, "-o", directory, "--max-shard-size", "10KB");
    expect(run.code, run.out).toBe(0);
    const files = readdirSync(directory).sort();
    expect(files).toContain("model.safetensors.index.json");
    expect(files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length).toBeGreaterThan(1);
    const map = JSON.parse(readFileSync(join(directory, "model.safetensors.index.json"), "utf8"));
    expect(Object.keys(map.weight_map).length).toBe(21);
  });
});

describe("refusals", () => {
  for (const { dir, name, truth } of damaged) {
    it(`${name} (${truth.damage?.kind}): refused, the damage named, nothing written`, async () => {
      const target = out(`${name.replaceAll("/", "_")}.safetensors`);
      const run = await convert(dir, "-o", target);
      expect(run.code).toBe(2);
      expect(run.json.code).toBe("sharded-incomplete");
      expect(run.json.message).toMatch(/rank \d|shard |\.metadata|the index puts/);
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(scratch).some((f) => f.includes("ckpt-tmp"))).toBe(false);
    });
  }

  it("a missing rank's file is named with its rank", async () => {
    const run = await convert(
      join(SHARDED_DIR, "damaged", "dcp_missing_rank_file"),
      "-o",
      out("m.safetensors"),
    );
    expect(run.json.message).toContain("__1_0.distcp (rank 1) is missing");
  });

  it("a destination inside the source directory is refused", async () => {
    const source = join(SHARDED_DIR, "dcp", "fsdp2_2ranks");
    for (const target of [join(source, "model.safetensors"), join(source, "out/"), source]) {
      const run = await convert(source, "-o", target);
      expect(run.json.code, target).toBe("output-inside-source");
    }
    expect(readdirSync(source).sort()).toEqual([".metadata", "__0_0.distcp", "__1_0.distcp"]);
  });

  it("a DeepSpeed tag directory: nothing may go into its save directory either", async () => {
    const save = join(SHARDED_DIR, "deepspeed", "zero1");
    const target = join(save, "fp32.safetensors");
    const run = await convert(join(save, "global_step4"), "-o", target);
    const written = existsSync(target);
    rmSync(target, { force: true }); // never leave a file in the samples, even when the refusal is broken
    expect(run.json.code).toBe("output-inside-source");
    expect(written).toBe(false);
  });

  it("items written through a stream transform are refused, not guessed", async () => {
    const target = out("transform.safetensors");
    const run = await convert(join(SHARDED_DIR, "dcp", "transform_descriptors"), "-o", target);
    expect(run.json.code).toBe("unsupported-format");
    expect(existsSync(target)).toBe(false);
  });
});
