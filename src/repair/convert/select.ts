import { type PartSummary, summarizeParts } from "../../inspect/parts.js";
import { judgeFile } from "../../inspect/resume/judgeFile.js";
import { lookup } from "../../inspect/resume/lookup.js";
import { pathBelow } from "../../inspect/select.js";
import { findTensors, type KeyPath } from "../../inspect/walk.js";
import type { TensorCheckpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { isBoxed, type PyValue, type TorchTensor } from "../../reader/pickle/value.js";

/**
 * What goes into a converted file, under which names. By default the model's weights as the convention
 * names them (the state dict under `model`, `state_dict`, `model_state_dict`, ...), keyed as the framework's
 * `load_state_dict` expects: state-dict keys, with a saved module's `_modules`/`_parameters`/`_buffers`
 * levels folded away. `--select PATH` takes another part instead (`optimizer`, `ema`), `--all` every tensor
 * under its dotted path; prefixes are stripped and added as `repair` does.
 */
export interface SelectOptions {
  /** A dotted key path whose tensors are converted instead of the model's. */
  readonly select?: string | undefined;
  /** Every tensor in the file, named by its dotted path. */
  readonly all?: boolean;
  readonly stripPrefix?: readonly string[];
  readonly addPrefix?: readonly string[];
  /** Top-level (dotted) keys of non-tensor values to carry into `__metadata__`, as strings. */
  readonly metadata?: readonly string[];
}

export interface SelectedTensor {
  readonly name: string;
  readonly tensor: TorchTensor;
  readonly path: KeyPath;
}

export interface Selection {
  readonly tensors: SelectedTensor[];
  /** What was taken, for people: "model (model_state_dict)", "every tensor", "optimizer". */
  readonly taken: string;
  /** The dotted key path the tensors were taken from ("" for the whole file). */
  readonly key: string;
  /** The parts of the file not converted, with their sizes. */
  readonly leftOut: PartSummary[];
  readonly metadata: Map<string, string>;
}

/** A saved nn.Module's bookkeeping levels, which a state dict's keys do not have. */
const MODULE_LEVELS = new Set(["_modules", "_parameters", "_buffers"]);

function dotted(path: KeyPath): string {
  return path.filter((s) => !MODULE_LEVELS.has(String(s))).join(".");
}

/** A name after `--strip-prefix` then `--add-prefix`, as `repair` renames. */
export function renamed(name: string, options: SelectOptions): string {
  let out = name;
  for (const prefix of options.stripPrefix ?? []) if (out.startsWith(prefix)) out = out.slice(prefix.length);
  for (const prefix of options.addPrefix ?? []) out = `${prefix}${out}`;
  return out;
}

/** A non-tensor value as a metadata string: what Python's str() would print for a scalar. */
export function metadataValue(key: string, value: PyValue | undefined): string {
  if (value === undefined)
    throw new ReaderError("convert-refused", `--metadata ${key}: the file has no such key`);
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "True" : "False";
  if (value === null) return "None";
  if (isBoxed(value, "float"))
    return Number.isInteger(value.value) ? value.value.toFixed(1) : String(value.value);
  throw new ReaderError(
    "convert-refused",
    `--metadata ${key} is a ${value.kind}, not a number or string: safetensors metadata holds strings only`,
  );
}

export function selectTensors(checkpoint: TensorCheckpoint, file: string, options: SelectOptions): Selection {
  const walk = findTensors(checkpoint.root).tensors;
  // Which part is the model needs only the file itself: companion files hold other parts.
  const verdict = judgeFile(checkpoint, file, undefined)?.verdict;
  const parts = summarizeParts(walk, verdict);
  let prefix: string[] | undefined;
  let taken: string;
  if (options.all) {
    prefix = [];
    taken = "every tensor";
  } else if (options.select !== undefined) {
    prefix = options.select.split(".").filter((s) => s !== "");
    taken = options.select;
  } else {
    const model = parts.find((p) => p.part === "model");
    prefix = model?.key && model.key !== "(root)" ? model.key.split(".") : [];
    taken = model?.key && model.key !== "(root)" ? `model (${model.key})` : "model";
  }
  const tensors: SelectedTensor[] = [];
  for (const { path, tensor } of walk) {
    const name = dottedBelow(path, prefix);
    if (name !== undefined) tensors.push({ name: renamed(name, options), tensor, path });
  }
  if (tensors.length === 0) {
    throw new ReaderError(
      "convert-refused",
      `no tensor under ${options.select ?? taken}: see the file's parts with ckpt inspect, then --select one or pass --all`,
    );
  }
  const metadata = new Map<string, string>();
  for (const key of options.metadata ?? [])
    metadata.set(key, metadataValue(key, lookup(checkpoint.root, key.split("."))));
  const leftOut = options.all
    ? []
    : parts.filter((p) => !tensors.some((t) => partOwns(p, t.path)) && p.tensors > 0);
  return { tensors, taken, key: prefix.join("."), leftOut, metadata };
}

/** The state-dict name of a tensor below `prefix`, or undefined when it is not below it. */
function dottedBelow(path: KeyPath, prefix: readonly string[]): string | undefined {
  const rest = pathBelow(path, prefix.join("."));
  return rest === undefined ? undefined : dotted(rest);
}

function partOwns(part: PartSummary, path: KeyPath): boolean {
  if (!part.key || part.key === "(root)") return true;
  return path.map(String).join(".").startsWith(part.key);
}
