import { existsSync, statSync } from "node:fs";
import { basename, relative, resolve } from "node:path";
import { ReaderError } from "../../reader/errors.js";
import { readPointer } from "../../reader/pointer.js";
import { FileSource } from "../../reader/source.js";
import { type Finding, type FindingReport, findingReport } from "../findings.js";
import { CONVENTIONS, type ConventionId, counterInName, nameCounterRule } from "../resume/conventions.js";
import type { Component, Verdict } from "../resume/verdict.js";
import { type CandidateReport, examineCandidate } from "./candidates.js";
import { findRunConfig, readTrainingConfig, type TrainingConfig } from "./config.js";
import { type FrameworkResume, predictFrameworkResume } from "./frameworkResume.js";
import { type CandidateRef, detectRunLayout, type RunLayout } from "./layout.js";
import { movedTarget, type PointerStatus, pointerStatus } from "./pointerStatus.js";

/** The `ckpt.resume-plan/1` contract. */
export interface PointerReport {
  readonly file: string;
  readonly content: string | null;
  readonly target: string | null;
  readonly status: PointerStatus;
  /** With status "moved": the checkpoint in this run directory that the pointer's old path named. */
  readonly movedTo?: string;
}

export interface Choice {
  readonly file: string;
  /** The counter training should restart at: from the checkpoint, or from its file name when only that has it. */
  readonly resumeAt: number | null;
  readonly counterName: string | null;
  /** What the counter's value means and how `resumeAt` follows from it (from the conventions table). */
  readonly counterMeaning: string | null;
  /** The counter's value as saved (in the file, or in its name). */
  readonly savedCounter: number | null;
  /** Where `resumeAt` comes from: the checkpoint (the framework will do this) or the file name (needs repair). */
  readonly resumeAtSource: "checkpoint" | "file-name" | null;
  readonly restores: Component[];
  readonly resets: Component[];
  readonly verdict: CandidateReport["verdict"];
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

/** At equal counters, the checkpoint that restores more comes first (a repaired copy before its original). */
function verdictRank(c: CandidateReport): number {
  if (c.status !== "ok") return 5;
  const rank: Record<Verdict, number> = {
    resumable: 0,
    incomplete: 1,
    "weights-only": 2,
    "training-state-only": 3,
    "not-a-training-checkpoint": 4,
  };
  return rank[c.verdict ?? "not-a-training-checkpoint"];
}

/** `last.pth.tar`, `last.ckpt`: the name a framework resumes from when several files hold the same state. */
const LAST_NAME = /(?:^|\/)last[^/]*$/;

/** Newest first: by counter, then what restores more, the pointer's target, a "last" file, modification time. */
/** Element-wise comparison of two name orders (absent sorts first). */
function compareOrder(a: readonly number[] | undefined, b: readonly number[] | undefined): number {
  const length = Math.max(a?.length ?? 0, b?.length ?? 0);
  for (let i = 0; i < length; i++) {
    const d = (a?.[i] ?? -1) - (b?.[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function newestFirst(
  candidates: readonly CandidateReport[],
  refs: ReadonlyMap<string, CandidateRef>,
  pointed: string | undefined,
  preferred: RegExp = LAST_NAME,
): CandidateReport[] {
  // Ties (model_final.pth and model_0000029.pth hold the same iteration) go to the file the run's own pointer
  // names; modification times come last, since a copy or a git checkout resets them.
  return [...candidates].sort(
    (a, b) =>
      (b.counter ?? -1) - (a.counter ?? -1) ||
      compareOrder(refs.get(b.file)?.nameOrder, refs.get(a.file)?.nameOrder) ||
      verdictRank(a) - verdictRank(b) ||
      Number(b.file === pointed) - Number(a.file === pointed) ||
      Number(preferred.test(b.file)) - Number(preferred.test(a.file)) ||
      (refs.get(b.file)?.mtimeMs ?? 0) - (refs.get(a.file)?.mtimeMs ?? 0),
  );
}

/** Re-checks a candidate with every record's CRC (streams its bytes). */
async function verified(
  candidate: CandidateReport,
  ref: CandidateRef,
  runConvention: ConventionId,
): Promise<CandidateReport> {
  if (candidate.status !== "ok") return candidate;
  return examineCandidate(ref, { verify: true, runConvention });
}

function pointerTargetRef(layout: RunLayout, refs: Map<string, CandidateRef>): CandidateRef | undefined {
  const target = layout.pointer?.target;
  if (!target) return undefined;
  const rel = relative(layout.runDir, resolve(target));
  const known = refs.get(rel);
  if (known) return known;
  // DeepSpeed's tag names a directory; a pointer may also name a file no pattern matched (a log file).
  const ref: CandidateRef = {
    path: resolve(target),
    rel,
    kind: layout.convention === "deepspeed" ? "dir" : "file",
    counterFromName: counterInName(CONVENTIONS[layout.convention].counterInName, target),
    mtimeMs: existsSync(target) ? statSync(target).mtimeMs : 0,
    group: undefined,
  };
  refs.set(rel, ref);
  return ref;
}

function choose(ordered: readonly CandidateReport[]): CandidateReport | undefined {
  const usable = ordered.filter(
    (c) =>
      c.status === "ok" &&
      // A checkpoint the framework marked finished (ultralytics' stripped last.pt) resumes nothing.
      c.finished === null &&
      c.verdict !== null &&
      c.verdict !== "not-a-training-checkpoint" &&
      c.verdict !== "training-state-only",
  );
  return usable.find((c) => c.verdict === "resumable") ?? usable[0];
}

function choiceOf(candidate: CandidateReport, convention: ConventionId): Choice {
  const rule = CONVENTIONS[candidate.convention ?? convention];
  const nameRule = nameCounterRule(rule, candidate.file);
  const restores = candidate.components.filter((c) => c.status === "present").map((c) => c.component);
  const fromCheckpoint = candidate.counterSource === "checkpoint";
  const resumeAt =
    candidate.counter === null
      ? (candidate.resumeAt ?? null)
      : fromCheckpoint
        ? candidate.resumeAt
        : (nameRule?.resumeAt(candidate.counter) ?? candidate.counter);
  return {
    file: candidate.file,
    resumeAt,
    counterName: candidate.counterName ?? nameRule?.name ?? null,
    counterMeaning: candidate.counterMeaning ?? nameRule?.meaning ?? null,
    savedCounter: candidate.counter,
    resumeAtSource: candidate.counter === null ? null : fromCheckpoint ? "checkpoint" : "file-name",
    restores,
    resets: candidate.missing,
    verdict: candidate.verdict,
  };
}

const COMMANDS: Partial<Record<ConventionId, (file: string, dir: string) => string>> = {
  fvcore: () =>
    "train with --resume (last_checkpoint names the chosen file; `ckpt resume-plan --write` fixes it if not)",
  mmengine: (file) => `--resume ${file} (Runner(resume=True, load_from="${file}"))`,
  deepspeed: (file, dir) => `engine.load_checkpoint("${dir}", tag="${basename(file)}")`,
  lightning: (file) => `trainer.fit(model, ckpt_path="${file}")`,
  "hf-trainer": (file) => `trainer.train(resume_from_checkpoint="${file}")`,
  accelerate: (file) => `accelerator.load_state("${file}")`,
  timm: (file) => `train.py --resume ${file}`,
  pytracking: (file) => `trainer.load_checkpoint("${file}")`,
  dcp: (file) => `torchtitan --checkpoint.load_step ${/step-(\d+)/.exec(file)?.[1] ?? "N"}`,
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

/** Builds the plan for one run directory. Throws `ReaderError` only when the directory itself is unusable. */
export async function planResume(runDirInput: string, options: PlanOptions): Promise<ResumePlan> {
  const runDir = resolve(runDirInput);
  const stats = statSync(runDir, { throwIfNoEntry: false });
  if (!stats) throw new ReaderError("file-not-found", "no such directory", { file: runDirInput });
  if (!stats.isDirectory()) {
    throw new ReaderError(
      "not-a-run-directory",
      "a file, not a run directory: resume-plan wants the directory a training run writes to",
      { file: runDirInput },
    );
  }
  const layout = detectRunLayout(runDir);
  const refs = new Map(layout.candidates.map((c) => [c.rel, c]));
  const targetRef = pointerTargetRef(layout, refs);
  const examineAll = async (runConvention: ConventionId) => {
    const reports = new Map<string, CandidateReport>();
    for (const ref of refs.values()) {
      reports.set(ref.rel, await examineCandidate(ref, { verify: options.verify === "all", runConvention }));
    }
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
      reports.set(ref.rel, await examineCandidate(ref, { verify: options.verify === "all", runConvention }));
    }
  }

  // Before trusting a checkpoint with hours of GPU time, stream it through its CRCs: the pointer target, then
  // the chosen one (and, if that one is corrupt, the next choice).
  if (options.verify === "chosen" && targetRef) {
    reports.set(
      targetRef.rel,
      await verified(reports.get(targetRef.rel) as CandidateReport, targetRef, runConvention),
    );
  }
  let ordered = newestFirst([...reports.values()], refs, targetRef?.rel, layout.preferred);
  let chosen = choose(ordered);
  while (options.verify === "chosen" && chosen) {
    const ref = refs.get(chosen.file) as CandidateRef;
    const checked = await verified(chosen, ref, runConvention);
    if (checked.status === "ok") break;
    reports.set(chosen.file, checked);
    ordered = newestFirst([...reports.values()], refs, targetRef?.rel, layout.preferred);
    chosen = choose(ordered);
  }

  const configFile = options.configFile ?? findRunConfig(runDir);
  const config = configFile ? readTrainingConfig(configFile) : null;
  const target = targetRef ? reports.get(targetRef.rel) : undefined;
  const moved = movedTarget(layout, ordered);
  const status = pointerStatus(layout, target, ordered, moved);
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
  });
  const rule = CONVENTIONS[convention];
  return {
    schema: "ckpt.resume-plan/1",
    runDir,
    convention,
    conventionLabel: rule.label,
    evidence: layout.evidence,
    pointer:
      layout.pointer && status
        ? {
            file: layout.pointer.file,
            content: layout.pointer.content ?? null,
            target: layout.pointer.target ? relative(runDir, resolve(layout.pointer.target)) : null,
            status,
            ...(moved ? { movedTo: moved.file } : {}),
          }
        : null,
    candidates,
    choice,
    resumable:
      choice?.verdict === "resumable" &&
      !(config?.maxIter !== undefined && (choice.resumeAt ?? 0) >= config.maxIter),
    framework,
    command: choice ? commandFor(convention, choice, runDir) : null,
    config,
    findings: findings.map(findingReport),
  };
}

interface FindingInputs {
  readonly layout: RunLayout;
  readonly status: PointerStatus | undefined;
  readonly target: CandidateReport | undefined;
  readonly moved: CandidateReport | undefined;
  readonly ordered: readonly CandidateReport[];
  readonly choice: Choice | null;
  readonly framework: FrameworkResume | null;
  readonly config: TrainingConfig | null;
  readonly runDir: string;
}

function planFindings(i: FindingInputs): Finding[] {
  const findings: Finding[] = [];
  const pointerFile = i.layout.pointer?.file ?? "pointer";
  if (i.status && i.status !== "ok") {
    findings.push({
      code: "pointer-problem",
      file: pointerFile,
      status: i.status,
      target: i.layout.pointer?.content?.trim() ?? null,
      detail: i.moved ? i.moved.file : (i.target?.problem?.message ?? null),
    });
  }
  for (const c of i.ordered) {
    if (c.status !== "ok" && c !== i.target) {
      findings.push({
        code: "candidate-broken",
        file: c.file,
        status: c.status,
        detail: c.problem?.message ?? "",
      });
    }
  }
  for (const c of i.ordered) {
    if (c.security === "dangerous" || c.security === "unknown" || c.security === "inconclusive") {
      findings.push({ code: "candidate-unsafe", file: c.file, verdict: c.security });
    }
  }
  const loaded = i.ordered.find((c) => c.file === i.framework?.file);
  if (loaded?.finished) {
    findings.push({
      code: "run-finished",
      label: CONVENTIONS[loaded.convention ?? i.layout.convention].label,
      counter: `${loaded.finished.from} = ${loaded.finished.value}`,
      epochs: loaded.finished.end,
    });
  }
  if (!i.choice) {
    if (!loaded?.finished) findings.push({ code: "no-usable-checkpoint", candidates: i.ordered.length });
  } else if (i.choice.verdict !== "resumable") {
    findings.push({ code: "resume-loses-state", file: i.choice.file, resets: i.choice.resets });
  }
  if (i.framework && i.choice) {
    const sameFile =
      i.framework.file !== null &&
      (i.framework.file === i.choice.file || i.framework.file.startsWith(`${i.choice.file}/`));
    const goesWrong =
      i.framework.outcome !== "resumes" ||
      !sameFile ||
      (i.choice.resumeAt !== null && i.framework.startsAt !== i.choice.resumeAt);
    if (goesWrong) {
      findings.push({
        code: "framework-resume-differs",
        outcome: i.framework.outcome,
        frameworkFile: i.framework.file,
        frameworkStartsAt: i.framework.startsAt,
        choiceFile: i.choice.file,
        choiceStartsAt: i.choice.resumeAt,
        why: i.framework.why,
      });
    }
  }
  const maxIter = i.config?.maxIter;
  if (
    maxIter !== undefined &&
    i.choice?.resumeAt !== null &&
    i.choice?.resumeAt !== undefined &&
    i.choice.resumeAt >= maxIter
  ) {
    findings.push({ code: "counter-past-end", resumeAt: i.choice.resumeAt, maxIter });
  }
  const weights = i.config?.modelWeights;
  if (weights && isPointerFile(weights, i.runDir)) findings.push({ code: "weights-names-pointer", weights });
  return findings;
}

/** `MODEL.WEIGHTS: outputs/last_checkpoint`: the text file itself, which torch.load rejects ("invalid load key"). */
function isPointerFile(weights: string, runDir: string): boolean {
  const name = basename(weights);
  if (name === "last_checkpoint" || name === "latest") return true;
  for (const path of [weights, resolve(runDir, name)]) {
    if (!existsSync(path)) continue;
    try {
      const source = FileSource.open(path);
      try {
        return readPointer(source) !== undefined;
      } finally {
        source.close();
      }
    } catch {
      return false;
    }
  }
  return false;
}
