import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Megatron-LM's layouts (samples/make_runs_extra.py, transcribed from megatron/training/checkpointing.py):
 * what each command says of them beyond the run truths `resume-plan.test.ts` checks.
 */
const outputs = join(SAMPLES_DIR, "outputs");
const scratch = mkdtempSync(join(tmpdir(), "ckpt-megatron-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function copyRun(name: string): string {
  const dir = join(scratch, `${name}-${Math.random().toString(36).slice(2)}`);
  cpSync(join(outputs, name), dir, { recursive: true });
  return dir;
}

describe("Megatron-LM checkpoints", () => {
  it("a rank's model_optim_rng.pt is recognised by its keys, and judged resumable", async () => {
    const file = join(outputs, "megatron_run", "iter_0000200", "mp_rank_01", "model_optim_rng.pt");
    const report = JSON.parse((await ckpt("inspect", "--json", file)).out);
    expect(report.convention.id).toBe("megatron");
    expect(report.resume.verdict).toBe("resumable");
    expect(report.resume.counter).toMatchObject({ name: "iteration", value: 200 });
  });

  it("inspect of a legacy iteration directory reads each model-parallel rank's files, in rank order", async () => {
    const dir = join(outputs, "megatron_run", "iter_0000200");
    const { code, out } = await ckpt("inspect", "--json", dir);
    expect(code).toBe(0);
    const reports = JSON.parse(out) as Array<{
      file: string;
      convention: { id: string };
      resume: { verdict: string };
    }>;
    expect(reports.map((r) => r.file.slice(dir.length + 1))).toEqual([
      "mp_rank_00/distrib_optim.pt",
      "mp_rank_00/model_optim_rng.pt",
      "mp_rank_01/distrib_optim.pt",
      "mp_rank_01/model_optim_rng.pt",
    ]);
    // The distributed optimizer's shard is training state without weights, not "weights only".
    expect(reports.map((r) => [r.convention.id, r.resume.verdict])).toEqual([
      ["optimizer-state", "training-state-only"],
      ["megatron", "resumable"],
      ["optimizer-state", "training-state-only"],
      ["megatron", "resumable"],
    ]);
  });

  it("a torch_dist iteration directory is judged as Megatron loads it: common.pt's counter, DCP's optimizer", async () => {
    const dir = join(outputs, "megatron_torch_dist", "iter_0000200");
    const report = JSON.parse((await ckpt("inspect", "--json", dir)).out);
    expect(report.format).toBe("dcp");
    expect(report.convention.id).toBe("megatron");
    expect(report.resume.verdict).toBe("resumable");
    expect(report.resume.counter).toMatchObject({ value: 200 });
    const optimizer = report.resume.components.find(
      (c: { component: string }) => c.component === "optimizer",
    );
    expect(optimizer).toMatchObject({ status: "present" });
  });

  it("a rank that lost its distrib_optim.pt leaves the optimizer's shell only: the iteration is incomplete", async () => {
    const run = copyRun("megatron_run");
    rmSync(join(run, "iter_0000200", "mp_rank_01", "distrib_optim.pt"));
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    const newest = plan.candidates.find((c: { file: string }) => c.file === "iter_0000200");
    expect(newest).toMatchObject({ status: "ok", verdict: "incomplete" });
    expect(newest.missing).toContain("optimizer");
    expect(plan.choice.file).toBe("iter_0000100");
    // load_parameter_state raises FileNotFoundError there: Megatron does not reset the optimizer, it stops.
    expect(plan.framework).toMatchObject({ outcome: "crashes", file: "iter_0000200" });
  });

  it("--write points the tracker at the newest whole iteration, as Megatron writes it: the number, no newline", async () => {
    const run = copyRun("megatron_missing_rank");
    // The plan it acted on had a broken pointer, which the exit code still reports (1).
    const { code } = await ckpt("resume-plan", run, "--write", "--json");
    expect(code).toBe(1);
    expect(readFileSync(join(run, "latest_checkpointed_iteration.txt"), "utf8")).toBe("100");
    const again = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    expect(again.pointer.status).toBe("ok");
    expect(again.framework).toMatchObject({ outcome: "resumes", file: "iter_0000100", startsAt: 100 });
  });

  it("a tracker holding 'release' loads the weights only, at iteration 0", async () => {
    const run = copyRun("megatron_run");
    cpSync(join(run, "iter_0000200"), join(run, "release"), { recursive: true });
    writeFileSync(join(run, "latest_checkpointed_iteration.txt"), "release");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    expect(plan.framework).toMatchObject({ outcome: "starts-over", file: "release", startsAt: 0 });
    expect(plan.framework.restores).toEqual(["model"]);
    // The plan never takes release/ for a full resume: it restores weights only.
    expect(plan.choice.file).toBe("iter_0000200");
    const release = plan.candidates.find((c: { file: string }) => c.file === "release");
    expect(release.verdict).toBe("weights-only");
  });

  it("an empty iter_NNNNNNN folder does not make another framework's run Megatron's", async () => {
    const run = join(scratch, "hf-with-iter");
    cpSync(join(outputs, "hf_trainer_run"), run, { recursive: true });
    mkdirSync(join(run, "iter_0000001"));
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    expect(plan.convention).toBe("hf-trainer");
    expect(plan.choice.file).toBe("checkpoint-6");
  });

  it("the tracker is read as Python's int() reads it: spaces, a sign, underscores", async () => {
    const run = copyRun("megatron_run");
    writeFileSync(join(run, "latest_checkpointed_iteration.txt"), " +2_00\n");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    expect(plan.pointer.status).toBe("ok");
    expect(plan.framework).toMatchObject({ outcome: "resumes", file: "iter_0000200" });
  });

  it("expert-parallel rank names (mp_rank_TT_EEE) form the grid, and a lost one is named", async () => {
    const run = copyRun("megatron_run");
    for (const iteration of ["iter_0000100", "iter_0000200"]) {
      renameSync(join(run, iteration, "mp_rank_00"), join(run, iteration, "mp_rank_00_000"));
      renameSync(join(run, iteration, "mp_rank_01"), join(run, iteration, "mp_rank_00_001"));
    }
    let plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    expect(plan.choice).toMatchObject({ file: "iter_0000200", verdict: "resumable" });
    mkdirSync(join(run, "iter_0000200", "mp_rank_00_003"));
    cpSync(join(run, "iter_0000200", "mp_rank_00_001"), join(run, "iter_0000200", "mp_rank_00_003"), {
      recursive: true,
    });
    plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    const newest = plan.candidates.find((c: { file: string }) => c.file === "iter_0000200");
    expect(newest.status).toBe("incomplete-dir");
    expect(newest.problem.message).toContain("mp_rank_00_002");
  });

  it("a truncated rank-0 file is reported as truncated, not as a directory without a checkpoint", async () => {
    const run = copyRun("megatron_run");
    const file = join(run, "iter_0000200", "mp_rank_00", "model_optim_rng.pt");
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
    const newest = plan.candidates.find((c: { file: string }) => c.file === "iter_0000200");
    expect(newest.status).toBe("truncated");
    expect(plan.choice.file).toBe("iter_0000100");
  });
});
