import type { KeyPathSpec } from "./lookup.js";

/**
 * What each training framework saves and how it resumes (`../shared/reference/conventions.md`), as data. One
 * generic verdict reads this table; adding a framework means adding a row, not a code path.
 */
export type ConventionId =
  | "detectron2"
  | "fvcore"
  | "trackron"
  | "pytracking"
  | "mmengine"
  | "mmcv"
  | "lightning"
  | "hf-trainer"
  | "accelerate"
  | "deepspeed"
  | "megatron"
  | "torchtune"
  | "fairseq"
  | "timm"
  | "torchvision"
  | "ultralytics"
  | "allennlp"
  | "imagenet-example"
  | "training-loop"
  | "dcp"
  | "state-dict"
  | "optimizer-state"
  | "unknown";

export type CounterName = "iteration" | "epoch" | "global_step" | "step";

/** How a component of the training state is kept by a convention. */
export type ComponentRule =
  | {
      readonly kind: "keys";
      readonly paths: readonly KeyPathSpec[];
      /**
       * An empty list or dict at the key means the run never had one (Lightning saves `lr_schedulers: []`
       * when no scheduler is configured): not missing, unused, for this reason.
       */
      readonly emptyMeansUnused?: string;
      /** The key saved as None means the run never had one (DeepSpeed's `lr_scheduler: None`). */
      readonly noneMeansUnused?: string;
    }
  | {
      /** Saved only when the feature is used (AMP scaler, EMA). */
      readonly kind: "optional-keys";
      readonly paths: readonly KeyPathSpec[];
      /** Why absence means the run did not use it, shown to people; without it, absence is simply not saved. */
      readonly absentMeansUnused?: string;
    }
  /** Not saved by design; the framework recomputes it from the counter (timm, pytracking, mmcv LR hooks). */
  | { readonly kind: "derived"; readonly why: string }
  /** Not part of this convention at all (fvcore saves no RNG). */
  | { readonly kind: "not-saved" };

/** Where a convention keeps its counter, and how the framework turns the saved value into a restart point. */
export interface CounterRule {
  readonly name: CounterName;
  readonly paths: readonly KeyPathSpec[];
  /** The counter value training restarts at, computed as the framework computes it from the saved one. */
  readonly resumeAt: (saved: number) => number;
  /** What the saved value means and how the restart point follows from it, for people. */
  readonly meaning: string;
  /** The rule applies only to files named like this (mmcv `iter_N.pth` count iterations, `epoch_N.pth` epochs). */
  readonly fileName?: RegExp;
  /** Saved values that mean "no counter" (ultralytics strips a finished run's `last.pt` to `epoch: -1`). */
  readonly stripped?: (saved: number) => boolean;
  /** Where the file keeps the counter value the run was configured to end at (ultralytics' `train_args.epochs`). */
  readonly end?: KeyPathSpec;
}

export interface ConventionRule {
  readonly id: ConventionId;
  readonly label: string;
  readonly model: ComponentRule;
  readonly optimizer: ComponentRule;
  readonly scheduler: ComponentRule;
  readonly scaler: ComponentRule;
  readonly rng: ComponentRule;
  readonly ema: ComponentRule;
  /** In order of preference: the first rule whose key holds an int is the counter. */
  readonly counters: readonly CounterRule[];
  /** Where the counter sits in a file or directory name, when the framework names files after it. */
  readonly counterInName: RegExp | undefined;
}

const keys = (...paths: KeyPathSpec[]): ComponentRule => ({ kind: "keys", paths });
const optional = (...paths: KeyPathSpec[]): ComponentRule => ({ kind: "optional-keys", paths });
const derived = (why: string): ComponentRule => ({ kind: "derived", why });
const notSaved: ComponentRule = { kind: "not-saved" };

/** A file that is one part of the state and nothing else (a bare state dict, a bare optimizer state). */
const ONE_PART_ONLY = {
  scheduler: notSaved,
  scaler: notSaved,
  rng: notSaved,
  ema: notSaved,
  counters: [],
  counterInName: undefined,
} as const;

const plusOne = (n: number) => n + 1;
const same = (n: number) => n;

/** fvcore's periodic files, and the copies `ckpt repair` writes beside them. */
export const FVCORE_NAME = /(?:^|\/)model_(\d{7})(?:\.resumable)?\.pth$/;
/** mmengine and mmcv name by-iteration checkpoints `iter_N.pth`; their counter is then `meta.iter`. */
const MM_ITER_NAME = /(?:^|\/)iter_\d+\.pth$/;

