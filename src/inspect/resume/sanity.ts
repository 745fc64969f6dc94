import { isBoxed, type PyDict, type PyValue } from "../../reader/pickle/value.js";
import type { Finding } from "../findings.js";
import { CONVENTIONS, type ConventionId } from "./conventions.js";
import { lookup } from "./lookup.js";
import type { ResumeVerdict } from "./verdict.js";

/** Prefixes that wrappers add to every state_dict key: DDP/DataParallel and torch.compile. */
export const WRAPPER_PREFIXES = ["module.", "_orig_mod."] as const;

/** BatchNorm buffers: in the state dict but never in the optimizer. */
const BUFFER_SUFFIXES = ["running_mean", "running_var", "num_batches_tracked"];

/** The model's state dict as the convention stores it (a dict of tensors), if there is one. */
export function modelStateDict(
  root: PyValue,
  convention: ConventionId,
): { dict: PyDict; key: string } | undefined {
  const rule = CONVENTIONS[convention].model;
  if (rule.kind !== "keys" && rule.kind !== "optional-keys") return undefined;
  for (const path of rule.paths) {
    const value = path.length === 0 ? root : lookup(root, path);
    if (isBoxed(value, "dict") && value.values.some((v) => isBoxed(v, "tensor"))) {
      return { dict: value, key: path.join(".") || "(root)" };
    }
  }
  return undefined;
}

function prefixFindings(model: { dict: PyDict; key: string }): Finding[] {
  const names = model.dict.keys.filter((k): k is string => typeof k === "string");
  const findings: Finding[] = [];
  for (const prefix of WRAPPER_PREFIXES) {
    const count = names.filter((n) => n.startsWith(prefix)).length;
    if (count > 0 && count === names.length) {
      findings.push({
        code: "state-dict-key-prefix",
        prefix,
        keys: count,
        path: model.key === "(root)" ? [] : model.key.split("."),
      });
    }
  }
  return findings;
}

/** Parameter ids an optimizer state_dict's param_groups name (torch: `param_groups[i].params`). */
function optimizerParamCount(optimizer: PyValue | undefined): number | undefined {
  const groups = lookup(optimizer, ["param_groups"]);
  if (!isBoxed(groups, "list")) return undefined;
  let count = 0;
  for (const group of groups.items) {
    const params = lookup(group, ["params"]);
    if (!isBoxed(params, "list")) return undefined;
    count += params.items.length;
  }
  return count;
}

/**
 * An optimizer that names more parameters than the model has trainable tensors belongs to another model (or
 * another configuration of this one): loading it fails, or worse, pairs moments with the wrong weights.
 */
function optimizerFindings(
  root: PyValue,
  verdict: ResumeVerdict,
  model: { dict: PyDict; key: string },
): Finding[] {
  const optimizer = verdict.components.find((c) => c.component === "optimizer");
  if (optimizer?.status !== "present") return [];
  const count = optimizerParamCount(lookup(root, optimizer.key.split(".")));
  if (count === undefined) return [];
  const trainable = model.dict.keys.filter(
    (k, i) =>
      typeof k === "string" &&
      !BUFFER_SUFFIXES.some((s) => k.endsWith(s)) &&
      isBoxed(model.dict.values[i], "tensor") &&
      ["float", "bfloat", "complex"].some((p) =>
        (model.dict.values[i] as { dtype: string }).dtype.startsWith(p),
      ),
  ).length;
  return count > trainable
    ? [{ code: "optimizer-param-mismatch", optimizerParams: count, modelTensors: trainable }]
    : [];
}

/** Checks that catch real resume mistakes in one file. */
export function sanityFindings(root: PyValue, verdict: ResumeVerdict, fileName: string): Finding[] {
  const findings: Finding[] = [];
  const model = modelStateDict(root, verdict.convention);
  if (model) {
    findings.push(...prefixFindings(model));
    findings.push(...optimizerFindings(root, verdict, model));
  }
  if (verdict.finished) {
    findings.push({
      code: "run-finished",
      label: verdict.conventionLabel,
      counter: `${verdict.finished.from} = ${verdict.finished.value}`,
      epochs: verdict.finished.end,
    });
  }
  if (/(?:^|\/)model_final\.pth$/.test(fileName) && verdict.counter?.source === "checkpoint") {
    findings.push({ code: "final-checkpoint-has-state", counter: verdict.counter.value });
  }
  return findings;
}
