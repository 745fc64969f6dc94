import type { ConventionId } from "../resume/conventions.js";
import type { Component } from "../resume/verdict.js";
import type { CandidateReport } from "./candidates.js";
import type { RunLayout } from "./layout.js";

/**
 * What the framework's own automatic resume does with this run dir, since that is what users run. Each
 * convention's rule is the logic `conventions.md` records from its source.
 */
export type FrameworkOutcome = "resumes" | "starts-over" | "crashes" | "trains-nothing";

export interface FrameworkResume {
  /** What the framework loads, relative to the run dir (null when it loads nothing). */
  readonly file: string | null;
  readonly outcome: FrameworkOutcome;
  readonly startsAt: number | null;
  readonly restores: Component[];
  readonly resets: Component[];
  /** Why, in the framework's terms. */
  readonly why: string;
}

export interface FrameworkInputs {
  /** The run's convention, as its checkpoints confirmed the layout's guess (mmcv's files in an mmengine-like tree). */
  readonly convention: ConventionId;
  readonly layout: RunLayout;
  /** The candidate the run's pointer names (examined), when the convention has a pointer. */
  readonly pointerTarget: CandidateReport | undefined;
  readonly candidates: readonly CandidateReport[];
  /** When each candidate was last modified (ultralytics resumes the newest last.pt by time). */
  readonly modifiedMs: (file: string) => number;
  /** End of training (detectron2 `SOLVER.MAX_ITER`), when known. */
  readonly maxIter: number | undefined;
}

const TRAINING_STATE: Component[] = ["model", "optimizer", "scheduler", "counter"];

function restoresOf(c: CandidateReport): Component[] {
  return c.components.filter((s) => s.status === "present").map((s) => s.component);
}

/** Loading `candidate` the way torch does: it fails on what torch fails on, and ignores CRCs as torch does. */
function loadOutcome(candidate: CandidateReport, maxIter: number | undefined, how: string): FrameworkResume {
  const file = candidate.file;
  if (candidate.status !== "ok" && !candidate.problem?.torchLoads) {
    return {
      file,
      outcome: "crashes",
      startsAt: null,
      restores: [],
      resets: [],
      why: `${how} ${file}, which is ${candidate.status}: ${candidate.problem?.message ?? "unreadable"}`,
    };
  }
  const startsAt = candidate.resumeAt ?? 0;
  const restores = restoresOf(candidate);
  const resets = TRAINING_STATE.filter((c) => !restores.includes(c) && c !== "model").concat(
    candidate.missing.filter((c) => !TRAINING_STATE.includes(c)),
  );
  const corrupted = candidate.problem?.torchLoads
    ? " (torch does not check CRCs: the corrupted bytes load silently)"
    : "";
  if (maxIter !== undefined && startsAt >= maxIter) {
    return {
      file,
      outcome: "trains-nothing",
      startsAt,
      restores,
      resets,
      why: `${how} ${file}: it starts at ${startsAt}, at or past the end (${maxIter})`,
    };
  }
  const counterSaved = candidate.components.some((c) => c.component === "counter" && c.status === "present");
  return {
    file,
    outcome: counterSaved ? "resumes" : "starts-over",
    startsAt,
    restores,
    resets: [...new Set(resets)],
    why: counterSaved
      ? `${how} ${file} and continues at ${startsAt}${corrupted}`
      : `${how} ${file}, which holds no counter: training restarts at 0 with the loaded weights${corrupted}`,
  };
}

const startsOver = (why: string): FrameworkResume => ({
  file: null,
  outcome: "starts-over",
  startsAt: 0,
  restores: [],
  resets: TRAINING_STATE,
  why,
});

const crashes = (file: string | null, why: string): FrameworkResume => ({
  file,
  outcome: "crashes",
  startsAt: null,
  restores: [],
  resets: [],
  why,
});

function newest(
  candidates: readonly CandidateReport[],
  accept: (c: CandidateReport) => boolean = () => true,
) {
  return [...candidates].filter(accept).sort((a, b) => (b.counter ?? -1) - (a.counter ?? -1))[0];
}