const fvcoreIteration: CounterRule = {
  name: "iteration",
  paths: [["iteration"]],
  resumeAt: plusOne,
  meaning: "start_iter = iteration + 1",
};

/** mmengine and mmcv: `meta.iter` for by-iteration runs, `meta.epoch` (epochs completed) for by-epoch runs. */
const mmCounters = (runner: string): CounterRule[] => [
  {
    name: "iteration",
    paths: [["meta", "iter"]],
    fileName: MM_ITER_NAME,
    resumeAt: same,
    meaning: `iterations done (${runner} by iteration); the loop continues from there`,
  },
  {
    name: "epoch",
    paths: [["meta", "epoch"]],
    resumeAt: same,
    meaning: `epochs finished (${runner} by epoch); the loop restarts at that 0-based epoch`,
  },
];

/** The keys hand-written loops use for each part; the PyTorch tutorial's names come first. */
const LOOP_MODEL: KeyPathSpec[] = [
  ["model_state_dict"],
  ["model"],
  ["state_dict"],
  ["net"],
  ["network"],
  ["model_state"],
];
const LOOP_OPTIMIZER: KeyPathSpec[] = [
  ["optimizer_state_dict"],
  ["optimizer"],
  ["optim"],
  ["opt"],
  ["optimizer_state"],
];

/**
 * The top-level keys of a `dcp.save` state dict, by part: torchtitan's (`model`, `optimizer`, `lr_scheduler`,
 * `train_state`, `dataloader`), loops around `get_state_dict`, and the PyTorch DCP recipe's AppState
 * (`{"model": ..., "optim": ...}`, saved under `app`). A counter saved at the top level counts as one.
 */
export const DCP_KEYS = {
  model: ["model", "model_state_dict"],
  optimizer: ["optimizer", "optim", "optimizer_state_dict"],
  scheduler: ["lr_scheduler", "scheduler"],
  training: ["train_state", "dataloader", "step", "global_step", "epoch", "iteration", "iter", "iter_num"],
} as const;

/** The counters a hand-written loop saves at the top level, each restored as saved. */
const LOOP_COUNTERS: CounterRule[] = [
  {
    name: "global_step",
    paths: [["global_step"]],
    resumeAt: same,
    meaning: "restored as saved (global_step = checkpoint['global_step'])",
  },
  {
    name: "epoch",
    paths: [["epoch"]],
    resumeAt: same,
    meaning:
      "restored as saved, as the PyTorch tutorial's resume does (epoch = checkpoint['epoch']); a loop that saved the epoch it had just finished continues with epoch + 1",
  },
  {
    name: "step",
    paths: [["step"]],
    resumeAt: same,
    meaning: "restored as saved (step = checkpoint['step'])",
  },
  {
    name: "iteration",
    // nanoGPT's train.py saves `iter_num` and resumes with `iter_num = checkpoint['iter_num']`.
    paths: [["iteration"], ["iter"], ["iter_num"]],
    resumeAt: same,
    meaning: "restored as saved (iteration = checkpoint['iteration'])",
  },
];

