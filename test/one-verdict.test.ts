import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * One verdict: `audit` judges each run with the same checks as `resume-plan` (by default the CRCs of the
 * pointer's target and of the chosen checkpoint), so both commands say the same of every sample run; and
 * resume-plan's exit code says whether the framework's own resume, on the directory as it stands, resumes
 * fully, as each framework's run truth established it.
 */
interface RunTruth {
  run: string;
  convention: string;
  frameworkResume: { file: string | null; outcome: string; startsAt: number | null };
  correctResume: { file: string | null; startsAt: number | null; resets?: string[] };
}

interface PlanJson {
  runDir: string;
  choice: { file: string; resumeAt: number | null } | null;
  resumable: boolean;
  resumesAsIs: boolean;
  fix: string | null;
  pointer: { status: string } | null;
  framework: { outcome: string; file: string | null } | null;
  findings: Array<{ code: string; severity: string }>;
  candidates: Array<{ file: string; status: string }>;
}

const outputs = join(SAMPLES_DIR, "outputs");
const truths = readdirSync(join(SAMPLES_DIR, "runs-truth"))
  .filter((n) => n.endsWith(".json"))
  .map((n) => JSON.parse(readFileSync(join(SAMPLES_DIR, "runs-truth", n), "utf8")) as RunTruth)
  .filter((t) => t.convention !== "none");

/** DeepSpeed truths name the model-states file inside the tag directory; ckpt names the directory. */
const same = (ours: string | null | undefined, theirs: string | null) =>
  (ours ?? null) === theirs || (ours != null && theirs !== null && theirs.startsWith(`${ours}/`));

/** The framework's own resume already does the right thing: exit 0. */
function resumesAsIs(t: RunTruth): boolean {
  const f = t.frameworkResume;
  const c = t.correctResume;
  return (
    f.outcome === "resumes" &&
    c.file !== null &&
    same(f.file, c.file) &&
    f.startsAt === c.startsAt &&
    (c.resets ?? []).length === 0
  );
}

/** What both commands must agree on. */
const verdictOf = (p: PlanJson) => ({
  choice: p.choice?.file ?? null,
  resumeAt: p.choice?.resumeAt ?? null,
  resumable: p.resumable,
  resumesAsIs: p.resumesAsIs,
  pointer: p.pointer?.status ?? null,
  framework: p.framework?.outcome ?? null,
  candidates: p.candidates.map((c) => `${c.file}:${c.status}`),
  findings: p.findings.map((f) => `${f.code}:${f.severity}`).sort(),
});

describe("audit and resume-plan reach one verdict", () => {
  it("on every sample run, with the default checks", async () => {
    const audit = JSON.parse((await ckpt("audit", outputs, "--json")).out) as { runs: PlanJson[] };
    expect(audit.runs.length).toBe(truths.length);
    for (const run of audit.runs) {
      const plan = JSON.parse((await ckpt("resume-plan", run.runDir, "--json")).out) as PlanJson;
      expect(verdictOf(run), run.runDir).toEqual(verdictOf(plan));
    }
  });

  it("a pointer naming a file with a flipped bit is corrupt in both, and both resume from the older file", async () => {
    const dir = join(outputs, "fvcore_bitflip");
    const audit = JSON.parse((await ckpt("audit", dir, "--json")).out) as { runs: PlanJson[] };
    const plan = JSON.parse((await ckpt("resume-plan", dir, "--json")).out) as PlanJson;
    for (const p of [audit.runs[0] as PlanJson, plan]) {
      expect(p.pointer?.status).toBe("corrupt-target");
      expect(p.choice?.file).toBe("model_0000009.pth");
    }
    // --no-verify skips the CRCs in both: the flipped bit then goes unseen, in both.
    const quickAudit = JSON.parse((await ckpt("audit", dir, "--json", "--no-verify")).out) as {
      runs: PlanJson[];
    };
    const quickPlan = JSON.parse((await ckpt("resume-plan", dir, "--json", "--no-verify")).out) as PlanJson;
    expect(verdictOf(quickAudit.runs[0] as PlanJson)).toEqual(verdictOf(quickPlan));
    expect(quickPlan.pointer?.status).toBe("ok");
  });
});

describe("resume-plan's exit code says whether the framework's own resume works as the directory stands", () => {
  for (const truth of truths) {
    const expected = resumesAsIs(truth) ? 0 : 1;
    it(`${truth.run}: exit ${expected}`, async () => {
      const { code, out } = await ckpt("resume-plan", join(outputs, truth.run));
      // The mmengine sample's pointer names the path of the cluster the run was copied from: moved, 1.
      expect(code, out).toBe(expected);
      const plan = JSON.parse(
        (await ckpt("resume-plan", join(outputs, truth.run), "--json")).out,
      ) as PlanJson;
      if (plan.fix) expect(out).toContain(`Fix: ${plan.fix}`);
    });
  }

  it("names the ckpt command that fixes what can be fixed", async () => {
    const dangling = JSON.parse(
      (await ckpt("resume-plan", join(outputs, "fvcore_dangling"), "--json")).out,
    ) as PlanJson;
    expect(dangling.fix).toMatch(/^ckpt resume-plan --write .*fvcore_dangling$/);
    const trackron = JSON.parse(
      (await ckpt("resume-plan", join(outputs, "trackron_model_only"), "--json")).out,
    ) as PlanJson;
    expect(trackron.fix).toMatch(/^ckpt repair .*trackron_model_only$/);
    const healthy = JSON.parse(
      (await ckpt("resume-plan", join(outputs, "fvcore_healthy"), "--json")).out,
    ) as PlanJson;
    expect(healthy.fix).toBeNull();
  });
});
