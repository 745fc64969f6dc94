import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findRuns } from "../src/inspect/runs/node.js";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** `ckpt audit`: the walk, the JSON contract, CI exit codes, --verify, and the people table. */

const scratch = mkdtempSync(join(tmpdir(), "ckpt-audit-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const outputs = join(SAMPLES_DIR, "outputs");

/** The sample runs and what each framework's own resume established (samples/runs-truth). */
interface RunTruth {
  run: string;
  convention: string;
  frameworkResume: { outcome: string };
  correctResume: { file: string | null; resets?: string[] };
}
const truths = readdirSync(join(SAMPLES_DIR, "runs-truth"))
  .filter((n) => n.endsWith(".json"))
  .map((n) => JSON.parse(readFileSync(join(SAMPLES_DIR, "runs-truth", n), "utf8")) as RunTruth)
  // A directory of notes has no run in it: the walk must not call it one.
  .filter((t) => t.convention !== "none");
/** A run resumes fully when its correct resume restores everything and actually trains. */
const resumesFully = (t: RunTruth) =>
  t.correctResume.file !== null &&
  (t.correctResume.resets ?? []).length === 0 &&
  t.frameworkResume.outcome !== "trains-nothing";

describe("the walk", () => {
  it("finds every sample run once, and nothing else", () => {
    const found = findRuns([outputs]);
    expect(truths.length).toBeGreaterThan(25);
    expect(found.runs.map((r) => r.slice(outputs.length + 1)).sort()).toEqual(
      truths.map((t) => t.run).sort(),
    );
    expect(found.files).toEqual([]);
  });

  it("follows a symlink once, survives a loop, skips .git and node_modules, lists loose files", () => {
    const root = join(scratch, "tree");
    mkdirSync(join(root, "experiments"), { recursive: true });
    cpSync(join(outputs, "fvcore_healthy"), join(root, "experiments", "run_a"), { recursive: true });
    symlinkSync(join(root, "experiments"), join(root, "experiments", "loop")); // a cycle
    symlinkSync(join(outputs, "timm_run"), join(root, "linked_timm"));
    mkdirSync(join(root, ".git"));
    cpSync(join(outputs, "fvcore_healthy"), join(root, ".git", "not_a_run"), { recursive: true });
    mkdirSync(join(root, "node_modules", "pkg"), { recursive: true });
    cpSync(join(SAMPLES_DIR, "torch2", "state_dict.pt"), join(root, "node_modules", "pkg", "weights.pt"));
    cpSync(join(SAMPLES_DIR, "torch2", "model.safetensors"), join(root, "pretrained.safetensors"));
    const found = findRuns([root]);
    expect(found.runs.map((r) => r.slice(root.length + 1)).sort()).toEqual([
      "experiments/run_a",
      "linked_timm",
    ]);
    expect(found.files.map((f) => f.slice(root.length + 1))).toEqual(["pretrained.safetensors"]);
  });
});

describe("ckpt audit", () => {
  it("--json follows ckpt.audit/1: runs are resume plans, a summary counts them", async () => {
    const { code, out } = await ckpt("audit", outputs, "--json");
    expect(code).toBe(1); // the samples are broken on purpose
    const report = JSON.parse(out);
    expect(report.schema).toBe("ckpt.audit/1");
    expect(report.runs).toHaveLength(truths.length);
    for (const run of report.runs) {
      expect(run.schema).toBe("ckpt.resume-plan/1");
      const truth = truths.find((t) => run.runDir.endsWith(`/${t.run}`));
      expect(run.resumable, `${truth?.run} resumable`).toBe(truth !== undefined && resumesFully(truth));
    }
    expect(report.summary).toMatchObject({
      runs: truths.length,
      resumable: truths.filter(resumesFully).length,
    });
    expect(report.summary.byVerdict["weights-only"]).toBe(1);
    expect(report.summary.pointer.dangling).toBe(1);
  });

  it("exit codes for CI: 0 when all is well, 1 at or above --fail-on, 2 for a missing root", async () => {
    const healthy = join(scratch, "healthy");
    cpSync(join(outputs, "fvcore_healthy"), join(healthy, "run"), { recursive: true });
    expect((await ckpt("audit", healthy)).code).toBe(0);
    expect((await ckpt("audit", healthy, "--fail-on", "warning")).code).toBe(0);
    const mixed = join(scratch, "mixed");
    cpSync(join(outputs, "fvcore_killed_mid_save"), join(mixed, "run"), { recursive: true });
    expect((await ckpt("audit", mixed)).code).toBe(0); // a broken older file is a warning...
    expect((await ckpt("audit", mixed, "--fail-on", "warning")).code).toBe(1); // ...which CI can choose to fail on
    expect((await ckpt("audit", join(scratch, "nope"))).code).toBe(2);
  });

  it("a tree with no run and no checkpoint (a folder of notes) is a usage problem: exit 2, not a clean pass", async () => {
    const notes = await ckpt("audit", join(outputs, "notes_only"), "--json");
    expect(notes.code).toBe(2);
    expect(JSON.parse(notes.out)).toMatchObject({ schema: "ckpt.error/1", code: "no-checkpoints" });
  });

  it("--verify-all streams every record, the default the pointer's target: a flipped bit is found", async () => {
    const quick = JSON.parse(
      (await ckpt("audit", join(outputs, "fvcore_bitflip"), "--json", "--no-verify")).out,
    );
    const byDefault = JSON.parse((await ckpt("audit", join(outputs, "fvcore_bitflip"), "--json")).out);
    const verified = JSON.parse(
      (await ckpt("audit", join(outputs, "fvcore_bitflip"), "--json", "--verify-all", "--jobs", "2")).out,
    );
    const newest = (report: { runs: Array<{ candidates: Array<{ file: string; status: string }> }> }) =>
      report.runs[0]?.candidates.find((c) => c.file === "model_0000019.pth");
    expect(newest(quick)?.status).toBe("ok");
    expect(newest(byDefault)?.status).toBe("corrupt");
    expect(newest(verified)?.status).toBe("corrupt");
    expect(verified.runs[0].choice.file).toBe("model_0000009.pth");
  });

  it("the built CLI's worker threads (--verify --jobs 2) give the same report as one thread", () => {
    const run = (jobs: string) => {
      const result = ckptBinary(["audit", outputs, "--json", "--verify-all", "--jobs", jobs]);
      expect(result.status).toBe(1);
      return JSON.parse(result.stdout);
    };
    expect(run("2")).toEqual(run("1"));
  });

  it("people get one row per run and a summary sentence", async () => {
    const { out } = await ckpt("audit", outputs);
    expect(out).toMatch(/^trackron_model_only\s+trackron\s+model_0000019\.pth\s+20\s/m);
    expect(out).toMatch(/^fvcore_finished .* finished /m);
    expect(out.trim().split("\n").at(-1)).toMatch(
      new RegExp(
        `^${truths.length} runs: ${truths.filter(resumesFully).length} resumable, 1 weights-only, .*finished, .*pointer dangling`,
      ),
    );
    expect(out.includes(String.fromCharCode(27))).toBe(false); // no colour unless on a terminal
  });

  it("a lone file gets the file table and a summary without an empty runs table", async () => {
    const { out } = await ckpt("audit", join(SAMPLES_DIR, "torch2", "state_dict.pt"));
    expect(out).not.toContain("RESUMES FROM");
    expect(out).toMatch(/^LOOSE FILE\s+FORMAT/m);
    expect(out.trim().split("\n").at(-1)).toBe("1 loose checkpoint file");
  });

  it("--html writes one self-contained file", async () => {
    const html = join(scratch, "report.html");
    await ckpt("audit", outputs, "--html", html);
    expect(existsSync(html)).toBe(true);
    const text = readFileSync(html, "utf8");
    expect(text).not.toMatch(/https?:\/\//);
    expect(text).not.toMatch(/<script/);
    expect((text.match(/<tr class="run"/g) ?? []).length).toBe(truths.length);
  });
});
