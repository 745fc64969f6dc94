import { isBoxed, type PyValue } from "../../reader/pickle/value.js";
import { type ConventionId, FVCORE_NAME } from "./conventions.js";
import { type TopLevelKeys, topLevelKeys } from "./lookup.js";

/**
 * Recognises the convention that wrote one checkpoint file, from its top-level keys and its name
 * (fingerprints of `conventions.md` section 14). Most specific first: a framework's own keys, then the
 * layouts of the canonical example scripts, then hand-written loops, then a bare state dict.
 */
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

/** Keys a hand-written loop uses for the model, the optimizer and the counter (see CONVENTIONS). */
const LOOP_MODEL_KEYS = ["model_state_dict", "model", "state_dict", "net", "network", "model_state"];
const LOOP_OPTIMIZER_KEYS = ["optimizer_state_dict", "optimizer", "optim", "opt", "optimizer_state"];
const LOOP_COUNTER_KEYS = ["global_step", "epoch", "step", "iteration", "iter"];

const baseName = (fileName: string) => fileName.split("/").pop() ?? fileName;

/**
 * What an fvcore Checkpointer saves: the model, the checkpointables it was given (by the names detectron2's
 * scripts use) and the iteration. A file with other keys too is a hand-written loop's, unless fvcore named it.
 */
const FVCORE_KEYS = new Set(["model", "optimizer", "scheduler", "iteration", "grad_scaler", "scaler"]);

export function detectFileConvention(root: PyValue, fileName: string): ConventionGuess {
  const k = topLevelKeys(root);
  const has = (...names: string[]) => names.every((n) => k.has(n));
  const found = (convention: ConventionId, ...evidence: string[]): ConventionGuess => ({
    convention,
    evidence,
  });
  const keyList = (...names: string[]) => `keys ${names.join(", ")}`;
  const fvcoreName = FVCORE_NAME.test(fileName) || /(?:^|\/)model_final\.pth$/.test(fileName);

  if (has("pytorch-lightning_version")) return found("lightning", keyList("pytorch-lightning_version"));
  if (has("meta", "state_dict", "message_hub"))
    return found("mmengine", keyList("meta", "state_dict", "message_hub"));
  if (has("meta", "state_dict")) return found("mmcv", keyList("meta", "state_dict"), "no message_hub");
  if (has("model", "trainer")) return found("detectron2", keyList("model", "trainer"));
  if (has("net", "net_type")) return found("pytracking", keyList("net", "net_type"));
  if (has("module", "global_steps") || has("module", "ds_config"))
    return found("deepspeed", keyList("module", "global_steps"));
  if (has("optimizer_state_dict", "ds_config"))
    return found("deepspeed", keyList("optimizer_state_dict", "ds_config"));
  // fairseq's checkpoint_utils.save_checkpoint: args (cfg since 0.10) and the optimizer history.
  if (has("model", "optimizer_history") && (k.has("args") || k.has("cfg")))
    return found("fairseq", keyList("model", "optimizer_history", k.has("cfg") ? "cfg" : "args"));
  // torchtune's recipe state (training.EPOCHS_KEY, TOTAL_EPOCHS_KEY, SEED_KEY).
  if (has("epochs_run", "total_epochs") || has("epochs_run", "seed"))
    return found("torchtune", keyList("epochs_run", k.has("total_epochs") ? "total_epochs" : "seed"));
  // Megatron-LM's generate_state_dict: args and checkpoint_version beside the model (model0.. with virtual PP).
  if (has("args", "checkpoint_version") && (k.has("model") || k.has("model0")))
    return found("megatron", keyList("args", "checkpoint_version", k.has("model") ? "model" : "model0"));
  // YOLOv8+ saves train_args; YOLOv5 saved opt.
  if (has("ema", "updates") && (has("train_args") || has("opt")))
    return found("ultralytics", keyList("ema", "updates", k.has("train_args") ? "train_args" : "opt"));
  if (has("optimizer", "epochs_completed", "batches_in_epoch_completed"))
    return found("allennlp", keyList("optimizer", "epochs_completed", "batches_in_epoch_completed"));
  if (has("optimizer", "metric_tracker") && /training_state_/.test(baseName(fileName)))
    return found("allennlp", keyList("optimizer", "metric_tracker"), `file name ${baseName(fileName)}`);
  if (has("state_dict", "epoch", "best_acc1"))
    return found("imagenet-example", keyList("state_dict", "epoch", "best_acc1"));
  if (has("state_dict", "epoch") && (has("arch") || has("version") || /\.pth\.tar$/.test(fileName)))
    return found("timm", keyList("state_dict", "epoch", ...(k.has("arch") ? ["arch"] : [])));
  if (has("model", "optimizer", "lr_scheduler", "epoch", "args"))
    return found("torchvision", keyList("model", "optimizer", "lr_scheduler", "epoch", "args"));
  if (k.has("model") && k.size === 1 && fvcoreName)
    return found("trackron", "only key is model", `fvcore file name ${baseName(fileName)}`);
  if (k.has("model") && (fvcoreName || (k.has("iteration") && [...k].every((n) => FVCORE_KEYS.has(n))))) {
    const why = ["iteration", "optimizer", "scheduler"].filter((n) => k.has(n));
    return found(
      "fvcore",
      keyList("model", ...why),
      ...(fvcoreName ? [`fvcore file name ${baseName(fileName)}`] : []),
    );
  }
  const loop = trainingLoopKeys(k);
  if (loop) return found("training-loop", keyList(...loop));
  // torch.optim's Optimizer.state_dict() is exactly these two keys.
  if (has("state", "param_groups") && k.size === 2)
    return found("optimizer-state", keyList("state", "param_groups"), "torch.optim's Optimizer.state_dict()");
  // Megatron's DistributedOptimizer.get_parameter_state_dp_zero (distrib_optim.pt), by format.
  const megatronOptimizer = ["buckets_coalesced", "param_state_sharding_type"].find((n) => k.has(n));
  if (megatronOptimizer)
    return found("optimizer-state", keyList(megatronOptimizer), "Megatron's distributed optimizer state");
  if (isStateDict(root)) return found("state-dict", "a dict holding only tensors");
  return found("unknown", k.size > 0 ? `top-level keys ${[...k].slice(0, 8).join(", ")}` : "not a dict");
}

/**
 * The keys that make a dict a hand-written loop's checkpoint (the PyTorch tutorial's general checkpoint and
 * its variants): a model with an optimizer or a counter, or training state alone (optimizer and counter).
 */
function trainingLoopKeys(k: TopLevelKeys): string[] | undefined {
  const model = LOOP_MODEL_KEYS.find((n) => k.has(n));
  const optimizer = LOOP_OPTIMIZER_KEYS.find((n) => k.has(n));
  const counter = LOOP_COUNTER_KEYS.find((n) => k.has(n));
  const present = [model, optimizer, counter].filter((n): n is string => n !== undefined);
  if (model !== undefined && present.length >= 2) return present;
  if (model === undefined && optimizer !== undefined && counter !== undefined) return present;
  return undefined;
}
