import { isBoxed, type PyValue } from "../../reader/pickle/value.js";
import { isPresent, type KeyPathSpec, lookup, topLevelKeys } from "./lookup.js";

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
  | "timm"
  | "torchvision"
  | "ultralytics"
  | "dcp"
  | "state-dict"
  | "unknown";

export type CounterName = "iteration" | "epoch" | "global_step" | "step";

/** How a component of the training state is kept by a convention. */
export type ComponentRule =
  | { readonly kind: "keys"; readonly paths: readonly KeyPathSpec[] }
  /** Saved only when the feature is used (AMP scaler, EMA): absent means unused, not lost. */
  | { readonly kind: "optional-keys"; readonly paths: readonly KeyPathSpec[] }
  /** Not saved by design; the framework recomputes it from the counter (timm, pytracking, mmcv LR hooks). */
  | { readonly kind: "derived"; readonly why: string }
  /** Not part of this convention at all (fvcore saves no RNG). */
  | { readonly kind: "not-saved" };

export interface ConventionRule {
  readonly id: ConventionId;
  readonly label: string;
  readonly model: ComponentRule;
  readonly optimizer: ComponentRule;
  readonly scheduler: ComponentRule;
  readonly scaler: ComponentRule;
  readonly rng: ComponentRule;
  readonly ema: ComponentRule;
  readonly counter: { readonly name: CounterName; readonly paths: readonly KeyPathSpec[] } | undefined;
  /** Where the counter sits in a file or directory name, when the framework names files after it. */
  readonly counterInName: RegExp | undefined;
  /** The counter value training restarts at, computed as the framework computes it from the saved one. */
  readonly resumeAt: (saved: number) => number;
  /** What "resumeAt" means, for people. */
  readonly resumeMeaning: string;
}

const keys = (...paths: KeyPathSpec[]): ComponentRule => ({ kind: "keys", paths });
const optional = (...paths: KeyPathSpec[]): ComponentRule => ({ kind: "optional-keys", paths });
const derived = (why: string): ComponentRule => ({ kind: "derived", why });
const notSaved: ComponentRule = { kind: "not-saved" };

