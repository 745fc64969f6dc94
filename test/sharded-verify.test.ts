import { closeSync, cpSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { localFiles } from "../src/inspect/runs/localFiles.js";
import { FileSource } from "../src/reader/fileSource.js";
import { closeSharded, openSharded, RangeSource } from "../src/reader/sharded/index.js";
import { openZip } from "../src/reader/zip.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

// resume-plan and audit stream the chosen checkpoint through its CRCs before trusting it; a DCP checkpoint's
// data files are runs of torch.save archives, each record with its CRC-32, so a flipped bit in one tensor
// chunk makes that step directory corrupt (torch would load it silently) and the plan falls back.
const scratch = mkdtempSync(join(tmpdir(), "ckpt-dcp-verify-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Flips one bit inside the storage record of `fqn`'s first chunk, or of the first tensor with one. */
function flipStorageBit(dir: string, fqn?: string): { file: string; tensor: string } {
  const checkpoint = openSharded(localFiles().tree, dir);
  let at: number;
  let file: string;
  let tensor: string;
  try {
    if (checkpoint.kind !== "dcp") throw new Error(`${dir} is not DCP`);
    const chosen = checkpoint.tensors.find((t) => (fqn ? t.fqn === fqn : t.chunks[0]?.storage));
    const info = chosen?.chunks[0]?.storage;
    if (!chosen || !info) throw new Error(`no stored chunk in ${dir}`);
    const source = FileSource.open(join(dir, info.relativePath));
    try {
      const zip = openZip(new RangeSource(source, info.offset, info.length));
      const storage = zip.entries.find((e) => /\/data\/\d+$/.test(e.name));
      if (!storage) throw new Error("no storage record");
      at = info.offset + zip.dataOffset(storage);
    } finally {
      source.close();
    }
    file = info.relativePath;
    tensor = chosen.fqn;
  } finally {
    closeSharded(checkpoint);
  }
  flipBit(join(dir, file), at, 0x10);
  return { file, tensor };
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

    const { file, tensor } = flipStorageBit(join(run, "checkpoint", "step-20"));
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
    flipStorageBit(join(run, "checkpoint", "step-10"));
    const chosenOnly = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    expect(chosenOnly.candidates.find((c) => c.file === "checkpoint/step-10")?.status).toBe("ok");
    const all = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", run)).out) as Plan;
    expect(all.choice?.file).toBe("checkpoint/step-20");
    expect(all.candidates.find((c) => c.file === "checkpoint/step-20")?.status).toBe("ok");
    expect(all.candidates.find((c) => c.file === "checkpoint/step-10")?.status).toBe("corrupt");
  });

  it("a Hugging Face index's .bin shards are torch zips: a flipped bit in one is named with its shard", async () => {
    const dir = join(scratch, "bin_shards");
    cpSync(join(SAMPLES_DIR, "sharded", "hf", "bin_shards"), dir, { recursive: true });
    const shard = "pytorch_model-00002-of-00003.bin";
    const source = FileSource.open(join(dir, shard));
    let at: number;
    try {
      const zip = openZip(source);
      const storage = zip.entries.find((e) => /\/data\/\d+$/.test(e.name) && e.uncompressedSize > 0);
      if (!storage) throw new Error("no storage record");
      at = zip.dataOffset(storage);
    } finally {
      source.close();
    }
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
    flipStorageBit(model);
    const plan = JSON.parse((await ckpt("resume-plan", "--json", "--verify-all", run)).out) as Plan;
    const broken = plan.candidates.find((c) => c.file === "checkpoints/checkpoint_0");
    expect(broken?.status).toBe("corrupt");
    expect(broken?.problem?.message).toMatch(/^pytorch_model_fsdp_0: /);
  });
});
