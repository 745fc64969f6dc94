import { planResume, type ResumePlan, type VerifyMode } from "../../inspect/runs/plan.js";
import { ReaderError } from "../../reader/errors.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { renderResumePlanText } from "../render/resumePlanText.js";

export interface ResumePlanCommandOptions {
  readonly json: boolean;
  readonly verify: VerifyMode;
  readonly config: string | undefined;
  readonly write: boolean;
}

/** Exit 0 when the run resumes fully, 1 when it does not, 2 for unusable input. */
export function exitCodeForPlan(plan: ResumePlan): 0 | 1 {
  return plan.resumable ? 0 : 1;
}

export async function runResumePlan(
  runDir: string,
  options: ResumePlanCommandOptions,
  io: Output,
  write?: (plan: ResumePlan) => Promise<string[]>,
): Promise<number> {
  let plan: ResumePlan;
  try {
    plan = await planResume(runDir, { verify: options.verify, configFile: options.config });
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(runDir, error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
  const written = options.write && write ? await write(plan) : [];
  if (options.json) writeJson(options.write ? { ...plan, written } : plan, io.out);
  else io.out(renderResumePlanText(plan, written, io.style));
  return exitCodeForPlan(plan);
}
