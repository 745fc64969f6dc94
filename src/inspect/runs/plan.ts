import { ReaderError } from "../../reader/errors.js";
import { basename, isAbsolute, normalize, relative } from "../../reader/posixPath.js";
import { type FindingReport, findingReport } from "../findings.js";
import { CONVENTIONS, type ConventionId, counterInName } from "../resume/conventions.js";
import type { TreeFiles } from "../treeFiles.js";
import { type CandidateReport, examineCandidate, verifyCandidate } from "./candidates.js";
import { type Choice, choiceOf, choose, newestFirst } from "./choice.js";
import { findRunConfig, readTrainingConfig, type TrainingConfig } from "./config.js";
import { CrcPlans } from "./crcPlans.js";
import { type FrameworkResume, predictFrameworkResume } from "./frameworkResume.js";
import {
  type CandidateRef,
  detectRunLayout,
  MEGATRON_TRACKER,
  type PointerKind,
  type RunLayout,
  TEXT_POINTER_KINDS,
} from "./layout.js";
import { frameworkAgrees, planFindings } from "./planFindings.js";
import { movedTarget, type PointerStatus, pointerStatus, REWRITABLE_POINTER } from "./pointerStatus.js";

export type { Choice } from "./choice.js";

/** The `ckpt.resume-plan/1` contract. */
export interface PointerReport {
  readonly kind: PointerKind;
  readonly file: string;
  readonly content: string | null;
  readonly target: string | null;
  readonly status: PointerStatus;
  /** With status "moved": the checkpoint in this run directory that the pointer's old path named. */
  readonly movedTo?: string;
}

export interface ResumePlan {
  readonly schema: "ckpt.resume-plan/1";
  readonly runDir: string;
  readonly convention: ConventionId;
  readonly conventionLabel: string;
  readonly evidence: string;
  readonly pointer: PointerReport | null;
  readonly candidates: CandidateReport[];
  readonly choice: Choice | null;
  readonly resumable: boolean;
  /**
   * The framework's own resume, run on the directory as it stands, resumes fully from the plan's choice
   * (exit code 0). False when its pointer is dangling, moved or broken, or it picks another checkpoint.
   */
  readonly resumesAsIs: boolean;
  /** The ckpt command that makes the framework's own resume right, when one can (`--write`, `repair`). */
  readonly fix: string | null;
  /**
   * Candidates that could not be read (permissions, I/O, still being written) and may be newer than the
   * choice: their bytes are not known to be bad, so nothing may be written until they can be read.
   */
  readonly unreadable: string[];
  /** What the framework's own auto-resume does with this directory as it is. */
  readonly framework: FrameworkResume | null;
  /** What to run to resume correctly. */
  readonly command: string | null;
  readonly config: TrainingConfig | null;
  readonly findings: FindingReport[];
}

/** How much tensor data to read: CRCs of nothing, of the checkpoint the plan trusts, or of every candidate. */
export type VerifyMode = "none" | "chosen" | "all";

export interface PlanOptions {
  readonly verify: VerifyMode;
  /** A YAML config (detectron2 style); by default the run dir's own `config.yaml`, if any. */
  readonly configFile?: string | undefined;
}

/** What planning a run in some tree needs besides the options a user gives. */
export interface RunPlanOptions extends PlanOptions {
  /** The tree the run lives in; `runDir` and `configFile` are absolute paths in it. */
  readonly fs: TreeFiles;
  /** The run directory as the user wrote it, for the fix command they will paste (default: `runDir`). */
  readonly displayDir?: string;
}

function pointerTargetRef(
  layout: RunLayout,
  refs: Map<string, CandidateRef>,
  fs: TreeFiles,
): CandidateRef | undefined {
  const target = layout.pointer?.target;
  if (!target) return undefined;
  const rel = relative(layout.runDir, normalize(target));
  const known = refs.get(rel);
  if (known) return known;
  // DeepSpeed's tag names a directory; a pointer may also name a file no pattern matched (a log file).
  const ref: CandidateRef = {
    path: normalize(target),
    rel,
    kind: layout.convention === "deepspeed" || layout.convention === "megatron" ? "dir" : "file",
    counterFromName: counterInName(CONVENTIONS[layout.convention].counterInName, target),
    mtimeMs: fs.mtimeMs(target),
    group: undefined,
  };
  refs.set(rel, ref);
  return ref;
}

