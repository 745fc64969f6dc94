import {
  closeSync,
  cpSync,
  mkdtempSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CrcPlans } from "../src/inspect/runs/crcPlans.js";
import { localFiles } from "../src/inspect/runs/localFiles.js";
import { planRun } from "../src/inspect/runs/plan.js";
import { dcpCrcPlan } from "../src/inspect/runs/shardedIntegrity.js";
import { treeFiles } from "../src/inspect/treeFiles.js";
import { FileSource } from "../src/reader/fileSource.js";
import { NodeTree } from "../src/reader/nodeTree.js";
import { closeSharded, openSharded, RangeSource } from "../src/reader/sharded/index.js";
import { CountingTree } from "../src/reader/tree.js";
import { openZip } from "../src/reader/zip.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

// resume-plan and audit stream the chosen checkpoint through its CRCs before trusting it; a DCP checkpoint's
// data files are runs of torch.save archives, each record with its CRC-32, so a flipped bit in one tensor
// chunk makes that step directory corrupt (torch would load it silently) and the plan falls back.
const scratch = mkdtempSync(join(tmpdir(), "ckpt-dcp-verify-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Flips one bit of the item of `fqn` (a tensor's first chunk or a bytes item; the first stored tensor when
 * not given): inside its first non-empty storage record, or, with `where: "header"`, in its first byte.
 */
function flipItemBit(
  dir: string,
  fqn?: string,
  where: "storage" | "header" = "storage",
): { file: string; item: string } {
  const checkpoint = openSharded(localFiles().tree, dir);
  let at: number;
  let info: { relativePath: string; offset: number; length: number } | null | undefined;
  let item: string;
  try {
    if (checkpoint.kind !== "dcp") throw new Error(`${dir} is not DCP`);
    const tensor = checkpoint.tensors.find((t) => (fqn ? t.fqn === fqn : t.chunks[0]?.storage));
    const bytesItem = fqn ? checkpoint.bytesItems.find((b) => b.fqn === fqn) : undefined;
    info = bytesItem?.storage ?? tensor?.chunks[0]?.storage;
    item = bytesItem?.fqn ?? tensor?.fqn ?? "";
    if (!info) throw new Error(`no stored item ${fqn ?? ""} in ${dir}`);
    at = where === "header" ? info.offset : info.offset + firstStorageAt(join(dir, info.relativePath), info);
  } finally {
    closeSharded(checkpoint);
  }
  flipBit(join(dir, info.relativePath), at, 0x10);
  return { file: info.relativePath, item };
}

/**
 * Where the bytes of the first non-empty storage record of a torch zip lie: the file `path`, or its item at
 * `range` (a DCP data file's), relative to the item.
 */
function firstStorageAt(path: string, range?: { offset: number; length: number }): number {
  const source = FileSource.open(path);
  try {
    const zip = openZip(range ? new RangeSource(source, range.offset, range.length) : source);
    const storage = zip.entries.find((e) => /\/data\/\d+$/.test(e.name) && e.uncompressedSize > 0);
    if (!storage) throw new Error(`${path}: no storage record`);
    return zip.dataOffset(storage);
  } finally {
    source.close();
  }
}

/** XORs the byte at `at` of `path` with `mask`, in place (the copy under test, never a sample). */
function flipBit(path: string, at: number, mask: number): void {
  const fd = openSync(path, "r+");
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  byte[0] = (byte[0] as number) ^ mask;
  writeSync(fd, byte, 0, 1, at);
  closeSync(fd);
}

interface Plan {
  choice: { file: string } | null;
  candidates: Array<{
    file: string;
    status: string;
    verdict: string | null;
    problem?: { code: string; message: string };
  }>;
}

describe("verifying a sharded checkpoint's bytes", () => {
  it("a flipped bit in step-20's tensor chunk: step-20 is corrupt, the plan resumes from step-10", async () => {
    const run = join(scratch, "flipped");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    const healthy = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    expect(healthy.choice?.file).toBe("checkpoint/step-20");

    const { file, item: tensor } = flipItemBit(join(run, "checkpoint", "step-20"));
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    expect(plan.choice?.file).toBe("checkpoint/step-10");
    const step20 = plan.candidates.find((c) => c.file === "checkpoint/step-20");
    expect(step20?.status).toBe("corrupt");
    // torch loads it anyway, so what it holds is still said.
    expect(step20?.verdict).toBe("resumable");
    expect(step20?.problem?.code).toBe("zip-crc-mismatch");
    expect(step20?.problem?.message).toContain(`${file}: the item of ${tensor}`);

    // Structure checks alone cannot see it: without --verify, step-20 stays the choice.
    const unverified = JSON.parse((await ckpt("resume-plan", "--json", "--no-verify", run)).out) as Plan;
    expect(unverified.choice?.file).toBe("checkpoint/step-20");
  });

  it("every candidate with --verify-all; the healthy ones stay ok", async () => {
    const run = join(scratch, "older");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    flipItemBit(join(run, "checkpoint", "step-10"));
    const chosenOnly = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    expect(chosenOnly.candidates.find((c) => c.file === "checkpoint/step-10")?.status).toBe("ok");
    const all = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", run)).out) as Plan;
    expect(all.choice?.file).toBe("checkpoint/step-20");
    expect(all.candidates.find((c) => c.file === "checkpoint/step-20")?.status).toBe("ok");
    expect(all.candidates.find((c) => c.file === "checkpoint/step-10")?.status).toBe("corrupt");
  });

  it("an item laid out as an earlier one is checked by that layout's record places: its flip is found too", async () => {
    const run = join(scratch, "alike");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    // exp_avg's item has fc1.weight's layout (same length and headers, read earlier in the file).
    const { item } = flipItemBit(join(run, "checkpoint", "step-20"), "optimizer.state.fc1.weight.exp_avg");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    const step20 = plan.candidates.find((c) => c.file === "checkpoint/step-20");
    expect(step20?.status).toBe("corrupt");
    expect(step20?.problem?.message).toContain(`the item of ${item} at offset`);
  });

  it("a large item (a bytes item of ~230 KB) is opened as an archive and its records checked", async () => {
    const dir = join(scratch, "large");
    cpSync(join(SAMPLES_DIR, "sharded", "dcp", "writer_options", "large_bytes_item"), dir, {
      recursive: true,
    });
    const checkpoint = openSharded(localFiles().tree, dir);
    const large =
      checkpoint.kind === "dcp"
        ? checkpoint.bytesItems.find((b) => (b.storage?.length ?? 0) > 64 * 1024)
        : undefined;
    closeSharded(checkpoint);
    if (!large) throw new Error("no large bytes item");
    flipItemBit(dir, large.fqn);
    const plan = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", dir)).out) as Plan;
    expect(plan.candidates[0]?.status).toBe("corrupt");
    expect(plan.candidates[0]?.problem?.code).toBe("zip-crc-mismatch");
    expect(plan.candidates[0]?.problem?.message).toContain(`the item of ${large.fqn}`);
  });

  it("an item that is no longer an archive is damage torch.load trips over, not one it loads silently", async () => {
    const run = join(scratch, "header");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    flipItemBit(join(run, "checkpoint", "step-20"), "fc2.bias", "header");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    const step20 = plan.candidates.find((c) => c.file === "checkpoint/step-20");
    expect(step20?.status).toBe("corrupt");
    expect(step20?.problem?.code).toBe("zip-malformed");
    expect(plan.choice?.file).toBe("checkpoint/step-10");
  });

  it("an item written through a storage transform is not an archive until decoded: not called damaged", async () => {
    // The sample's transform passes bytes through; a real one (zstd) leaves no zip signature, as here.
    const dir = join(scratch, "transformed");
    cpSync(join(SAMPLES_DIR, "sharded", "dcp", "transform_descriptors"), dir, { recursive: true });
    flipItemBit(dir, "w", "header");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", dir)).out) as Plan;
    expect(plan.candidates[0]?.status).toBe("ok");
  });

  it("a Hugging Face index's .bin shards are torch zips: a flipped bit in one is named with its shard", async () => {
    const dir = join(scratch, "bin_shards");
    cpSync(join(SAMPLES_DIR, "sharded", "hf", "bin_shards"), dir, { recursive: true });
    const shard = "pytorch_model-00002-of-00003.bin";
    const at = firstStorageAt(join(dir, shard));
    const healthy = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", dir)).out) as Plan;
    expect(healthy.candidates[0]?.status).toBe("ok");
    flipBit(join(dir, shard), at, 0x01);
    const plan = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", dir)).out) as Plan;
    expect(plan.candidates[0]?.status).toBe("corrupt");
    expect(plan.candidates[0]?.problem?.message).toMatch(
      new RegExp(`^${shard.replaceAll(".", "\\.")}: record `),
    );
  });

  it("accelerate's FSDP directories are verified inside the checkpoint directory", async () => {
    const run = join(scratch, "accelerate");
    const source = join(SAMPLES_DIR, "sharded", "dcp", "accelerate");
    cpSync(source, run, { recursive: true });
    const model = join(run, "checkpoints", "checkpoint_0", "pytorch_model_fsdp_0");
    flipItemBit(model);
    const plan = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", run)).out) as Plan;
    const broken = plan.candidates.find((c) => c.file === "checkpoints/checkpoint_0");
    expect(broken?.status).toBe("corrupt");
    expect(broken?.problem?.message).toMatch(/^pytorch_model_fsdp_0: /);
  });
});

describe("resume-plan verifies the DCP step it chooses without decoding its .metadata again", () => {
  /** The plan of `run` through a tree that counts the bytes read of each file. */
  async function countedPlan(run: string) {
    const tree = new CountingTree(new NodeTree("/"));
    const plan = await planRun(run, { fs: treeFiles(tree), verify: "chosen" });
    const metadataReads = (step: string) =>
      // The tree is rooted at "/", and names its files without it.
      tree.bytesByFile().get(join(run, "checkpoint", step, ".metadata").slice(1)) ?? 0;
    return { plan, metadataReads };
  }

  it("each step's .metadata is read once; a flipped bit in the chosen step is still found", async () => {
    const run = join(scratch, "once");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    const size = (step: string) => statSync(join(run, "checkpoint", step, ".metadata")).size;
    const healthy = await countedPlan(run);
    expect(healthy.plan.choice?.file).toBe("checkpoint/step-20");
    expect(healthy.metadataReads("step-20")).toBe(size("step-20"));
    expect(healthy.metadataReads("step-10")).toBe(size("step-10"));

    const { file, item } = flipItemBit(join(run, "checkpoint", "step-20"));
    const flipped = await countedPlan(run);
    expect(flipped.plan.choice?.file).toBe("checkpoint/step-10");
    const step20 = flipped.plan.candidates.find((c) => c.file === "checkpoint/step-20");
    expect(step20?.status).toBe("corrupt");
    expect(step20?.problem?.message).toContain(`${file}: the item of ${item}`);
    expect(flipped.metadataReads("step-20")).toBe(size("step-20"));
  });

  it("a step whose files changed after it was judged is decoded again, not checked by a stale plan", async () => {
    const run = join(scratch, "changed");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    const step = join(run, "checkpoint", "step-20");
    const plans = new CrcPlans();
    const checkpoint = openSharded(localFiles().tree, step);
    if (checkpoint.kind !== "dcp") throw new Error("expected DCP");
    plans.keep(step, dcpCrcPlan(checkpoint));
    closeSharded(checkpoint);
    const metadata = join(step, ".metadata");
    const { mtime } = statSync(metadata);
    utimesSync(metadata, mtime, new Date(mtime.getTime() + 5000));
    expect(plans.take(step)).toBeUndefined();
    // Kept and unchanged, it is handed out once.
    const again = openSharded(localFiles().tree, step);
    if (again.kind !== "dcp") throw new Error("expected DCP");
    plans.keep(step, dcpCrcPlan(again));
    closeSharded(again);
    expect(plans.take(step)?.bytes).toBeGreaterThan(0);
    expect(plans.take(step)).toBeUndefined();
  });

  it("keeps the newest plans within its bound, and none larger than it", () => {
    const run = join(scratch, "bound");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    const planOf = (step: string) => {
      const checkpoint = openSharded(localFiles().tree, join(run, "checkpoint", step));
      if (checkpoint.kind !== "dcp") throw new Error("expected DCP");
      const plan = dcpCrcPlan(checkpoint);
      closeSharded(checkpoint);
      return plan;
    };
    const [ten, twenty] = [planOf("step-10"), planOf("step-20")];
    // Room for one: the second kept pushes the first out.
    const one = new CrcPlans(Math.max(ten.bytes, twenty.bytes));
    one.keep("step-10", ten);
    one.keep("step-20", twenty);
    expect(one.take("step-10")).toBeUndefined();
    expect(one.take("step-20")).toBe(twenty);
    const none = new CrcPlans(Math.min(ten.bytes, twenty.bytes) - 1);
    none.keep("step-10", ten);
    none.keep("step-20", twenty);
    expect([none.take("step-10"), none.take("step-20")]).toEqual([undefined, undefined]);
  });
});

describe("a Lightning sharded step keeps no CRC plan: what verifying it reads besides its items", () => {
  it("a flipped bit in its meta.pt is still found by the default verification of the chosen step", async () => {
    const run = join(scratch, "lightning-meta");
    cpSync(join(SAMPLES_DIR, "sharded", "dcp", "lightning"), run, { recursive: true });
    const step = join(run, "checkpoints", "epoch=0-step=4.ckpt");
    const healthy = await planRun(run, { fs: localFiles(), verify: "chosen" });
    expect(healthy.choice?.file).toBe("checkpoints/epoch=0-step=4.ckpt");
    // Inside meta.pt's one tensor record: the file still loads (torch checks no CRC); only verifying sees it.
    flipBit(join(step, "meta.pt"), firstStorageAt(join(step, "meta.pt")), 0x01);
    const plan = await planRun(run, { fs: localFiles(), verify: "chosen" });
    const candidate = plan.candidates.find((c) => c.file === "checkpoints/epoch=0-step=4.ckpt");
    expect(candidate?.status).toBe("corrupt");
    expect(candidate?.problem?.code).toBe("zip-crc-mismatch");
    expect(candidate?.problem?.message).toMatch(/^meta\.pt: /);
    // Without verifying, the step is judged whole.
    const unverified = await planRun(run, { fs: localFiles(), verify: "none" });
    expect(unverified.candidates.find((c) => c.file === candidate?.file)?.status).toBe("ok");
  });
});
