import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** `ckpt resume-plan --write` and the command's exit codes, on copies of the sample runs. */

const scratch = mkdtempSync(join(tmpdir(), "ckpt-write-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function copyRun(name: string): string {
  const dir = join(scratch, `${name}-${Math.random().toString(36).slice(2, 8)}`);
  cpSync(join(SAMPLES_DIR, "outputs", name), dir, { recursive: true });
  return dir;
}

/** sha256 of every file below `dir`, to prove that inputs are never modified. */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()) {
    const path = join(dir, name);
    if (statSync(path).isFile()) out[name] = createHash("sha256").update(readFileSync(path)).digest("hex");
  }
  return out;
}

describe("resume-plan exit codes", () => {
  it("0 when the run resumes fully, 1 when it does not, 2 for unusable input", async () => {
    expect((await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "fvcore_healthy"))).code).toBe(0);
    expect((await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "trackron_model_only"))).code).toBe(1);
    expect((await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "fvcore_finished"))).code).toBe(1);
    const missing = await ckpt("resume-plan", join(scratch, "no-such-run"));
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/no-such-run: .*\[file-not-found\]/);
    const file = await ckpt("resume-plan", join(SAMPLES_DIR, "torch2", "state_dict.pt"));
    expect(file.code).toBe(2);
    expect(file.err).toMatch(/a file, not a run directory/);
  });

  it("people get the decision, the framework's behaviour and the candidates", async () => {
    const { out } = await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "fvcore_truncated_newest"));
    expect(out).toContain("Resume from model_0000009.pth");
    expect(out).toContain("starts at  iteration 10");
    expect(out).toMatch(/Framework's own auto-resume: crashes/);
    expect(out).toMatch(/^model_0000019\.pth\s+19 \(name\)\s+truncated/m);
  });
});

describe("--config", () => {
  it("flags MODEL.WEIGHTS naming the pointer file (the 'invalid load key' mistake)", async () => {
    const { out } = await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "trackron_model_only"), "--json");
    const plan = JSON.parse(out);
    expect(plan.config.modelWeights).toMatch(/last_checkpoint$/);
    expect(plan.findings.map((f: { code: string }) => f.code)).toContain("weights-names-pointer");
  });

  it("flags a finished run whose resume would train nothing", async () => {
    const { out } = await ckpt("resume-plan", join(SAMPLES_DIR, "outputs", "fvcore_finished"), "--json");
    const plan = JSON.parse(out);
    expect(plan.config.maxIter).toBe(30);
    expect(plan.resumable).toBe(false);
    expect(plan.framework.outcome).toBe("trains-nothing");
    expect(plan.findings.map((f: { code: string }) => f.code)).toContain("counter-past-end");
  });

  it("an explicit --config overrides the run's own config.yaml", async () => {
    const config = join(scratch, "long.yaml");
    writeFileSync(config, "SOLVER:\n  MAX_ITER: 1000\n");
    const { code, out } = await ckpt(
      "resume-plan",
      join(SAMPLES_DIR, "outputs", "fvcore_finished"),
      "--config",
      config,
      "--json",
    );
    expect(JSON.parse(out).framework.outcome).toBe("resumes");
    expect(code).toBe(0);
  });
});