const COMMANDS: Partial<Record<ConventionId, (file: string, dir: string) => string>> = {
  fvcore: () =>
    "train with --resume (last_checkpoint names the chosen file; `ckpt resume-plan --write` fixes it if not)",
  mmengine: (file) => `--resume ${file} (Runner(resume=True, load_from="${file}"))`,
  deepspeed: (file, dir) => `engine.load_checkpoint("${dir}", tag="${basename(file)}")`,
  megatron: (file, dir) => {
    // The tracker, not --ckpt-step: the distributed optimizer's distrib_optim.pt is found through the
    // tracker's iteration, and a tracker holding "release" keeps release semantics whatever the step.
    const target = file === "." ? dir : `${dir}/${file}`;
    const step = /iter_(\d+)$/.exec(target)?.[1];
    const load = target.slice(0, target.lastIndexOf("/"));
    const content = step === undefined ? "release" : String(Number(step));
    return `--load ${load} with ${MEGATRON_TRACKER} holding ${content} (\`ckpt resume-plan --write\` writes it)`;
  },

  lightning: (file) => `trainer.fit(model, ckpt_path="${file}")`,
  "hf-trainer": (file) => `trainer.train(resume_from_checkpoint="${file}")`,
  accelerate: (file) => `accelerator.load_state("${file}")`,
  timm: (file) => `train.py --resume ${file}`,
  fairseq: (file) => `fairseq-train ... --restore-file ${file}`,
  pytracking: (file) => `trainer.load_checkpoint("${file}")`,
  dcp: (file, dir) =>
    /step-\d+$/.test(file)
      ? `torchtitan --checkpoint.load_step ${/step-(\d+)$/.exec(file)?.[1]}`
      : `dcp.load(state_dict, checkpoint_id="${file === "." ? dir : file}")`,
  ultralytics: (file) => `yolo train resume model=${file}`,
  torchvision: (file) => `train.py --resume ${file} (with the run's other arguments)`,
  mmcv: (file) => `tools/train.py CONFIG --resume-from ${file}`,
  allennlp: (_file, dir) => `allennlp train CONFIG -s ${dir} --recover`,
  "imagenet-example": (file) => `main.py --resume ${file}`,
};

/**
 * Layouts some conventions share, told apart by what the files hold: fvcore's is detectron2's and Trackron's
 * (Trackron's files hold only the model); `epoch_N.pth` files are mmengine's or mmcv's (mmcv's have no
 * message_hub); a directory of loose files with counters in their names is a hand-written loop's. The run is
 * named after what its checkpoints say when they agree.
 */
function refineConvention(
  layoutConvention: ConventionId,
  candidates: readonly CandidateReport[],
): ConventionId {
  const seen = new Set(candidates.map((c) => c.convention).filter((c) => c !== null));
  const [only] = seen;
  switch (layoutConvention) {
    case "fvcore":
      if (seen.has("trackron")) return "trackron";
      return seen.size === 1 && only === "detectron2" ? only : layoutConvention;
    case "mmengine":
      return seen.size === 1 && only === "mmcv" ? only : layoutConvention;
    case "unknown":
      return seen.size === 1 && only !== undefined && only !== "state-dict" ? only : layoutConvention;
    default:
      return layoutConvention;
  }
}

function commandFor(convention: ConventionId, choice: Choice, runDir: string): string | null {
  const command = COMMANDS[convention]?.(choice.file, runDir) ?? null;
  if (choice.resumeAtSource !== "file-name" || choice.savedCounter === null) return command;
  const counter = choice.counterName ?? "counter";
  return `${choice.file} has no ${counter}: add ${counter}=${choice.savedCounter} to it first (the framework reads it from the file, not the name), then ${command ?? "resume"}`;
}

/**
 * What makes the framework's own resume right: `repair` when the chosen checkpoint's counter lives only in
 * its name (a repaired copy carries it), `resume-plan --write` when the pointer is broken or stale.
 */
function fixFor(
  layout: RunLayout,
  status: PointerStatus | undefined,
  choice: Choice | null,
  runDir: string,
  agrees: boolean,
): string | null {
  if (!choice) return null;
  // Shell-quoted only when it has to be, so the command can be copied as it is.
  const dir = /^[\w./@%+=:,-]+$/.test(runDir) ? runDir : `'${runDir.replaceAll("'", "'\\''")}'`;
  if (choice.resumeAtSource === "file-name") return `ckpt repair ${dir}`;
  const pointerWritable = layout.pointer !== undefined && TEXT_POINTER_KINDS.has(layout.pointer.kind);
  if (pointerWritable && status && (REWRITABLE_POINTER.has(status) || status === "stale") && !agrees)
    return `ckpt resume-plan --write ${dir}`;
  return null;
}

/**
 * The pointer's target as the plan shows it: relative to the run directory, except an absolute path in a tree
 * rooted at the run (a remote prefix), which names the training machine's file system and stays as written.
 */
function pointerTargetShown(runDir: string, target: string): string {
  return isAbsolute(target) && !isAbsolute(runDir) ? target : relative(runDir, normalize(target));
}

/**
 * Builds the plan for one run directory, an absolute path in `options.fs`'s tree. Throws `ReaderError` only
 * when the directory itself is unusable.
 */
