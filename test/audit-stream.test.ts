import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeJson } from "../src/cli/render/json.js";
import { atLeast, type Severity } from "../src/inspect/findings.js";
import { type AuditReport, auditExitCode, auditTree, auditTreeStreamed } from "../src/inspect/runs/audit.js";
import { audit } from "../src/inspect/runs/node.js";
import type { ResumePlan } from "../src/inspect/runs/plan.js";
import { treeFiles } from "../src/inspect/treeFiles.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { memoryTreeOf } from "./helpers/sharded.js";

/**
 * `audit --json` writes each run as it is planned and keeps none (memory flat in the size of the tree): what
 * it prints must be what printing the whole report prints, and the summary and exit code, now counted run by
 * run, what the kept runs give.
 */
const outputs = join(SAMPLES_DIR, "outputs");

function printed(value: unknown): string {
  let text = "";
  writeJson(value, (t) => {
    text += t;
  });
  return text;
}

/** The exit code as it was defined on the kept runs: any finding at `failOn` or above, or a broken file. */
function exitCodeFromRuns(report: AuditReport, failOn: Severity): 0 | 1 {
  const runProblem = report.runs.some((r) => r.findings.some((f) => atLeast(f.severity, failOn)));
  return runProblem || report.files.some((f) => f.status !== "ok") ? 1 : 0;
}

describe("audit, streamed", () => {
  it("prints, run by run, exactly the JSON of the whole report, with the same exit code", async () => {
    const report = await audit([outputs], { verify: "chosen", jobs: 2 });
    expect(report.runs.length).toBeGreaterThan(20);
    const cli = await ckpt("audit", outputs, "--json");
    expect(cli.out).toBe(printed(report));
    expect(cli.code).toBe(exitCodeFromRuns(report, "error"));
    const strict = await ckpt("audit", outputs, "--json", "--fail-on", "warning");
    expect(strict.code).toBe(exitCodeFromRuns(report, "warning"));
    for (const failOn of ["error", "warning", "info"] as const)
      expect(auditExitCode(report, failOn)).toBe(exitCodeFromRuns(report, failOn));
  });

  it("hands each run on in order, before the audit ends, and keeps none of them", async () => {
    const fs = treeFiles(memoryTreeOf(outputs));
    const seen: ResumePlan[] = [];
    let begun = 0;
    const outline = await auditTreeStreamed(
      ["/"],
      { verify: "chosen", jobs: 4, fs },
      {
        begin: (head) => {
          expect(head).toEqual({ schema: "ckpt.audit/1", roots: ["/"] });
          begun++;
        },
        run: (plan) => seen.push(plan),
      },
    );
    expect(begun).toBe(1);
    expect("runs" in outline).toBe(false);
    const whole = await auditTree(["/"], { verify: "chosen", jobs: 1, fs: treeFiles(memoryTreeOf(outputs)) });
    expect(seen.map((r) => r.runDir)).toEqual(whole.runs.map((r) => r.runDir));
    // Counted from the plans themselves, not through the same run-by-run counter.
    const byVerdict: Record<string, number> = {};
    for (const r of whole.runs) {
      const v = r.choice?.verdict ?? "no usable checkpoint";
      byVerdict[v] = (byVerdict[v] ?? 0) + 1;
    }
    expect(outline.summary).toMatchObject({
      runs: whole.runs.length,
      resumable: whole.runs.filter((r) => r.resumable).length,
      noUsableCheckpoint: whole.runs.filter((r) => r.choice === null).length,
      byVerdict,
      findings: {
        error: whole.runs.flatMap((r) => r.findings).filter((f) => f.severity === "error").length,
        warning: whole.runs.flatMap((r) => r.findings).filter((f) => f.severity === "warning").length,
        info: whole.runs.flatMap((r) => r.findings).filter((f) => f.severity === "info").length,
      },
    });
  });

  it("puts runs a planner finishes out of order back in order, and stops at a planner's error", async () => {
    const fs = treeFiles(memoryTreeOf(outputs));
    const whole = await auditTree(["/"], { verify: "chosen", jobs: 1, fs });
    const byDir = new Map(whole.runs.map((r) => [r.runDir, r]));
    const order: string[] = [];
    // Finishes the runs last to first: nothing may come out until the first one is done.
    const outline = await auditTreeStreamed(
      ["/"],
      {
        verify: "chosen",
        jobs: 1,
        fs,
        planRuns: async (dirs, _verify, onPlan) => {
          for (let i = dirs.length - 1; i >= 0; i--) {
            if (i > 0) expect(order).toEqual([]);
            onPlan(i, byDir.get(dirs[i] as string) as ResumePlan);
          }
        },
      },
      { begin: () => {}, run: (plan) => order.push(plan.runDir) },
    );
    expect(order).toEqual(whole.runs.map((r) => r.runDir));
    expect(outline.summary).toEqual(whole.summary);

    const runs: string[] = [];
    const failing = auditTreeStreamed(
      ["/"],
      {
        verify: "chosen",
        jobs: 1,
        fs,
        planRuns: async (dirs, _verify, onPlan) => {
          onPlan(0, byDir.get(dirs[0] as string) as ResumePlan);
          throw new Error("worker died");
        },
      },
      { begin: () => {}, run: (plan) => runs.push(plan.runDir) },
    );
    await expect(failing).rejects.toThrow("worker died");
    expect(runs).toHaveLength(1);

    // A planner that reports fewer plans than runs (one written for the old, array-returning signature).
    const silent = auditTreeStreamed(
      ["/"],
      { verify: "chosen", jobs: 1, fs, planRuns: async () => {} },
      { begin: () => {}, run: () => {} },
    );
    await expect(silent).rejects.toThrow(/reported 0 plans/);
  });

  it("still says so, as JSON, when there is nothing to audit", async () => {
    const { code, out } = await ckpt("audit", join(SAMPLES_DIR, "outputs", "no-such-dir"), "--json");
    expect(code).toBe(2);
    expect(JSON.parse(out)).toMatchObject({ schema: "ckpt.error/1", code: "file-not-found" });
  });
});
