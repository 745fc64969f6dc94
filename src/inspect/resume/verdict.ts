import { isBoxed, type PyValue, type TorchTensor } from "../../reader/pickle/value.js";
import {
  CONVENTIONS,
  type ComponentRule,
  type ConventionGuess,
  type ConventionId,
  type CounterName,
  componentPresent,
  counterInName,
} from "./conventions.js";
import { intValue, lookup } from "./lookup.js";

/**
 * Will this checkpoint resume training, or only restore weights? A verdict for one file (or one checkpoint
 * directory, whose files are presented as one root), from the convention table.
 */
export type Component = "model" | "optimizer" | "scheduler" | "counter" | "scaler" | "rng" | "ema";

export type ComponentState =
  | { readonly component: Component; readonly status: "present"; readonly key: string }
  | { readonly component: Component; readonly status: "missing" }
  /** Not saved by design and recomputed from the counter: nothing is lost. */
  | { readonly component: Component; readonly status: "not-needed"; readonly why: string }
  /** Not part of the convention (fvcore saves no RNG state): nothing to restore either way. */
  | { readonly component: Component; readonly status: "not-saved" };

export type CounterSource = "checkpoint" | "file-name";

export interface CounterValue {
  readonly name: CounterName;
  readonly value: number;
  readonly source: CounterSource;
  /** Where it was read: a key path, or the file name. */
  readonly from: string;
}

export type Verdict = "resumable" | "weights-only" | "incomplete" | "not-a-training-checkpoint";

export interface ResumeVerdict {
  readonly convention: ConventionId;
  readonly conventionLabel: string;
  readonly evidence: string[];
  readonly verdict: Verdict;
  readonly components: ComponentState[];
  readonly counter: CounterValue | undefined;
  /**
   * The counter training restarts at if the framework resumes from this file, computed as it computes it: with
   * no counter in the file that is 0 (fvcore: `get("iteration", -1) + 1`), whatever the file name says.
   */
  readonly resumeAt: number | undefined;
  /** What is lost when training resumes from this file. */
  readonly resets: Component[];
  readonly missing: Component[];
}

function componentState(root: PyValue, component: Component, rule: ComponentRule): ComponentState {
  switch (rule.kind) {
    case "derived":
      return { component, status: "not-needed", why: rule.why };
    case "not-saved":
      return { component, status: "not-saved" };
    case "keys":
    case "optional-keys": {
      const { present, key } = componentPresent(root, rule);
      if (present && key !== undefined) return { component, status: "present", key };
      return rule.kind === "keys" ? { component, status: "missing" } : { component, status: "not-saved" };
    }
  }
}

/** The counter from the checkpoint itself, else from the file name (fvcore `model_0059999.pth`). */
export function findCounter(
  root: PyValue,
  guess: ConventionGuess,
  fileName: string,
): CounterValue | undefined {
  const rule = CONVENTIONS[guess.convention];
  if (!rule.counter) return undefined;
  for (const path of rule.counter.paths) {
    const raw = lookup(root, path);
    const value = intValue(raw) ?? scalarTensorHint(raw);
    if (value !== undefined)
      return { name: rule.counter.name, value, source: "checkpoint", from: path.join(".") };
  }
  const fromName = counterInName(rule.counterInName, fileName);
  if (fromName !== undefined) {
    return {
      name: rule.counter.name,
      value: fromName,
      source: "file-name",
      from: fileName.split("/").pop() ?? fileName,
    };
  }
  return undefined;
}

/** Counters saved as tensors cannot be read without tensor bytes; they still count as present. */
function scalarTensorHint(value: PyValue | undefined): number | undefined {
  return isBoxed(value, "tensor") && (value as TorchTensor).shape.length === 0 ? Number.NaN : undefined;
}

/** RNG state matters for exact data order, not for whether training continues correctly. */
const NON_ESSENTIAL: ReadonlySet<Component> = new Set(["scaler", "rng", "ema"]);

export function judgeResume(root: PyValue, guess: ConventionGuess, fileName: string): ResumeVerdict {
  const rule = CONVENTIONS[guess.convention];
  const counter = findCounter(root, guess, fileName);
  const components: ComponentState[] = [
    componentState(root, "model", rule.model),
    componentState(root, "optimizer", rule.optimizer),
    componentState(root, "scheduler", rule.scheduler),
    counter?.source === "checkpoint"
      ? { component: "counter", status: "present", key: counter.from }
      : rule.counter
        ? { component: "counter", status: "missing" }
        : { component: "counter", status: "not-saved" },
    componentState(root, "scaler", rule.scaler),
    componentState(root, "rng", rule.rng),
    componentState(root, "ema", rule.ema),
  ];
  const status = (c: Component) => components.find((s) => s.component === c)?.status;
  const missing = components.filter((c) => c.status === "missing").map((c) => c.component);
  // A missing RNG state (HF, accelerate) is a reset worth saying, not a broken resume.
  const essentialMissing = missing.filter((c) => !NON_ESSENTIAL.has(c));

  let verdict: Verdict;
  if (guess.convention === "state-dict" || status("model") !== "present")
    verdict = "not-a-training-checkpoint";
  else if (essentialMissing.length === 0) verdict = "resumable";
  else if (status("optimizer") === "missing" && status("counter") === "missing") verdict = "weights-only";
  else verdict = "incomplete";

  const resets = verdict === "not-a-training-checkpoint" ? [] : missing.filter((c) => c !== "model");
  const saved =
    counter?.source === "checkpoint" && Number.isFinite(counter.value) ? counter.value : undefined;
  return {
    convention: guess.convention,
    conventionLabel: rule.label,
    evidence: guess.evidence,
    verdict,
    components,
    counter,
    resumeAt:
      verdict === "not-a-training-checkpoint" ? undefined : saved === undefined ? 0 : rule.resumeAt(saved),
    resets,
    missing,
  };
}