function pointerDriven(inputs: FrameworkInputs, how: string, missingWhy: string): FrameworkResume {
  const pointer = inputs.layout.pointer;
  if (!pointer?.exists) return startsOver(missingWhy);
  const target = inputs.pointerTarget;
  if (!target || target.status === "missing") {
    return crashes(
      null,
      `${pointer.file} names ${pointer.content?.trim()}, which does not exist: FileNotFoundError`,
    );
  }
  return loadOutcome(target, inputs.maxIter, how);
}

/**
 * Megatron-LM's load_checkpoint: the tracker's iteration names `iter_{:07d}`; no tracker starts from random;
 * text that is neither an int nor `release` exits; `release` loads the weights only (no optimizer or RNG:
 * `if not release and not args.finetune`) and sets the iteration to 0.
 */
function megatronResume(i: FrameworkInputs): FrameworkResume {
  const pointer = i.layout.pointer;
  const how = "load_checkpoint reads latest_checkpointed_iteration.txt and loads";
  if (pointer?.exists && !pointer.target)
    return crashes(
      null,
      `${pointer.file} holds ${JSON.stringify(pointer.content?.trim())}: "Invalid metadata file", exit`,
    );
  const outcome = pointerDriven(
    i,
    how,
    "no latest_checkpointed_iteration.txt: 'could not find the metadata file ... will start from random'",
  );
  if (outcome.outcome === "crashes") return outcome;
  if (pointer?.content?.trim() !== "release") {
    // load_checkpoint loads optimizer, scheduler and RNG unless told not to; a KeyError or a missing
    // distrib_optim.pt there ends the run ("Unable to load optimizer from checkpoint ... exiting").
    const target = i.pointerTarget;
    const lost = (["optimizer", "scheduler", "rng"] as Component[]).filter((c) =>
      target?.missing.includes(c),
    );
    if (lost.length === 0) return outcome;
    return crashes(
      outcome.file,
      `${how} ${outcome.file}, which lacks ${lost.join(", ")}: load_checkpoint exits (--no-load-optim / --no-load-rng or --finetune skip them)`,
    );
  }
  return {
    ...outcome,
    outcome: "starts-over",
    startsAt: 0,
    restores: outcome.restores.filter((c) => c === "model"),
    resets: [...new Set([...outcome.resets, ...outcome.restores.filter((c) => c !== "model")])],
    why: `${how} release/: the weights only, at iteration 0 (a release checkpoint loads no optimizer or RNG)`,
  };
}

