import type { ResumePlan } from "../inspect/runs/plan.js";
import { REWRITABLE_POINTER } from "../inspect/runs/pointerStatus.js";
import { basename, resolve } from "../reader/posixPath.js";

/**
 * Which pointer `--write` and `repair` would write, and with what: pure decisions on a plan, portable (the
 * page shows the same fix the CLI prints); `resumeWrite.ts` does the writing.
 */

/** What the framework expects in its pointer file (conventions.md, "Pointer-file content formats"). */
export function pointerContent(plan: ResumePlan, chosen: string): string | undefined {
  switch (plan.pointer?.kind) {
    case "fvcore":
      return basename(chosen); // fvcore joins the basename with save_dir; no newline
    case "mmengine":
      return resolve(plan.runDir, chosen); // mmengine reads the path unjoined: absolute, no newline
    case "deepspeed":
      return chosen.split("/")[0]; // the tag: the global_stepN directory name
    case "megatron": {
      // save_checkpoint writes str(iteration) or "release", no newline; a repaired copy has no such name.
      const dir = chosen.split("/")[0] ?? "";
      if (dir === "release") return dir;
      const iteration = /^iter_(\d{7,})$/.exec(dir)?.[1];
      return iteration === undefined ? undefined : String(Number(iteration));
    }
    default:
      return undefined; // a link (Lightning's last.ckpt, mmcv's latest.pth) is not ckpt's to rewrite
  }
}

/** Whether `--write` / `repair` rewrite the run's pointer: it is broken, or it must name a repaired copy. */
export function willRewritePointer(plan: ResumePlan, replacing: boolean): boolean {
  if (!plan.pointer || !plan.choice || pointerContent(plan, plan.choice.file) === undefined) return false;
  return replacing || REWRITABLE_POINTER.has(plan.pointer.status);
}
