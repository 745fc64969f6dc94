import { join } from "node:path";
import { examineCandidate } from "../inspect/runs/candidates.js";
import { localFiles, planResume } from "../inspect/runs/node.js";
import type { ResumePlan } from "../inspect/runs/plan.js";
import type { PickleEdit } from "./pickleEdit.js";
import { repairCheckpointFile } from "./repairFile.js";
import { refuseIfUnreadable, willRewritePointer, writeResumeFiles } from "./resumeWrite.js";

/**
 * `ckpt repair RUN_DIR`: applies the resume plan. A chosen checkpoint whose counter lives only in its file
 * name (Trackron's model_0059999.pth) gets a repaired copy beside it with the counter inside; the pointer is
 * moved to it (old pointer kept as a backup) and the manifest written. What was never saved is said plainly.
 */
export interface RunRepairStep {
  readonly action: "write-checkpoint" | "point" | "manifest" | "nothing";
  readonly detail: string;
}

export interface RunRepairResult {
  readonly plan: ResumePlan;
  readonly dryRun: boolean;
  readonly steps: RunRepairStep[];
  /** What cannot be repaired, and what resumes imperfectly because of it. */
  readonly limits: string[];
  readonly written: string[];
}

/** `model_0000019.pth` -> `model_0000019.resumable.pth`; `net_ep0003.pth.tar` -> `net_ep0003.resumable.pth.tar`. */
export function resumableName(file: string): string {
  const match = /^(.*?)((?:\.pth\.tar|\.[^./]+))$/.exec(file);
  return match ? `${match[1]}.resumable${match[2]}` : `${file}.resumable`;
}

function limitsOf(plan: ResumePlan): string[] {
  const choice = plan.choice;
  if (!choice) return ["no checkpoint in this run can be loaded: there is nothing to repair from"];
  const chosen = plan.candidates.find((c) => c.file === choice.file);
  const limits: string[] = [];
  const state = (component: string) => chosen?.components.find((c) => c.component === component);
  if (state("optimizer")?.status === "missing") {
    limits.push(
      "optimizer state (momentum, Adam moments) was never saved and cannot be recreated: the optimizer restarts from zero state",
    );
  }
  const scheduler = state("scheduler");
  if (scheduler?.status === "not-needed")
    limits.push(`the LR schedule is recomputed from the counter: ${scheduler.why}`);
  else if (scheduler?.status === "missing") {
    limits.push(
      "the LR scheduler state was never saved: the schedule restarts unless the training code steps it to the counter",
    );
  }
  if (state("scaler")?.status === "missing")
    limits.push("the AMP loss scale restarts from its initial value");
  if (state("rng")?.status === "missing")
    limits.push("RNG state was not saved: data order after resume differs from an uninterrupted run");
  return limits;
}

export async function repairRun(runDir: string, options: { dryRun: boolean }): Promise<RunRepairResult> {
  const plan = await planResume(runDir, { verify: "chosen" });
  refuseIfUnreadable(plan);
  const steps: RunRepairStep[] = [];
  const written: string[] = [];
  const choice = plan.choice;
  const chosen = choice ? plan.candidates.find((c) => c.file === choice.file) : undefined;
  if (!choice || !chosen) {
    return {
      plan,
      dryRun: options.dryRun,
      steps: [{ action: "nothing", detail: "no usable checkpoint" }],
      limits: limitsOf(plan),
      written,
    };
  }

  let replacement: Awaited<ReturnType<typeof examineCandidate>> | undefined;
  if (
    choice.resumeAtSource === "file-name" &&
    chosen.counter !== null &&
    choice.counterName &&
    chosen.kind === "file"
  ) {
    const edits: PickleEdit[] = [{ kind: "set-counter", name: choice.counterName, value: chosen.counter }];
    const target = resumableName(choice.file);
    steps.push({
      action: "write-checkpoint",
      detail: `${target}: ${choice.file} with ${choice.counterName}=${chosen.counter} added (from its file name), tensors copied byte for byte`,
    });
    if (!options.dryRun) {
      repairCheckpointFile(join(plan.runDir, choice.file), join(plan.runDir, target), edits);
      written.push(target);
      replacement = await examineCandidate(
        {
          path: join(plan.runDir, target),
          rel: target,
          kind: "file",
          counterFromName: chosen.counter,
          mtimeMs: Date.now(),
          group: undefined,
        },
        { verify: true, runConvention: plan.convention, fs: localFiles() },
      );
    }
  }

  const willWrite = steps.some((step) => step.action === "write-checkpoint");
  if (plan.pointer && willRewritePointer(plan, willWrite)) {
    const to = willWrite ? resumableName(choice.file) : choice.file;
    steps.push({
      action: "point",
      detail: `${plan.pointer.file} -> ${to} (the old pointer is kept as a backup)`,
    });
  }
  steps.push({ action: "manifest", detail: "resume-manifest.json" });
  if (!options.dryRun) written.push(...(await writeResumeFiles(plan, replacement ? { replacement } : {})));
  return { plan, dryRun: options.dryRun, steps, limits: limitsOf(plan), written };
}