export async function planRun(runDirInput: string, options: RunPlanOptions): Promise<ResumePlan> {
  const { fs } = options;
  const runDir = normalize(runDirInput);
  const shown = options.displayDir ?? runDirInput;
  if (!fs.exists(runDir)) throw new ReaderError("file-not-found", "no such directory", { file: shown });
  if (!fs.isDirectory(runDir)) {
    throw new ReaderError(
      "not-a-run-directory",
      "a file, not a run directory: resume-plan wants the directory a training run writes to",
      { file: shown },
    );
  }
  const layout = detectRunLayout(runDir, fs);
  const refs = new Map(layout.candidates.map((c) => [c.rel, c]));
  const targetRef = pointerTargetRef(layout, refs, fs);
  // Judged without verifying, a DCP step keeps what verifying it takes: the one chosen is not decoded again.
  const crcPlans = options.verify === "chosen" ? new CrcPlans() : undefined;
  const examine = (ref: CandidateRef, runConvention: ConventionId) =>
    examineCandidate(ref, {
      verify: options.verify === "all",
      runConvention,
      fs,
      ...(crcPlans ? { crcPlans } : {}),
    });
  const examineAll = async (runConvention: ConventionId) => {
    const reports = new Map<string, CandidateReport>();
    for (const ref of refs.values()) reports.set(ref.rel, await examine(ref, runConvention));
    return reports;
  };
  let runConvention: ConventionId = layout.convention;
  const reports = await examineAll(runConvention);
  if (runConvention === "fvcore" && refineConvention("fvcore", [...reports.values()]) === "trackron") {
    // A Trackron run: files that looked like plain fvcore (a repaired copy) are judged by Trackron's rules;
    // the Trackron-style files already were.
    runConvention = "trackron";
    for (const ref of refs.values()) {
      if (reports.get(ref.rel)?.convention !== "fvcore") continue;
      reports.set(ref.rel, await examine(ref, runConvention));
    }
  }

  // Before trusting a checkpoint with hours of GPU time, stream it through its CRCs: the pointer target, then
  // the chosen one (and, if that one is corrupt, the next choice). Each once: the target is often the choice.
  const verifiedFiles = new Set<string>();
  const verify = async (ref: CandidateRef): Promise<CandidateReport> => {
    const report = reports.get(ref.rel) as CandidateReport;
    if (verifiedFiles.has(ref.rel)) return report;
    verifiedFiles.add(ref.rel);
    const checked = await verifyCandidate(report, ref, {
      verify: true,
      runConvention,
      fs,
      ...(crcPlans ? { crcPlans } : {}),
    });
    reports.set(ref.rel, checked);
    return checked;
  };
  if (options.verify === "chosen" && targetRef) await verify(targetRef);
  let ordered = newestFirst([...reports.values()], refs, targetRef?.rel, layout.preferred);
  let chosen = choose(ordered);
  while (options.verify === "chosen" && chosen) {
    const checked = await verify(refs.get(chosen.file) as CandidateRef);
    if (checked.status === "ok") break;
    ordered = newestFirst([...reports.values()], refs, targetRef?.rel, layout.preferred);
    chosen = choose(ordered);
  }

  const configFile = options.configFile ?? findRunConfig(runDir, fs);
  const config = configFile ? readTrainingConfig(configFile, fs) : null;
  const target = targetRef ? reports.get(targetRef.rel) : undefined;
  const moved = movedTarget(layout, ordered, fs);
  const status = pointerStatus(layout, target, ordered, moved, fs);
  // The pointer target is reported among candidates only when it is one (a log file named by a pointer is not).
  const candidates = ordered.filter((c) => c !== target || layout.candidates.some((r) => r.rel === c.file));
  const choice = chosen ? choiceOf(chosen, layout.convention) : null;
  const convention = refineConvention(layout.convention, ordered);
  const framework = predictFrameworkResume({
    convention,
    layout,
    pointerTarget: target,
    candidates: ordered,
    modifiedMs: (file) => refs.get(file)?.mtimeMs ?? 0,
    maxIter: config?.maxIter,
  });

  const findings = planFindings({
    layout,
    status,
    target,
    moved,
    ordered,
    choice,
    framework,
    config,
    runDir,
    fs,
  });
  const rule = CONVENTIONS[convention];
  const resumable =
    choice?.verdict === "resumable" &&
    !(config?.maxIter !== undefined && (choice.resumeAt ?? 0) >= config.maxIter);
  const agrees = choice !== null && (framework === null || frameworkAgrees(framework, choice));
  const unreadable = ordered
    .filter(
      (c) => c.status === "unreadable" && (c.counter ?? Number.POSITIVE_INFINITY) >= (chosen?.counter ?? -1),
    )
    .map((c) => c.file);
  return {
    schema: "ckpt.resume-plan/1",
    runDir,
    convention,
    conventionLabel: rule.label,
    evidence: layout.evidence,
    pointer:
      layout.pointer && status
        ? {
            kind: layout.pointer.kind,
            file: layout.pointer.file,
            content: layout.pointer.content ?? null,
            target: layout.pointer.target ? pointerTargetShown(runDir, layout.pointer.target) : null,
            status,
            ...(moved ? { movedTo: moved.file } : {}),
          }
        : null,
    candidates,
    choice,
    resumable,
    resumesAsIs: resumable && agrees && unreadable.length === 0,
    fix: fixFor(layout, status, choice, shown, agrees),
    unreadable,
    framework,
    command: choice ? commandFor(convention, choice, runDir) : null,
    config,
    findings: findings.map(findingReport),
  };
}
