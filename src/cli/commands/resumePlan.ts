import { planResume } from "../../inspect/runs/node.js";
import type { ResumePlan, VerifyMode } from "../../inspect/runs/plan.js";
import { planRemoteResume } from "../../inspect/runs/remoteRuns.js";
import { ReaderError } from "../../reader/errors.js";
import { isRemotePath } from "../../reader/remote/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { refuseRemote } from "../remote.js";
import { writeJson } from "../render/json.js";
import { renderResumePlanText } from "../render/resumePlanText.js";
import { transferLine } from "../transfer.js";

export interface ResumePlanCommandOptions {
  readonly json: boolean;
  readonly verify: VerifyMode;
  readonly config: string | undefined;
  readonly write: boolean;
}

/**
 * 0 when the run resumes fully with the framework's own resume, as the directory stands; 1 when it does
 * not (the framework would go wrong, or the best checkpoint loses state); 2 when a checkpoint that may be
 * the newest cannot be read, so no plan can be trusted.
 */
export function exitCodeForPlan(plan: ResumePlan): 0 | 1 | 2 {
  if (plan.unreadable.length > 0 || plan.pointer?.status === "unreadable-target") return 2;
  return plan.resumesAsIs ? 0 : 1;
}

export async function runResumePlan(
  runDir: string,
  options: ResumePlanCommandOptions,
  io: Output,
  write?: (plan: ResumePlan) => Promise<string[]>,
): Promise<number> {
  let plan: ResumePlan;
  try {
    if (isRemotePath(runDir)) {
      // Writes stay local: the fix a remote plan names is for wherever the run directory is a disk.
      if (options.write)
        refuseRemote(
          [runDir],
          "resume-plan --write",
          "writes local files only: run it where the run directory is a disk",
        );
      if (options.config !== undefined)
        refuseRemote(
          [runDir],
          "resume-plan --config",
          "reads a remote run's own config.yaml: leave --config out",
        );
      plan = await planRemoteResume(runDir, { verify: options.verify });
    } else {
      plan = await planResume(runDir, { verify: options.verify, configFile: options.config });
    }
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(runDir, error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
  let written: string[] = [];
  if (options.write && write) {
    try {
      written = await write(plan);
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      io.err(`${formatErrorLine(errorReport(runDir, error))}\n`);
      if (!options.json) io.out(renderResumePlanText(plan, [], io.style));
      return 2;
    }
  }
  if (options.json) writeJson(options.write ? { ...plan, written } : plan, io.out);
  else {
    io.out(renderResumePlanText(plan, written, io.style));
    if ("transfer" in plan) io.out(transferLine(plan.transfer as Transfer));
  }
  return exitCodeForPlan(plan);
}