const RULES: Partial<Record<ConventionId, (inputs: FrameworkInputs) => FrameworkResume>> = {
  megatron: megatronResume,
  fvcore: (i) =>
    pointerDriven(
      i,
      "resume_or_load reads last_checkpoint and loads",
      "no last_checkpoint: resume_or_load loads MODEL.WEIGHTS and starts at 0",
    ),
  mmengine: (i) =>
    pointerDriven(
      i,
      "Runner(resume=True) reads last_checkpoint and loads",
      "no last_checkpoint: mmengine prints 'Did not find last_checkpoint' and starts at epoch 0",
    ),
  deepspeed: (i) =>
    pointerDriven(
      i,
      "load_checkpoint reads latest and loads",
      "no latest file: load_checkpoint warns and returns (None, None); training starts over",
    ),
  lightning: (i) => {
    const pointer = i.layout.pointer;
    // No lightning_logs: the files are where a ModelCheckpoint(dirpath=...) put them, and ckpt_path="last"
    // takes the newest last*.ckpt in that dirpath (`_find_last_checkpoints`: the stem matches ^last, then
    // the latest mtime), provided the script still passes that callback.
    const lasts = pointer ? [] : i.candidates.filter((c) => /(?:^|\/)last[^/]*\.ckpt$/.test(c.file));
    const newestLast = lasts.reduce<CandidateReport | undefined>(
      (best, c) => (best === undefined || i.modifiedMs(c.file) > i.modifiedMs(best.file) ? c : best),
      undefined,
    );
    if (newestLast)
      return loadOutcome(
        newestLast,
        i.maxIter,
        `ckpt_path="last" with the run's ModelCheckpoint(dirpath=...) finds the newest last*.ckpt, and loads`,
      );
    if (!pointer?.exists) {
      return startsOver(
        `ckpt_path="last" finds no last.ckpt in the current logger version (${pointer?.file ?? "none"}): Lightning warns and trains from scratch`,
      );
    }
    const target = i.candidates.find((c) => c.file === pointer.file);
    return target
      ? loadOutcome(target, i.maxIter, 'ckpt_path="last" loads')
      : startsOver("no last checkpoint");
  },
  "hf-trainer": (i) => {
    // get_last_checkpoint: the highest checkpoint-N by number, with no completeness check.
    const last = newest(i.candidates);
    if (!last)
      return {
        ...crashes(null, "no checkpoint-N directory: resume_from_checkpoint=True raises ValueError"),
        startsAt: null,
      };
    if (last.status === "incomplete-dir") {
      // Under DeepSpeed the directory's save is its global_step* tag (deepspeed_load_checkpoint raises instead).
      const why =
        last.problem && last.problem.code !== "model-file-missing"
          ? `${last.file}: ${last.problem.message}`
          : `${last.file} has no model weights: "Can't find a valid checkpoint"`;
      return crashes(last.file, why);
    }
    if (last.status !== "ok") return loadOutcome(last, i.maxIter, "resume_from_checkpoint=True loads");
    const has = (c: Component) => last.components.some((s) => s.component === c && s.status === "present");
    const loaded = loadOutcome(
      last,
      i.maxIter,
      "resume_from_checkpoint=True picks the highest checkpoint-N,",
    );
    // Without trainer_state.json the weights, optimizer and scheduler still load; only the step starts at 0.
    const outcome = has("counter")
      ? loaded
      : {
          ...loaded,
          why: `${last.file} has no trainer_state.json: the Trainer loads what the directory holds and starts at step 0`,
        };
    // Optimizer and scheduler are loaded only when both files exist; one missing silently resets both.
    if (!has("optimizer") || !has("scheduler")) {
      return {
        ...outcome,
        restores: outcome.restores.filter((c) => c !== "optimizer" && c !== "scheduler"),
        resets: [...new Set([...outcome.resets, "optimizer", "scheduler"] as Component[])],
        why: `${outcome.why}; optimizer.pt and scheduler.pt are loaded only together, so both restart`,
      };
    }
    return outcome;
  },
  accelerate: (i) => {
    const last = newest(i.candidates);
    if (!last) return crashes(null, "no checkpoint_N directory");
    if (last.status !== "ok")
      return loadOutcome(last, i.maxIter, "load_state() loads the last checkpoint_N,");
    if (last.missing.includes("optimizer") || last.missing.includes("scheduler")) {
      return crashes(
        last.file,
        `${last.file} lacks an optimizer or scheduler file, which load_state loads unconditionally`,
      );
    }
    return loadOutcome(last, i.maxIter, "load_state() loads");
  },
  fairseq: (i) => {
    // --restore-file defaults to checkpoint_last.pt in save_dir; without it, training starts from scratch.
    const last = i.candidates.find((c) => /(?:^|\/)checkpoint_last\.pt$/.test(c.file));
    return last
      ? loadOutcome(last, i.maxIter, "load_checkpoint restores --restore-file")
      : startsOver("no checkpoint_last.pt: fairseq trains from scratch");
  },
  timm: (i) => {
    const last = i.candidates.find((c) => c.file.endsWith("last.pth.tar"));
    return last
      ? loadOutcome(last, i.maxIter, "train.py --resume loads")
      : startsOver("no last.pth.tar to pass to --resume");
  },
  pytracking: (i) => {
    // load_checkpoint(): sorted(glob(...*_ep*.pth.tar))[-1], by name, unchecked.
    const last = [...i.candidates].sort((a, b) => a.file.localeCompare(b.file)).at(-1);
    return last
      ? loadOutcome(last, i.maxIter, "load_checkpoint() takes the last file by name,")
      : startsOver("no *_ep*.pth.tar file");
  },
  ultralytics: ultralyticsResume,
  allennlp: allennlpResume,
  torchvision: (i) => {
    // The reference scripts have no auto-resume: the documented way is --resume output_dir/checkpoint.pth.
    const latest = i.candidates.find((c) => /(?:^|\/)checkpoint\.pth$/.test(c.file));
    if (!latest) return startsOver("no checkpoint.pth to pass to --resume");
    if (
      latest.status === "ok" &&
      (latest.missing.includes("optimizer") || latest.missing.includes("scheduler"))
    )
      return crashes(
        latest.file,
        `${latest.file} lacks optimizer or lr_scheduler, which --resume loads: KeyError`,
      );
    return loadOutcome(latest, i.maxIter, "train.py --resume loads");
  },
  mmcv: (i) => {
    // mmdet --auto-resume (find_latest_checkpoint): latest.pth when it exists, else the highest epoch_N/iter_N.
    const pointer = i.layout.pointer;
    if (pointer?.exists && i.pointerTarget && i.pointerTarget.status !== "missing")
      return loadOutcome(i.pointerTarget, i.maxIter, "runner.resume loads latest.pth ->");
    const last = newest(i.candidates);
    return last
      ? loadOutcome(last, i.maxIter, "--auto-resume finds no latest.pth and loads the highest-numbered")
      : startsOver("no epoch_N.pth / iter_N.pth: training starts at epoch 0");
  },
  dcp: (i) => {
    // A directory dcp.save wrote, not torchtitan's step-N: the training script's own dcp.load reads it.
    const single = i.candidates.length === 1 && i.candidates[0]?.file === "." ? i.candidates[0] : undefined;
    if (single) return loadOutcome(single, i.maxIter, "dcp.load(state_dict, checkpoint_id=DIR) reads");
    // torchtitan's _find_load_step: the max N of the step-N names whose .metadata exists (by name, not by
    // the step saved inside).
    const stepOf = (c: CandidateReport) => Number(/step-(\d+)$/.exec(c.file)?.[1] ?? -1);
    const last = i.candidates
      .filter((c) => c.status !== "incomplete-dir")
      .sort((a, b) => stepOf(b) - stepOf(a))[0];
    return last
      ? loadOutcome(last, i.maxIter, "torchtitan loads the highest step-N with .metadata,")
      : startsOver("no complete step-N directory");
  },
};

