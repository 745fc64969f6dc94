import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planResume } from "../src/inspect/runs/node.js";
import { planRun, type ResumePlan } from "../src/inspect/runs/plan.js";
import { treeFiles } from "../src/inspect/treeFiles.js";
import { NodeTree } from "../src/reader/nodeTree.js";
import { CountingTree } from "../src/reader/tree.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Each sample run directory against what its framework does, established when the sample was generated
 * (`samples/make_runs.py`: by resuming for one step where the framework is installed, from the reference notes
 * otherwise). ckpt must predict the framework's own auto-resume and choose the correct resume point.
 */
interface RunTruth {
  run: string;
  convention: string;
  established: "resumed" | "reference";
  generatedAt: string;
  pointer: { file: string; content: string; status: string } | null;
  frameworkResume: { file: string | null; outcome: string; startsAt: number | null };
  correctResume: { file: string | null; startsAt: number | null; restores?: string[] };
}

const truthDir = join(SAMPLES_DIR, "runs-truth");
const truths: RunTruth[] = existsSync(truthDir)
  ? readdirSync(truthDir)
      .filter((n) => n.endsWith(".json"))
      .sort()
      .map((n) => JSON.parse(readFileSync(join(truthDir, n), "utf8")) as RunTruth)
  : [];

const scratch = mkdtempSync(join(tmpdir(), "ckpt-runs-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The run dir to plan, as it is: every sample was written on a cluster path and shipped as a copy, so a
 * pointer naming an absolute path (mmengine's) names that cluster here as on every machine.
 */
function runDirFor(truth: RunTruth): string {
  return join(SAMPLES_DIR, "outputs", truth.run);
}

/** DeepSpeed truths name the model-states file inside the tag directory; ckpt names the directory. */
function sameCheckpoint(ours: string | null | undefined, theirs: string | null): boolean {
  if (ours === null || ours === undefined || theirs === null)
    return ours === theirs || (ours ?? null) === theirs;
  return ours === theirs || theirs.startsWith(`${ours}/`);
}

describe("resume-plan agrees with each framework's own resume", () => {
  it("has sample runs made by real framework code and from the reference notes", () => {
    expect(truths.length).toBeGreaterThan(10);
    expect(truths.some((t) => t.established === "resumed")).toBe(true);
  });

  for (const truth of truths) {
    it(`${truth.run} (${truth.convention}, ${truth.established})`, async () => {
      const plan: ResumePlan = await planResume(runDirFor(truth), { verify: "chosen" });
      if (truth.convention === "none") {
        // No framework's layout and no checkpoint (a directory of notes): nothing to predict or choose.
        expect(plan.framework).toBeNull();
        expect(plan.choice).toBeNull();
        expect(plan.findings.map((f) => f.code)).toContain("no-usable-checkpoint");
        return;
      }

      if (truth.pointer) expect(plan.pointer?.status, "pointer status").toBe(truth.pointer.status);

      const framework = plan.framework;
      expect(framework?.outcome, `framework outcome: ${framework?.why}`).toBe(truth.frameworkResume.outcome);
      if (truth.frameworkResume.outcome !== "crashes") {
        expect(
          sameCheckpoint(framework?.file, truth.frameworkResume.file),
          `framework loads ${framework?.file}`,
        ).toBe(true);
        expect(framework?.startsAt, "framework starts at").toBe(truth.frameworkResume.startsAt);
      }

      expect(
        sameCheckpoint(plan.choice?.file, truth.correctResume.file),
        `plan chooses ${plan.choice?.file}`,
      ).toBe(true);
      expect(plan.choice?.resumeAt ?? null, "plan resumes at").toBe(truth.correctResume.startsAt);
      for (const part of ["model", "optimizer"]) {
        // The truths name parts in each framework's own words; model and optimizer are common to all. One the
        // framework restores and the plan does not is a misjudged layout (the Trainer under DeepSpeed keeps its
        // optimizer in global_step*, not in optimizer.pt).
        if (plan.choice && truth.correctResume.restores?.includes(part))
          expect(plan.choice.restores, `plan restores ${part}`).toContain(part);
      }
      for (const c of plan.candidates)
        expect(relative(plan.runDir, join(plan.runDir, c.file)).startsWith("..")).toBe(false);
    });
  }
});

describe("the Trainer's resume from a checkpoint-N without trainer_state.json", () => {
  it("loads weights, optimizer, scheduler and RNG, and only the step starts over", async () => {
    // transformers' train(): TrainerState.load_from_json only when the file exists; _load_from_checkpoint and
    // _load_optimizer_and_scheduler do not look at it.
    const run = join(scratch, "hf_no_trainer_state");
    cpSync(join(SAMPLES_DIR, "outputs", "hf_trainer_run"), run, { recursive: true });
    rmSync(join(run, "checkpoint-6", "trainer_state.json"));
    const plan = await planResume(run, { verify: "chosen" });
    expect(plan.framework).toMatchObject({ file: "checkpoint-6", outcome: "starts-over", startsAt: 0 });
    expect([...(plan.framework?.restores ?? [])].sort()).toEqual(["model", "optimizer", "rng", "scheduler"]);
    expect(plan.framework?.resets).toEqual(["counter"]);
    expect(plan.choice?.file).toBe("checkpoint-3");
  });
});

describe("verifying what the plan trusts", () => {
  it("a pointer target that is also the choice has its bytes streamed through their CRCs once", async () => {
    const run = join(SAMPLES_DIR, "outputs", "fvcore_healthy");
    const target = join(run, "model_0000019.pth");
    const read = async (verify: "chosen" | "none") => {
      const tree = new CountingTree(new NodeTree("/"));
      const plan = await planRun(run, { fs: treeFiles(tree), verify });
      expect(plan.choice?.file).toBe("model_0000019.pth");
      // The tree is rooted at "/", and names its files without it.
      return tree.bytesByFile().get(target.slice(1)) ?? 0;
    };
    const extra = (await read("chosen")) - (await read("none"));
    // One verification reads the file through its CRCs and loads it again: twice its size. It was four times.
    expect(extra).toBeGreaterThanOrEqual(statSync(target).size);
    expect(extra).toBeLessThan(3 * statSync(target).size);
  });
});

describe("Lightning checkpoints a ModelCheckpoint(dirpath=...) wrote, outside lightning_logs", () => {
  it('ckpt_path="last" is predicted to load the newest last*.ckpt by time, not to start over', async () => {
    const dir = join(scratch, "lightning-run", "ckpts");
    const sample = join(SAMPLES_DIR, "torch2", "lightning_no_scheduler.ckpt");
    mkdirSync(dir, { recursive: true });
    for (const name of ["epoch=0-step=2.ckpt", "last-v1.ckpt", "last.ckpt"]) cpSync(sample, join(dir, name));
    // last.ckpt is older than last-v1.ckpt: Lightning takes the newest by mtime, whatever the name.
    utimesSync(join(dir, "last.ckpt"), new Date(2026, 0, 1), new Date(2026, 0, 1));
    const plan = await planResume(dir, { verify: "chosen" });
    expect(plan.convention).toBe("lightning");
    expect(plan.framework?.outcome).toBe("resumes");
    expect(plan.framework?.file).toBe("last-v1.ckpt");
    expect(plan.framework?.why).toMatch(/ModelCheckpoint\(dirpath=/);
  });

  it("the run's folder above them: no checkpoint here, and the finding names the run below", async () => {
    // Made by the test before; run alone, this one makes it.
    const dir = join(scratch, "lightning-run", "ckpts");
    if (!existsSync(dir)) {
      mkdirSync(dir, { recursive: true });
      for (const name of ["epoch=0-step=2.ckpt", "last.ckpt"])
        cpSync(join(SAMPLES_DIR, "torch2", "lightning_no_scheduler.ckpt"), join(dir, name));
    }
    const plan = await planResume(join(scratch, "lightning-run"), { verify: "chosen" });
    expect(plan.choice).toBeNull();
    const finding = plan.findings.find((f) => f.code === "no-usable-checkpoint");
    expect(finding?.message).toMatch(/a run is below it: ckpts\. Run resume-plan on it/);
  });
});
