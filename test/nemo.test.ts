import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

// NeMo's ModelCheckpoint writes `<checkpoint without .nemo/.ckpt/-EMA>-unfinished` before a save and removes it
// after (format_checkpoint_unfinished_marker_path); AutoResume skips a checkpoint whose marker is still there.
const scratch = mkdtempSync(join(tmpdir(), "ckpt-nemo-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Plan {
  choice: { file: string } | null;
  candidates: Array<{ file: string; status: string; problem?: { code: string } }>;
}

function runWithMarker(marker: string): string {
  const run = join(scratch, marker);
  cpSync(join(SAMPLES_DIR, "outputs", "lightning_run"), run, { recursive: true });
  writeFileSync(join(run, "lightning_logs", "version_0", "checkpoints", marker), "");
  return run;
}

const checkpoints = "lightning_logs/version_0/checkpoints";

describe("a save's unfinished marker", () => {
  it("beside last.ckpt: last.ckpt is unfinished and the plan resumes from the newest finished save", async () => {
    const plan = JSON.parse(
      (await ckpt("resume-plan", "--json", runWithMarker("last-unfinished"))).out,
    ) as Plan;
    const last = plan.candidates.find((c) => c.file === `${checkpoints}/last.ckpt`);
    expect(last?.status).toBe("unfinished");
    expect(last?.problem?.code).toBe("save-unfinished");
    expect(plan.choice?.file).toBe(`${checkpoints}/epoch=1-step=8.ckpt`);
  });

  it("names its checkpoint without .ckpt: epoch=1-step=8-unfinished marks epoch=1-step=8.ckpt only", async () => {
    const plan = JSON.parse(
      (await ckpt("resume-plan", "--json", runWithMarker("epoch=1-step=8-unfinished"))).out,
    ) as Plan;
    const status = Object.fromEntries(plan.candidates.map((c) => [c.file, c.status]));
    expect(status).toEqual({
      [`${checkpoints}/epoch=1-step=8.ckpt`]: "unfinished",
      [`${checkpoints}/epoch=0-step=4.ckpt`]: "ok",
      [`${checkpoints}/last.ckpt`]: "ok",
    });
  });

  it("beside a checkpoint directory (NeMo 2 saves directories): step-20-unfinished marks step-20/", async () => {
    const run = join(scratch, "dcp");
    cpSync(join(SAMPLES_DIR, "outputs", "dcp_run"), run, { recursive: true });
    writeFileSync(join(run, "checkpoint", "step-20-unfinished"), "");
    const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out) as Plan;
    expect(plan.candidates.find((c) => c.file === "checkpoint/step-20")?.status).toBe("unfinished");
    expect(plan.choice?.file).toBe("checkpoint/step-10");
  });
});

describe("the marker's name, as format_checkpoint_unfinished_marker_path makes it", () => {
  it("drops .nemo, .ckpt and -EMA, and a model-parallel rank directory first", async () => {
    const { unfinishedMarker } = await import("../src/inspect/runs/nemoMarker.js");
    expect(unfinishedMarker("/r/checkpoints/gpt--step=9-last.ckpt")).toBe(
      "/r/checkpoints/gpt--step=9-last-unfinished",
    );
    expect(unfinishedMarker("/r/checkpoints/gpt--step=9-EMA.ckpt")).toBe(
      "/r/checkpoints/gpt--step=9-unfinished",
    );
    expect(unfinishedMarker("/r/checkpoints/gpt.nemo")).toBe("/r/checkpoints/gpt-unfinished");
    expect(unfinishedMarker("/r/checkpoints/gpt--step=9-last")).toBe(
      "/r/checkpoints/gpt--step=9-last-unfinished",
    );
    expect(unfinishedMarker("/r/checkpoints/mp_rank_01/gpt--step=9.ckpt")).toBe(
      "/r/checkpoints/gpt--step=9-unfinished",
    );
    expect(unfinishedMarker("/r/checkpoints/tp_rank_00_pp_rank_001/gpt.ckpt")).toBe(
      "/r/checkpoints/gpt-unfinished",
    );
  });
});

describe("a NeMo 2 checkpoint directory (weights/ and context/)", () => {
  it("inspect of the checkpoint directory reads the sharded checkpoint in weights/", async () => {
    const ckptDir = join(scratch, "nemo2", "checkpoints", "gpt--val_loss=1.00-step=9-last");
    cpSync(join(SAMPLES_DIR, "outputs", "megatron_torch_dist", "iter_0000200"), join(ckptDir, "weights"), {
      recursive: true,
    });
    mkdirSync(join(ckptDir, "context"));
    writeFileSync(join(ckptDir, "context", "io.json"), "{}");
    const { code, out } = await ckpt("inspect", "--json", ckptDir);
    expect(code).not.toBe(2);
    // One report, of another path than the one given: printed as a list of one, as for a directory's files.
    const [report] = JSON.parse(out) as Array<{ file: string; format: string; tensors: unknown[] }>;
    if (!report) throw new Error("no report");
    expect(report.file).toBe(join(ckptDir, "weights"));
    expect(report.format).toBe("dcp");
    expect(report.tensors.length).toBeGreaterThan(0);
  });
});
