import type { PartName, PartSummary } from "../../inspect/parts.js";
import { ReaderError } from "../../reader/errors.js";
import type { LogicalTensor, ShardedCheckpoint } from "../../reader/sharded/index.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { renamed, type SelectOptions } from "./select.js";

/**
 * Which logical tensors of a sharded checkpoint go into a converted file, under which names. A DCP save is one
 * flattened state dict whose top-level keys are the parts (`model`, `optimizer`, `train_state`; Lightning's
 * `state_dict`, `optimizer_0`; torchtitan puts the model's keys at the top): by default the model part is
 * taken and its prefix dropped, so the names are the ones `model.load_state_dict` expects. A DeepSpeed save
 * converts to the fp32 weights zero_to_fp32 rebuilds; a Hugging Face index to every tensor of its shards.
 */
export interface ShardedSelection {
  /** Each chosen tensor and the name it is written under. */
  readonly tensors: ReadonlyArray<{ readonly logical: LogicalTensor; readonly name: string }>;
  readonly taken: string;
  readonly key: string;
  readonly leftOut: PartSummary[];
}

/** Top-level keys that hold the model's state dict, most specific first. */
const MODEL_KEYS = ["model", "state_dict", "model_state_dict", "module"];
/** Top-level keys of DCP saves that are not the model (torchtitan keeps the model's keys at the top level). */
const NOT_MODEL =
  /^(optim|optimizers?(_\d+)?|optimizer_states|lr_schedulers?|schedulers?|train_state|dataloader|rng(_state)?|loops|callbacks)$/;

const topKey = (name: string) => name.split(".")[0] as string;

function partOf(key: string): PartName {
  if (/^optim/.test(key)) return "optimizer";
  if (/ema/.test(key)) return "ema";
  return /^(model|state_dict|model_state_dict|module)$/.test(key) ? "model" : "other";
}

/** `name` with `prefix` (dotted) taken off, or undefined when it is not below it. */
function below(name: string, prefix: string): string | undefined {
  if (prefix === "") return name;
  if (name === prefix) return name.slice(name.lastIndexOf(".") + 1);
  return name.startsWith(`${prefix}.`) ? name.slice(prefix.length + 1) : undefined;
}

function leftOutParts(all: readonly LogicalTensor[], chosen: ReadonlySet<string>): PartSummary[] {
  const parts = new Map<string, { tensors: number; elements: number; bytes: number }>();
  for (const t of all) {
    if (chosen.has(t.name)) continue;
    const key = topKey(t.name);
    const elements = t.shape.reduce((n, s) => n * s, 1);
    const part = parts.get(key) ?? { tensors: 0, elements: 0, bytes: 0 };
    part.tensors++;
    part.elements += elements;
    part.bytes += elements * elementSize(t.dtype);
    parts.set(key, part);
  }
  return [...parts].map(([key, sizes]) => ({ part: partOf(key), key, ...sizes }));
}

/** The DCP default: the model's top-level key, else every top-level key that is not another part's. */
function dcpModel(all: readonly LogicalTensor[]): {
  key: string;
  taken: string;
  test: (n: string) => boolean;
} {
  const keys = new Set(all.map((t) => topKey(t.name)));
  const model = MODEL_KEYS.find((k) => keys.has(k));
  if (model !== undefined)
    return { key: model, taken: `model (${model})`, test: (n) => below(n, model) !== undefined };
  return { key: "", taken: "model", test: (n) => !NOT_MODEL.test(topKey(n)) };
}

export function selectSharded(
  checkpoint: ShardedCheckpoint,
  all: readonly LogicalTensor[],
  options: SelectOptions,
): ShardedSelection {
  if (checkpoint.kind === "deepspeed" && options.select !== undefined) {
    throw new ReaderError(
      "convert-refused",
      "a DeepSpeed checkpoint converts to the fp32 weights zero_to_fp32 rebuilds; --select applies to DCP saves and single files",
    );
  }
  let key = "";
  let taken = "every tensor";
  let test: (name: string) => boolean = () => true;
  if (options.select !== undefined) {
    const wanted = options.select
      .split(".")
      .filter((s) => s !== "")
      .join(".");
    key = wanted;
    taken = wanted;
    test = (n) => below(n, wanted) !== undefined;
  } else if (!options.all && checkpoint.kind === "dcp") {
    ({ key, taken, test } = dcpModel(all));
  } else if (!options.all) {
    taken = checkpoint.kind !== "deepspeed" ? "model" : deepSpeedTaken(checkpoint.stage);
  }
  const tensors = all
    .filter((t) => test(t.name))
    .map((logical) => ({
      logical,
      name: renamed(key === "" ? logical.name : (below(logical.name, key) as string), options),
    }));
  if (tensors.length === 0) {
    throw new ReaderError(
      "convert-refused",
      `no tensor under ${options.select ?? taken}: its top-level keys are ${[...new Set(all.map((t) => topKey(t.name)))].join(", ")}; --select one or pass --all`,
    );
  }
  const leftOut = options.all ? [] : leftOutParts(all, new Set(tensors.map((t) => t.logical.name)));
  return { tensors, taken, key, leftOut };
}

function deepSpeedTaken(stage: number | null): string {
  return stage === 0
    ? "model (the module as saved: no ZeRO, so no fp32 partitions to rebuild)"
    : "model (fp32 weights, as zero_to_fp32 rebuilds them)";
}
