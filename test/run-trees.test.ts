import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { auditTree } from "../src/inspect/runs/audit.js";
import { audit } from "../src/inspect/runs/node.js";
import type { ResumePlan } from "../src/inspect/runs/plan.js";
import { treeFiles } from "../src/inspect/treeFiles.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { memoryTreeOf } from "./helpers/sharded.js";

/**
 * Run analysis reads through a tree, not the file system: the sample runs copied into memory (as a dropped
 * folder or an object store presents them: no symbolic links) are judged as they are on disk.
 */
const outputs = join(SAMPLES_DIR, "outputs");

/** What a plan decides, without the paths that name where the tree is. */
function decision(plan: ResumePlan) {
  return {
    convention: plan.convention,
    choice: plan.choice?.file ?? null,
    verdict: plan.choice?.verdict ?? null,
    resumeAt: plan.choice?.resumeAt ?? null,
    resumable: plan.resumable,
    resumesAsIs: plan.resumesAsIs,
    pointer: plan.pointer?.status ?? null,
    candidates: plan.candidates.map((c) => [c.file, c.status, c.verdict]),
    findings: plan.findings.map((f) => f.code).sort(),
  };
}

describe("runs judged through a TreeSource", () => {
  it("every sample run in an in-memory tree gets the plan it gets on disk", async () => {
    const onDisk = await audit([outputs], { verify: "chosen", jobs: 1 });
    const inMemory = await auditTree(["/"], {
      verify: "chosen",
      jobs: 1,
      fs: treeFiles(memoryTreeOf(outputs)),
    });
    const byName = (runs: ResumePlan[], root: string) =>
      new Map(runs.map((r) => [r.runDir.slice(root.length).replace(/^\//, ""), r]));
    const disk = byName(onDisk.runs, outputs);
    const memory = byName(inMemory.runs, "/");
    // Runs whose pointer is a symbolic link read differently where a tree has no links (a copy is the file).
    const linked = new Set(["mmcv_epoch_run", "mmcv_iter_run", "lightning_dirpath_link"]);
    expect([...memory.keys()].sort()).toEqual([...disk.keys()].sort());
    expect(disk.size).toBeGreaterThan(20);
    for (const [name, plan] of disk) {
      if (linked.has(name.split("/")[0] as string)) continue;
      expect(decision(memory.get(name) as ResumePlan), name).toEqual(decision(plan));
    }
  });
});
