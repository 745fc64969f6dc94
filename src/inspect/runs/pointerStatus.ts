import { isAbsolute, relative } from "../../reader/posixPath.js";
import type { TreeFiles } from "../treeFiles.js";
import type { CandidateReport } from "./candidates.js";
import type { RunLayout } from "./layout.js";

/**
 * Whether a run's pointer file (fvcore/mmengine `last_checkpoint`, DeepSpeed `latest`, Lightning `last.ckpt`)
 * names a checkpoint the framework can load, judged on the candidates `plan.ts` has examined.
 */
/** How a run's pointer file stands, as `ckpt.resume-plan/1` reports it. */
export type PointerStatus =
  | "ok"
  | "missing"
  | "dangling"
  | "truncated-target"
  /** A sharded target with a file its metadata names gone (a rank's shard, `.metadata`): proven, not guessed. */
  | "incomplete-target"
  | "corrupt-target"
  /** The target exists but cannot be read (permissions, I/O, still being written): its bytes are not proven bad. */
  | "unreadable-target"
  | "not-a-checkpoint"
  | "stale"
  | "escapes-run-dir"
  | "moved";

/**
 * Pointers that `resume-plan --write` rewrites: the target is gone, or its bytes are proven damaged. A
 * pointer never moves away from a checkpoint ckpt merely could not read: that would throw away progress.
 */
export const REWRITABLE_POINTER: ReadonlySet<PointerStatus> = new Set([
  "missing",
  "dangling",
  "truncated-target",
  "incomplete-target",
  "corrupt-target",
  "not-a-checkpoint",
  "moved",
]);

/**
 * Whether `path` lies outside the run directory. A tree rooted at the run (a remote prefix: its paths are
 * relative) holds no absolute path: an absolute one names the file system of the machine that trained.
 */
function outsideRun(runDir: string, path: string): boolean {
  if (isAbsolute(path) && !isAbsolute(runDir)) return true;
  return relative(runDir, path).startsWith("..");
}

/**
 * The checkpoint a gone pointer target became when the run directory was moved or copied (a cluster's
 * /scratch/.../work_dirs/x to a laptop): mmengine writes absolute paths into last_checkpoint, so the copy's
 * pointer still names the old place, and mmengine's own resume fails with FileNotFoundError. The longest
 * tail of the old path that names a checkpoint here is what the pointer meant.
 */
export function movedTarget(
  layout: RunLayout,
  ordered: readonly CandidateReport[],
  fs: TreeFiles,
): CandidateReport | undefined {
  const target = layout.pointer?.target;
  if (!target || !isAbsolute(target) || fs.exists(target)) return undefined;
  if (!outsideRun(layout.runDir, target)) return undefined;
  const segments = target.split("/").filter((part) => part !== "");
  for (let start = 0; start < segments.length; start++) {
    const tail = segments.slice(start).join("/");
    // Not the pointer's own target, listed as a candidate that is missing: in a tree rooted at the run
    // (a remote prefix) the whole old path is a relative path too.
    const found = ordered.find((c) => c.file === tail && c.status !== "missing");
    if (found) return found;
  }
  return undefined;
}

export function pointerStatus(
  layout: RunLayout,
  target: CandidateReport | undefined,
  ordered: readonly CandidateReport[],
  moved: CandidateReport | undefined,
  fs: TreeFiles,
): PointerStatus | undefined {
  const pointer = layout.pointer;
  if (!pointer) return undefined;
  if (!pointer.exists) return "missing";
  if (moved) return "moved";
  if (!target || !pointer.target || !fs.exists(pointer.target)) return "dangling";
  if (outsideRun(layout.runDir, pointer.target)) return "escapes-run-dir";
  switch (target.status) {
    case "truncated":
      return "truncated-target";
    case "incomplete-dir":
    case "unfinished":
      return "incomplete-target";
    case "corrupt":
      return "corrupt-target";
    case "unreadable":
      return "unreadable-target";
    case "not-a-checkpoint":
      return "not-a-checkpoint";
    case "missing":
      return "dangling";
    default:
      break;
  }
  const newer = ordered.find(
    (c) =>
      c.status === "ok" &&
      (c.counter ?? -1) > (target.counter ?? -1) &&
      (c.verdict === target.verdict || c.verdict === "resumable"),
  );
  return newer ? "stale" : "ok";
}