/** Ultralytics: `yolo train resume model=.../last.pt`, or `resume=True`, which takes the newest last*.pt. */
function ultralyticsResume(i: FrameworkInputs): FrameworkResume {
  // get_latest_run(): max(glob("**/last*.pt", recursive=True), key=os.path.getctime).
  const last = i.candidates
    .filter((c) => /(?:^|\/)last[^/]*\.pt$/.test(c.file))
    .sort((a, b) => i.modifiedMs(b.file) - i.modifiedMs(a.file))[0];
  if (!last) {
    return crashes(
      null,
      "no weights/last.pt: resume raises FileNotFoundError('Resume checkpoint not found')",
    );
  }
  if (last.finished) {
    return crashes(
      last.file,
      `${last.file} was stripped when training finished (${last.finished.from} = ${last.finished.value}): start_epoch = ${last.finished.value + 1}, and resume fails its assert "training ... is finished, nothing to resume"`,
    );
  }
  return loadOutcome(last, i.maxIter, "resume=True loads the newest last.pt,");
}

/** AllenNLP `--recover`: the latest (epoch, batch) among model_state files, loaded with its training state. */
function allennlpResume(i: FrameworkInputs): FrameworkResume {
  const point = (file: string) => {
    const match = /_state_(?:e(\d+)_b(\d+)|epoch_(\d+))\.th$/.exec(file);
    return match ? [Number(match[1] ?? match[3]), Number(match[2] ?? 0)] : [-1, -1];
  };
  const latest = [...i.candidates].sort((a, b) => {
    const [ea, ba] = point(a.file);
    const [eb, bb] = point(b.file);
    return (eb as number) - (ea as number) || (bb as number) - (ba as number);
  })[0];
  if (!latest)
    return startsOver("no model_state_*.th: the Checkpointer finds nothing and training starts over");
  return loadOutcome(latest, i.maxIter, "--recover loads the latest model_state and training_state,");
}

export function predictFrameworkResume(inputs: FrameworkInputs): FrameworkResume | null {
  const convention = inputs.convention;
  const rule = RULES[convention === "trackron" || convention === "detectron2" ? "fvcore" : convention];
  return rule ? rule(inputs) : null;
}