export const CONVENTIONS: Readonly<Record<ConventionId, ConventionRule>> = {
  detectron2: {
    id: "detectron2",
    label: "detectron2 DefaultTrainer",
    model: keys(["model"]),
    optimizer: keys(["trainer", "_trainer", "optimizer"], ["optimizer"]),
    scheduler: keys(["trainer", "hooks", "LRScheduler"], ["scheduler"]),
    scaler: optional(["trainer", "_trainer", "grad_scaler"]),
    rng: notSaved,
    ema: notSaved,
    counters: [{ ...fvcoreIteration, paths: [["iteration"], ["trainer", "iteration"]] }],
    counterInName: FVCORE_NAME,
  },
  fvcore: {
    id: "fvcore",
    label: "fvcore / detectron2 Checkpointer",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["scheduler"], ["lr_scheduler"]),
    scaler: optional(["grad_scaler"], ["scaler"]),
    rng: notSaved,
    ema: notSaved,
    counters: [fvcoreIteration],
    counterInName: FVCORE_NAME,
  },
  trackron: {
    id: "trackron",
    label: "Trackron (fvcore checkpointer saving only the model)",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("Trackron's timm scheduler is a pure function of the iteration (step_update)"),
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counters: [fvcoreIteration],
    counterInName: FVCORE_NAME,
  },
  pytracking: {
    id: "pytracking",
    label: "pytracking / ltr",
    model: keys(["net"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("ltr never loads the scheduler; it sets last_epoch from the epoch"),
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counters: [
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: same,
        meaning: "epochs done (ltr counts from 1), so the loop continues with the next",
      },
    ],
    counterInName: /_ep(\d{4})\.pth\.tar$/,
  },
  mmengine: {
    id: "mmengine",
    label: "mmengine Runner",
    model: keys(["state_dict"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["param_schedulers"]),
    scaler: optional(["optimizer", "loss_scaler"]),
    rng: notSaved,
    ema: optional(["ema_state_dict"]),
    counters: mmCounters("mmengine Runner"),
    counterInName: /(?:^|\/)(?:epoch|iter)_(\d+)\.pth$/,
  },
  mmcv: {
    id: "mmcv",
    label: "mmcv 1.x runner",
    model: keys(["state_dict"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("mmcv LR hooks recompute the LR from epoch/iter"),
    scaler: optional(["meta", "fp16", "loss_scaler"]),
    rng: notSaved,
    ema: notSaved,
    counters: mmCounters("mmcv runner"),
    counterInName: /(?:^|\/)(?:epoch|iter)_(\d+)\.pth$/,
  },
  lightning: {
    id: "lightning",
    label: "PyTorch Lightning",
    model: keys(["state_dict"]),
    optimizer: {
      kind: "keys",
      paths: [["optimizer_states"]],
      emptyMeansUnused: "no optimizer was configured (optimizer_states is [])",
    },
    scheduler: {
      kind: "keys",
      paths: [["lr_schedulers"]],
      emptyMeansUnused: "no LR scheduler was configured (lr_schedulers is [])",
    },
    scaler: optional(["MixedPrecision"], ["native_amp_scaling_state"]),
    rng: notSaved,
    ema: notSaved,
    counters: [
      {
        name: "global_step",
        paths: [["global_step"]],
        resumeAt: same,
        meaning: "optimizer steps done; the loop continues from there",
      },
    ],
    counterInName: /step=(\d+)/,
  },
  "hf-trainer": {
    id: "hf-trainer",
    label: "Hugging Face Trainer",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["scheduler"]),
    scaler: optional(["scaler"]),
    rng: keys(["rng_state"]),
    ema: notSaved,
    counters: [
      {
        name: "global_step",
        paths: [["trainer_state", "global_step"]],
        resumeAt: same,
        meaning: "optimizer updates done; the Trainer skips that many batches",
      },
    ],
    counterInName: /checkpoint-(\d+)$/,
  },
  accelerate: {
    id: "accelerate",
    label: "accelerate save_state",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["scheduler"]),
    scaler: optional(["scaler"]),
    rng: keys(["random_states"]),
    ema: notSaved,
    // accelerate stores no epoch or global step: users register a counter object (custom_checkpoint_0.pkl),
    // and the scheduler's last_epoch counts optimizer steps. checkpoint_N counts saves, not steps.
    counters: [
      {
        name: "step",
        paths: [
          ["custom", "step"],
          ["custom", "global_step"],
          ["custom", "iteration"],
          ["scheduler", "last_epoch"],
        ],
        resumeAt: same,
        meaning: "accelerate stores no epoch or step; checkpoint_N counts saves",
      },
    ],
    counterInName: undefined,
  },
  deepspeed: {
    id: "deepspeed",
    label: "DeepSpeed",
    model: keys(["module"]),
    optimizer: keys(["optimizer"], ["optimizer_state_dict"]),
    scheduler: {
      kind: "keys",
      paths: [["lr_scheduler"]],
      // engine.py saves `self.lr_scheduler.state_dict() if self.lr_scheduler is not None else None`.
      noneMeansUnused: "no LR scheduler was configured (lr_scheduler is None)",
    },
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counters: [
      {
        name: "global_step",
        paths: [["global_steps"]],
        resumeAt: same,
        meaning: "engine.global_steps is restored",
      },
    ],
    counterInName: /global_step(\d+)/,
  },
  megatron: {
    id: "megatron",
    label: "Megatron-LM",
    // generate_state_dict (megatron/training/checkpointing.py): `model`, or `model0`, `model1`... with virtual
    // pipeline stages; `opt_param_scheduler` (older releases `lr_scheduler`); `iteration` (older `total_iters`).
    model: keys(["model"], ["model0"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["opt_param_scheduler"], ["lr_scheduler"]),
    scaler: notSaved,
    rng: optional(["rng_state"]),
    ema: notSaved,
    counters: [
      {
        name: "iteration",
        paths: [["iteration"], ["total_iters"]],
        resumeAt: same,
        meaning: "load_checkpoint sets args.iteration = state_dict['iteration'] and trains on from there",
      },
    ],
    counterInName: /iter_(\d+)/,
  },
  torchtune: {
    id: "torchtune",
    label: "torchtune recipe",
    // training.MODEL_KEY / ADAPTER_KEY: the weights go to epoch_N/ files, recipe_state.pt holds the rest.
    model: keys(["model"], ["adapter"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("the recipes rebuild their LR scheduler at last_epoch = global_step - 1"),
    scaler: notSaved,
    rng: optional(["rng_state"]),
    ema: notSaved,
    counters: [
      {
        name: "epoch",
        paths: [["epochs_run"]],
        resumeAt: same,
        meaning: "epochs_run epochs are done; the recipe trains on from epoch epochs_run",
      },
    ],
    counterInName: undefined,
  },
  fairseq: {
    id: "fairseq",
    label: "fairseq",
    // checkpoint_utils.save_checkpoint / Trainer.state_dict: the optimizer as last_optimizer_state, the scheduler
    // and the update count in the last optimizer_history entry, the epoch in extra_state.train_iterator.
    model: keys(["model"]),
    optimizer: keys(["last_optimizer_state"]),
    scheduler: keys(["optimizer_history", "-1", "lr_scheduler_state"]),
    scaler: notSaved,
    rng: derived("fairseq re-seeds every update from the seed and the update count"),
    ema: optional(["extra_state", "ema"]),
    counters: [
      {
        name: "step",
        paths: [["optimizer_history", "-1", "num_updates"]],
        resumeAt: same,
        meaning:
          "Trainer.load_checkpoint sets num_updates from optimizer_history[-1] and trains on from there",
      },
    ],
    counterInName: undefined,
  },
  timm: {
    id: "timm",
    label: "timm train.py",
    model: keys(["state_dict"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("timm steps the scheduler to start_epoch on resume"),
    scaler: optional(["amp_scaler"], ["amp"]),
    rng: notSaved,
    ema: optional(["state_dict_ema"]),
    counters: [
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: plusOne,
        meaning: "resume_epoch = epoch + 1 (checkpoint version 2)",
      },
    ],
    counterInName: /checkpoint-(\d+)\.pth\.tar$/,
  },
  torchvision: {
    id: "torchvision",
    label: "torchvision reference scripts",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["lr_scheduler"]),
    scaler: optional(["scaler"]),
    rng: notSaved,
    ema: optional(["model_ema"]),
    counters: [
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: plusOne,
        meaning: "train.py --resume sets start_epoch = epoch + 1",
      },
    ],
    counterInName: /(?:^|\/)model_(\d+)\.pth$/,
  },
  ultralytics: {
    id: "ultralytics",
    label: "Ultralytics YOLO",
    // "resume and final checkpoints derive from EMA": mid-training `model` is None and `ema` holds the
    // weights; strip_optimizer moves them to `model` and sets `ema` to None.
    model: keys(["ema"], ["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("ultralytics sets scheduler.last_epoch from the epoch"),
    scaler: optional(["scaler"]),
    rng: notSaved,
    ema: optional(["ema"]),
    counters: [
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: plusOne,
        meaning: "start_epoch = epoch + 1",
        stripped: (epoch) => epoch < 0,
        end: ["train_args", "epochs"],
      },
    ],
    counterInName: /(?:^|\/)epoch(\d+)\.pt$/,
  },
  allennlp: {
    id: "allennlp",
    label: "AllenNLP Trainer",
    // The weights live in model_state_*.th beside training_state_*.th: the pair is judged as one root.
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: {
      kind: "optional-keys",
      paths: [["learning_rate_scheduler"]],
      absentMeansUnused: "AllenNLP saves the LR scheduler whenever the trainer has one; this run had none",
    },
    scaler: notSaved,
    rng: notSaved,
    ema: optional(["moving_average"]),
    counters: [
      {
        name: "epoch",
        paths: [["epochs_completed"]],
        resumeAt: same,
        meaning:
          "epochs completed (and batches_in_epoch_completed batches of the next one); training continues there",
      },
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: plusOne,
        meaning: "AllenNLP 1.x saves the finished epoch; training continues with epoch + 1",
      },
    ],
    counterInName: /(?:^|\/)(?:model|training)_state_(?:e|epoch_)(\d+)/,
  },
  "imagenet-example": {
    id: "imagenet-example",
    label: "PyTorch ImageNet example (pytorch/examples)",
    model: keys(["state_dict"]),
    optimizer: keys(["optimizer"]),
    scheduler: {
      kind: "optional-keys",
      paths: [["scheduler"]],
      absentMeansUnused: "older copies of the example set the LR from the epoch (adjust_learning_rate)",
    },
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counters: [
      {
        name: "epoch",
        paths: [["epoch"]],
        resumeAt: same,
        meaning: "the example saves epoch + 1 and resumes with start_epoch = checkpoint['epoch']",
      },
    ],
    counterInName: undefined,
  },
  "training-loop": {
    id: "training-loop",
    label: "hand-written training loop",
    model: keys(...LOOP_MODEL),
    optimizer: keys(...LOOP_OPTIMIZER),
    // A loop's own code decides what it saves: an absent scheduler may never have existed.
    scheduler: optional(
      ["scheduler_state_dict"],
      ["scheduler"],
      ["lr_scheduler"],
      ["lr_scheduler_state_dict"],
      ["sched"],
    ),
    scaler: optional(["scaler"], ["scaler_state_dict"], ["grad_scaler"], ["amp"], ["amp_scaler"]),
    rng: optional(["rng_state"], ["rng"], ["rng_states"], ["torch_rng_state"]),
    ema: optional(["ema"], ["model_ema"], ["ema_state_dict"], ["ema_model"], ["state_dict_ema"]),
    // A hand-written loop restores the counter as saved (the tutorial: `epoch = checkpoint['epoch']`); whether
    // it then continues with that value or the next depends on what the loop saved, which the file cannot say.
    counters: LOOP_COUNTERS,
    counterInName: /(?:epoch|step|iter|iteration)[_-]?(\d+)(?:\.\w+)+$/,
  },
  dcp: {
    id: "dcp",
    label: "torch.distributed.checkpoint",
    model: keys(...DCP_KEYS.model.map((k) => [k])),
    optimizer: keys(...DCP_KEYS.optimizer.map((k) => [k])),
    // torchtitan always saves lr_scheduler; a plain FSDP2 loop saves what its author passed to dcp.save, so
    // an absent scheduler is not evidence of a lost one.
    scheduler: optional(...DCP_KEYS.scheduler.map((k) => [k])),
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    // torchtitan's train_state.step first; a plain loop around dcp.save keeps its counter at the top level.
    counters: [
      { name: "step", paths: [["train_state", "step"]], resumeAt: same, meaning: "steps done" },
      ...LOOP_COUNTERS,
    ],
    counterInName: /step-(\d+)$/,
  },
  "state-dict": {
    id: "state-dict",
    label: "plain state_dict",
    model: keys([]),
    optimizer: notSaved,
    ...ONE_PART_ONLY,
  },
  // An optimizer's state saved on its own: torch.optim's `Optimizer.state_dict()` (the HF Trainer's and
  // accelerate's optimizer.pt / optimizer.bin), Megatron's distributed-optimizer shard (distrib_optim.pt).
  // Training state without the weights, which a resume loads from the file saved beside it.
  "optimizer-state": {
    id: "optimizer-state",
    label: "optimizer state",
    model: notSaved,
    optimizer: keys([]),
    ...ONE_PART_ONLY,
  },
  unknown: {
    id: "unknown",
    label: "unknown",
    model: keys(["model"], ["state_dict"], ["net"], ["module"]),
    optimizer: keys(["optimizer"], ["optimizer_states"], ["optim"]),
    scheduler: keys(["scheduler"], ["lr_scheduler"], ["lr_schedulers"]),
    scaler: optional(["scaler"], ["grad_scaler"]),
    rng: optional(["rng_state"], ["rng"]),
    ema: optional(["ema"], ["model_ema"]),
    counters: [
      {
        name: "step",
        paths: [["iteration"], ["global_step"], ["step"], ["epoch"]],
        resumeAt: plusOne,
        meaning: "",
      },
    ],
    counterInName: /(\d+)(?:\.\w+)+$/,
  },
};

/** The counter a file or directory name carries under `pattern` (its first group), if any. */
export function counterInName(pattern: RegExp | undefined, name: string): number | undefined {
  const digits = pattern?.exec(name)?.[1];
  return digits === undefined ? undefined : Number(digits);
}

/** The counter rules that apply to a file of this name, in order of preference. */
export function countersFor(rule: ConventionRule, fileName: string): CounterRule[] {
  return rule.counters.filter((c) => c.fileName === undefined || c.fileName.test(fileName));
}

/** The rule a counter read from this file's name follows: the first one that applies to the name. */
export function nameCounterRule(rule: ConventionRule, fileName: string): CounterRule | undefined {
  return countersFor(rule, fileName)[0];
}