describe("--write", () => {
  it("fvcore: rewrites a dangling pointer to a basename without newline, keeps a backup, writes the manifest", async () => {
    const run = copyRun("fvcore_dangling");
    const before = hashTree(run);
    const oldPointer = readFileSync(join(run, "last_checkpoint"), "utf8");
    const { out } = await ckpt("resume-plan", run, "--write", "--json");
    const plan = JSON.parse(out);
    expect(plan.written).toContain("last_checkpoint");

    expect(readFileSync(join(run, "last_checkpoint"), "utf8")).toBe("model_0000009.pth");
    const backups = readdirSync(run).filter((n) => n.startsWith("last_checkpoint.") && n.endsWith(".bak"));
    expect(backups).toHaveLength(1);
    expect(readFileSync(join(run, backups[0] as string), "utf8")).toBe(oldPointer);
    expect(readdirSync(run).some((n) => n.includes("ckpt-tmp"))).toBe(false);

    const manifest = JSON.parse(readFileSync(join(run, "resume-manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      schema: "ckpt.resume-manifest/1",
      checkpoint: { file: "model_0000009.pth", sizeBytes: statSync(join(run, "model_0000009.pth")).size },
      counter: { name: "iteration", value: 9, source: "checkpoint" },
      resumeAt: 10,
      pointer: {
        file: "last_checkpoint",
        before: oldPointer,
        after: "model_0000009.pth",
        statusBefore: "dangling",
      },
    });
    expect(manifest.checkpoint.records.length).toBeGreaterThan(3);
    expect(manifest.skipped).toEqual([]);

    // Every checkpoint and config is untouched; only the pointer, its backup and the manifest changed.
    const after = hashTree(run);
    for (const [name, hash] of Object.entries(before)) {
      if (name !== "last_checkpoint") expect(after[name], name).toBe(hash);
    }

    // Now the framework resumes where the plan says, and a second --write leaves the pointer alone.
    const again = JSON.parse((await ckpt("resume-plan", run, "--write", "--json")).out);
    expect(again.pointer.status).toBe("ok");
    expect(again.framework).toMatchObject({ outcome: "resumes", file: "model_0000009.pth", startsAt: 10 });
    expect(again.written).toEqual(["resume-manifest.json"]);
  });

  it("fvcore: a pointer to a truncated file is redirected to the newest whole checkpoint", async () => {
    const run = copyRun("fvcore_truncated_newest");
    await ckpt("resume-plan", run, "--write");
    expect(readFileSync(join(run, "last_checkpoint"), "utf8")).toBe("model_0000009.pth");
    const manifest = JSON.parse(readFileSync(join(run, "resume-manifest.json"), "utf8"));
    expect(manifest.skipped).toEqual([
      expect.objectContaining({ file: "model_0000019.pth", status: "truncated" }),
    ]);
  });

  it("DeepSpeed: a missing latest is written as the bare tag", async () => {
    const run = copyRun("deepspeed_no_latest");
    expect(existsSync(join(run, "latest"))).toBe(false);
    await ckpt("resume-plan", run, "--write");
    expect(readFileSync(join(run, "latest"), "utf8")).toBe("global_step20");
  });

  it("mmengine: the pointer is written as an absolute path, as mmengine reads it unjoined", async () => {
    const run = copyRun("mmengine_run");
    writeFileSync(join(run, "last_checkpoint"), join(run, "epoch_9.pth")); // dangling: a file that never existed
    await ckpt("resume-plan", run, "--write");
    expect(readFileSync(join(run, "last_checkpoint"), "utf8")).toBe(join(run, "epoch_2.pth"));
  });

  it("a moved mmengine run: its pointer still names the old absolute path; the plan finds it here", async () => {
    const run = copyRun("mmengine_run");
    // As a run copied off a cluster reads: mmengine wrote the cluster's absolute path.
    const old = "/nonexistent-cluster/scratch/work_dirs/mmengine_run/epoch_2.pth";
    writeFileSync(join(run, "last_checkpoint"), old);
    const { out } = await ckpt("resume-plan", run, "--json");
    const plan = JSON.parse(out);
    expect(plan.pointer).toMatchObject({ status: "moved", movedTo: "epoch_2.pth", content: old });
    expect(plan.framework.outcome).toBe("crashes"); // mmengine opens the old path: FileNotFoundError
    expect(plan.choice.file).toBe("epoch_2.pth");
    expect((await ckpt("resume-plan", run)).out).toContain(`-> ${old}: moved (here: epoch_2.pth)`);
    const finding = plan.findings.find((f: { code: string }) => f.code === "pointer-problem");
    expect(finding.message).toContain("moved or copied");
    expect(finding.message).toContain("epoch_2.pth");

    const written = JSON.parse((await ckpt("resume-plan", run, "--write", "--json")).out).written as string[];
    expect(readFileSync(join(run, "last_checkpoint"), "utf8")).toBe(join(run, "epoch_2.pth"));
    const backup = written.find((name) => name.endsWith(".bak"));
    expect(backup).toMatch(/^last_checkpoint\..*\.bak$/);
    expect(readFileSync(join(run, backup as string), "utf8")).toBe(old);
    const again = JSON.parse((await ckpt("resume-plan", run, "--json")).out);
    expect(again.pointer.status).toBe("ok");
  });

  it("a gone absolute pointer whose path names nothing in the run stays dangling", async () => {
    const run = copyRun("mmengine_run");
    writeFileSync(join(run, "last_checkpoint"), "/nonexistent-cluster/work_dirs/other_run/epoch_7.pth");
    const plan = JSON.parse((await ckpt("resume-plan", run, "--json")).out);
    expect(plan.pointer.status).toBe("dangling");
    expect(plan.pointer.movedTo).toBeUndefined();
  });

  it("a healthy run gets a manifest and nothing else", async () => {
    const run = copyRun("fvcore_healthy");
    const before = hashTree(run);
    const { code, out } = await ckpt("resume-plan", run, "--write", "--json");
    expect(code).toBe(0);
    expect(JSON.parse(out).written).toEqual(["resume-manifest.json"]);
    const after = hashTree(run);
    delete after["resume-manifest.json"];
    expect(after).toEqual(before);
  });
});
