import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runNames } from "../src/cli/render/runNames.js";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** The audit table a person reads: where each run resumes from, its problem in words, the fix, the names. */
const outputs = join(SAMPLES_DIR, "outputs");
const ROOT = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "ckpt-audit-table-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Plan {
  runDir: string;
  choice: { file: string; resumeAt: number | null } | null;
  findings: Array<{ code: string; severity: string; message: string }>;
  command: string | null;
}

const rowOf = (out: string, run: string) => out.split("\n").find((l) => l.startsWith(`${run} `)) ?? "";

describe("what the audit table says about each run", () => {
  it("each run's row shows the plan's choice: the file and the counter a resume starts at", async () => {
    const plans = (JSON.parse((await ckpt("audit", outputs, "--json")).out) as { runs: Plan[] }).runs;
    const { out } = await ckpt("audit", outputs);
    for (const plan of plans) {
      const fields = rowOf(out, basename(plan.runDir)).split(/ {2,}/);
      expect(fields[2], plan.runDir).toBe(plan.choice?.file ?? "-");
      expect(fields[3], plan.runDir).toBe(plan.choice?.resumeAt?.toString() ?? "-");
    }
    // The truncated newest file is not where the run resumes from.
    expect(rowOf(out, "fvcore_truncated_newest")).toMatch(
      /^fvcore_truncated_newest\s+fvcore\s+model_0000009\.pth\s+10\s/,
    );
  });

  it("problems are the top finding's words, not codes; healthy runs say -", async () => {
    const { out } = await ckpt("audit", outputs);
    expect(rowOf(out, "fvcore_dangling")).toMatch(
      /last_checkpoint names model_0000019\.pth, which does not exist: resume fails \(FileNotFoundError\)$/,
    );
    expect(rowOf(out, "fvcore_killed_mid_save")).toContain("model_0000019.pth is truncated");
    expect(rowOf(out, "fvcore_healthy")).toMatch(/\s-$/);
    expect(out).not.toMatch(/pointer-problem|framework-resume-differs|candidate-broken/);
  });

  it("the command that fixes a run is listed whole, for the path as typed", async () => {
    const { out } = await ckpt("audit", "samples/outputs");
    const fixes = out.slice(out.indexOf("\nTo fix:\n")).split("\n");
    const fix = (run: string) =>
      fixes
        .find((l) => l.trimStart().startsWith(`${run} `))
        ?.trim()
        .split(/\s{2,}/)[1];
    expect(fix("fvcore_dangling")).toBe("ckpt resume-plan --write samples/outputs/fvcore_dangling");
    expect(fix("trackron_model_only")).toBe("ckpt repair samples/outputs/trackron_model_only");
    expect(fix("hf_missing_scheduler")).toBe('trainer.train(resume_from_checkpoint="checkpoint-3")');
    expect(fix("fvcore_healthy")).toBeUndefined();
    expect(fix("fvcore_finished")).toBeUndefined(); // a finished run has nothing to fix
  });

  it("the summary line names the runs that need attention, and only those", async () => {
    const plans = (JSON.parse((await ckpt("audit", outputs, "--json")).out) as { runs: Plan[] }).runs;
    const last = (await ckpt("audit", outputs)).out.trim().split("\n").at(-1) ?? "";
    const named = last.slice(last.indexOf("; needs attention: ") + "; needs attention: ".length).split(", ");
    const expected = plans
      .filter((p) => p.findings.some((f) => f.severity !== "info"))
      .map((p) => basename(p.runDir));
    expect(named).toEqual(expected);
    expect(named).toContain("fvcore_dangling");
    expect(named).not.toContain("fvcore_healthy");
  });
});

describe("run names are relative to the argument they came from, never '.'", () => {
  it("runs under one tree: their path inside it", async () => {
    const { out } = await ckpt("audit", outputs);
    const names = out
      .split("\n")
      .slice(1)
      .map((l) => l.split(" ")[0]);
    expect(names).toContain("lightning_run");
    expect(names).not.toContain(".");
  });

  it("several run directories (ckpt audit outputs/*): each is named by the argument as typed", async () => {
    const args = readdirSync(outputs)
      .filter((n) => statSync(join(outputs, n)).isDirectory() && n !== "notes_only")
      .map((n) => `${relative(ROOT, outputs)}/${n}`);
    const { out } = await ckpt("audit", ...args, "--json");
    expect(JSON.parse(out).runs).toHaveLength(args.length);
    const text = (await ckpt("audit", ...args)).out;
    for (const arg of args) expect(text).toMatch(new RegExp(`^${arg}\\s`, "m"));
    expect(text).not.toMatch(/^\.\s/m);
  });

  it("a trailing slash is tidied; a run that is the working directory is named by its directory", () => {
    expect(
      runNames([join(ROOT, "samples/outputs/timm_run")], ["samples/outputs/timm_run/"]).get(
        join(ROOT, "samples/outputs/timm_run"),
      ),
    ).toEqual({
      label: "samples/outputs/timm_run",
      path: "samples/outputs/timm_run",
    });
    const run = join(scratch, "my_run");
    cpSync(join(outputs, "fvcore_dangling"), run, { recursive: true });
    const { COLUMNS: _, ...env } = process.env;
    const result = ckptBinary(["audit", "."], env, run).stdout; // as a person inside the run would
    expect(result).toMatch(/^my_run\s+fvcore\s/m);
    expect(result).toContain("ckpt resume-plan --write .");
  });

  it("two trees holding runs of the same name: each is named by its path", async () => {
    for (const tree of ["a", "b"]) {
      mkdirSync(join(scratch, tree), { recursive: true });
      cpSync(join(outputs, "fvcore_healthy"), join(scratch, tree, "run"), { recursive: true });
    }
    const { out } = await ckpt("audit", join(scratch, "a"), join(scratch, "b"));
    expect(out).toMatch(new RegExp(`^${join(scratch, "a", "run")}\\s`, "m"));
    expect(out).toMatch(new RegExp(`^${join(scratch, "b", "run")}\\s`, "m"));
  });
});