/** fvcore's periodic files, and the copies `ckpt repair` writes beside them. */
const FVCORE_NAME = /(?:^|\/)model_(\d{7})(?:\.resumable)?\.pth$/;

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
    counter: { name: "iteration", paths: [["iteration"], ["trainer", "iteration"]] },
    counterInName: FVCORE_NAME,
    resumeAt: (iteration) => iteration + 1,
    resumeMeaning: "start_iter = iteration + 1",
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
    counter: { name: "iteration", paths: [["iteration"]] },
    counterInName: FVCORE_NAME,
    resumeAt: (iteration) => iteration + 1,
    resumeMeaning: "start_iter = iteration + 1",
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
    counter: { name: "iteration", paths: [["iteration"]] },
    counterInName: FVCORE_NAME,
    resumeAt: (iteration) => iteration + 1,
    resumeMeaning: "start_iter = iteration + 1",
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
    counter: { name: "epoch", paths: [["epoch"]] },
    counterInName: /_ep(\d{4})\.pth\.tar$/,
    resumeAt: (epoch) => epoch,
    resumeMeaning: "epoch epochs are done (ltr counts from 1): the loop continues with epoch + 1",
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
    counter: { name: "epoch", paths: [["meta", "epoch"]] },
    counterInName: /(?:^|\/)(?:epoch|iter)_(\d+)\.pth$/,
    resumeAt: (epoch) => epoch,
    resumeMeaning: "meta.epoch counts finished epochs; the loop restarts at that 0-based epoch",
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
    counter: { name: "epoch", paths: [["meta", "epoch"]] },
    counterInName: /(?:^|\/)(?:epoch|iter)_(\d+)\.pth$/,
    resumeAt: (epoch) => epoch,
    resumeMeaning: "meta.epoch counts finished epochs",
  },
  lightning: {
    id: "lightning",
    label: "PyTorch Lightning",
    model: keys(["state_dict"]),
    optimizer: keys(["optimizer_states"]),
    scheduler: keys(["lr_schedulers"]),
    scaler: optional(["MixedPrecision"], ["native_amp_scaling_state"]),
    rng: notSaved,
    ema: notSaved,
    counter: { name: "global_step", paths: [["global_step"]] },
    counterInName: /step=(\d+)/,
    resumeAt: (step) => step,
    resumeMeaning: "global_step optimizer steps are done; the loop continues from there",
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
    counter: { name: "global_step", paths: [["trainer_state", "global_step"]] },
    counterInName: /checkpoint-(\d+)$/,
    resumeAt: (step) => step,
    resumeMeaning: "global_step optimizer updates are done; the Trainer skips that many batches",
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
    counter: {
      name: "step",
      paths: [
        ["custom", "step"],
        ["custom", "global_step"],
        ["custom", "iteration"],
        ["scheduler", "last_epoch"],
      ],
    },
    counterInName: undefined,
    resumeAt: (step) => step,
    resumeMeaning: "accelerate stores no epoch or step; checkpoint_N counts saves",
  },
  deepspeed: {
    id: "deepspeed",
    label: "DeepSpeed",
    model: keys(["module"]),
    optimizer: keys(["optimizer"], ["optimizer_state_dict"]),
    scheduler: keys(["lr_scheduler"]),
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counter: { name: "global_step", paths: [["global_steps"]] },
    counterInName: /global_step(\d+)/,
    resumeAt: (step) => step,
    resumeMeaning: "engine.global_steps is restored",
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
    counter: { name: "epoch", paths: [["epoch"]] },
    counterInName: /checkpoint-(\d+)\.pth\.tar$/,
    resumeAt: (epoch) => epoch + 1,
    resumeMeaning: "resume_epoch = epoch + 1 (checkpoint version 2)",
  },
  torchvision: {
    id: "torchvision",
    label: "torchvision references",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["lr_scheduler"]),
    scaler: optional(["scaler"]),
    rng: notSaved,
    ema: optional(["model_ema"]),
    counter: { name: "epoch", paths: [["epoch"]] },
    counterInName: /model_(\d+)\.pth$/,
    resumeAt: (epoch) => epoch + 1,
    resumeMeaning: "start_epoch = epoch + 1",
  },
  ultralytics: {
    id: "ultralytics",
    label: "ultralytics YOLO",
    model: keys(["ema"], ["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: derived("ultralytics sets scheduler.last_epoch from the epoch"),
    scaler: optional(["scaler"]),
    rng: notSaved,
    ema: optional(["ema"]),
    counter: { name: "epoch", paths: [["epoch"]] },
    counterInName: /epoch(\d+)\.pt$/,
    resumeAt: (epoch) => epoch + 1,
    resumeMeaning: "start_epoch = epoch + 1 (a stripped last.pt has epoch -1)",
  },
  dcp: {
    id: "dcp",
    label: "torch.distributed.checkpoint (torchtitan)",
    model: keys(["model"]),
    optimizer: keys(["optimizer"]),
    scheduler: keys(["lr_scheduler"]),
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counter: { name: "step", paths: [["train_state", "step"]] },
    counterInName: /step-(\d+)$/,
    resumeAt: (step) => step,
    resumeMeaning: "train_state.step steps are done",
  },
  "state-dict": {
    id: "state-dict",
    label: "plain state_dict",
    model: keys([]),
    optimizer: notSaved,
    scheduler: notSaved,
    scaler: notSaved,
    rng: notSaved,
    ema: notSaved,
    counter: undefined,
    counterInName: undefined,
    resumeAt: (n) => n,
    resumeMeaning: "",
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
    counter: { name: "step", paths: [["iteration"], ["global_step"], ["step"], ["epoch"]] },
    counterInName: /(\d+)(?:\.\w+)+$/,
    resumeAt: (n) => n + 1,
    resumeMeaning: "",
  },
};

/** The counter a file or directory name carries under `pattern` (its first group), if any. */
export function counterInName(pattern: RegExp | undefined, name: string): number | undefined {
  const digits = pattern?.exec(name)?.[1];
  return digits === undefined ? undefined : Number(digits);
}

export interface ConventionGuess {
  readonly convention: ConventionId;
  /** The facts that decided it, for people ("keys model, trainer, iteration"). */
  readonly evidence: string[];
}

/** A dict whose values are all tensors: `model.state_dict()` saved on its own. */
function isStateDict(root: PyValue): boolean {
  return (
    isBoxed(root, "dict") &&
    root.values.length > 0 &&
    root.values.every((v) => typeof v === "object" && v !== null && v.kind === "tensor")
  );
}

const has = (keySet: Set<string>, ...names: string[]) => names.every((n) => keySet.has(n));

/**
 * Recognises the convention of one checkpoint file from its top-level keys, its name, and (for fvcore-style
 * runs) whether it sits next to a `last_checkpoint` pointer. Fingerprints from `conventions.md` section 14.
 */
export function detectFileConvention(root: PyValue, fileName: string): ConventionGuess {
  const k = topLevelKeys(root);
  const found = (convention: ConventionId, ...evidence: string[]): ConventionGuess => ({
    convention,
    evidence,
  });
  const keyList = (...names: string[]) => `keys ${names.join(", ")}`;

  if (has(k, "pytorch-lightning_version")) return found("lightning", keyList("pytorch-lightning_version"));
  if (has(k, "meta", "state_dict", "message_hub"))
    return found("mmengine", keyList("meta", "state_dict", "message_hub"));
  if (has(k, "meta", "state_dict")) return found("mmcv", keyList("meta", "state_dict"), "no message_hub");
  if (has(k, "model", "trainer")) return found("detectron2", keyList("model", "trainer"));
  if (has(k, "net", "net_type")) return found("pytracking", keyList("net", "net_type"));
  if (has(k, "module", "global_steps") || has(k, "module", "ds_config")) {
    return found("deepspeed", keyList("module", "global_steps"));
  }
  if (has(k, "optimizer_state_dict", "ds_config"))
    return found("deepspeed", keyList("optimizer_state_dict", "ds_config"));
  if (has(k, "ema", "updates", "train_args"))
    return found("ultralytics", keyList("ema", "updates", "train_args"));
  if (
    has(k, "state_dict", "epoch") &&
    (has(k, "arch") || has(k, "version") || /\.pth\.tar$/.test(fileName))
  ) {
    return found("timm", keyList("state_dict", "epoch", ...(k.has("arch") ? ["arch"] : [])));
  }
  if (has(k, "model", "optimizer", "lr_scheduler", "epoch")) {
    return found("torchvision", keyList("model", "optimizer", "lr_scheduler", "epoch"));
  }
  const fvcoreName = FVCORE_NAME.test(fileName) || /(?:^|\/)model_final\.pth$/.test(fileName);
  if (k.has("model") && k.size === 1 && fvcoreName) {
    return found("trackron", "only key is model", `fvcore file name ${fileName.split("/").pop()}`);
  }
  if (k.has("model") && (has(k, "iteration") || has(k, "optimizer") || has(k, "scheduler") || fvcoreName)) {
    const why = ["iteration", "optimizer", "scheduler"].filter((n) => k.has(n));
    return found(
      "fvcore",
      keyList("model", ...why),
      ...(fvcoreName ? [`fvcore file name ${fileName.split("/").pop()}`] : []),
    );
  }
  if (isStateDict(root)) return found("state-dict", "a dict holding only tensors");
  return found("unknown", k.size > 0 ? `top-level keys ${[...k].slice(0, 8).join(", ")}` : "not a dict");
}

export function componentPresent(
  root: PyValue,
  rule: ComponentRule,
): { present: boolean; key: string | undefined } {
  if (rule.kind !== "keys" && rule.kind !== "optional-keys") return { present: false, key: undefined };
  for (const path of rule.paths) {
    if (path.length === 0) return { present: isPresent(root), key: "(root)" };
    if (isPresent(lookup(root, path))) return { present: true, key: path.join(".") };
  }
  return { present: false, key: undefined };
}
