import { isBoxed, type PyValue, type TorchTensor } from "../../reader/pickle/value.js";
import {
  CONVENTIONS,
  type ComponentRule,
  type ConventionId,
  type CounterName,
  type CounterRule,
  counterInName,
  countersFor,
  nameCounterRule,
} from "./conventions.js";
import type { ConventionGuess } from "./fingerprints.js";
import { intValue, isPresent, lookup } from "./lookup.js";

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
  /** The run never had one (no LR scheduler configured): nothing to restore. */
  | { readonly component: Component; readonly status: "unused"; readonly why: string }
  /** Not part of the convention (fvcore saves no RNG state): nothing to restore either way. */
  | { readonly component: Component; readonly status: "not-saved" };

export type CounterSource = "checkpoint" | "file-name";

export interface CounterValue {
  readonly name: CounterName;
  readonly value: number;
  readonly source: CounterSource;
  /** Where it was read: a key path, or the file name. */
  readonly from: string;
  /** What the value means and how the restart point follows from it (from the conventions table). */
  readonly meaning: string;
}

export type Verdict =
  | "resumable"
  | "weights-only"
  | "incomplete"
  /** Optimizer and counter without the weights (AllenNLP's training_state_*.th): half of a checkpoint. */
  | "training-state-only"
  | "not-a-training-checkpoint";

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
  /** The framework marked the run finished in this file (and refuses to resume it). */
  readonly finished?: StrippedCounter;
}

function isEmptyContainer(value: PyValue | undefined): boolean {
  if (isBoxed(value, "list") || isBoxed(value, "tuple")) return value.items.length === 0;
  return isBoxed(value, "dict") && value.keys.length === 0;
}

function componentState(root: PyValue, component: Component, rule: ComponentRule): ComponentState {
  switch (rule.kind) {
    case "derived":
      return { component, status: "not-needed", why: rule.why };
    case "not-saved":
      return { component, status: "not-saved" };
    case "keys":
    case "optional-keys": {
      for (const path of rule.paths) {
        const value = path.length === 0 ? root : lookup(root, path);
        if (isPresent(value)) return { component, status: "present", key: path.join(".") || "(root)" };
        if (rule.kind === "keys" && rule.noneMeansUnused && value === null)
          return { component, status: "unused", why: rule.noneMeansUnused };
        if (rule.kind === "keys" && rule.emptyMeansUnused && isEmptyContainer(value))
          return { component, status: "unused", why: rule.emptyMeansUnused };
        // An optional part saved empty was switched off (a disabled GradScaler's state_dict is {}).
        if (rule.kind === "optional-keys" && isEmptyContainer(value))
          return {
            component,
            status: "unused",
            why: `${path.join(".")} is saved empty: the feature was off`,
          };
      }
      if (rule.kind === "keys") return { component, status: "missing" };
      return rule.absentMeansUnused
        ? { component, status: "unused", why: rule.absentMeansUnused }
        : { component, status: "not-saved" };
    }
  }
}

function counterValue(rule: CounterRule, value: number, source: CounterSource, from: string): CounterValue {
  return { name: rule.name, value, source, from, meaning: rule.meaning };
}

interface LocatedCounter {
  readonly value: CounterValue;
  readonly rule: CounterRule;
}

/** A counter the framework set to "none" when the run finished (ultralytics `epoch: -1`). */
export interface StrippedCounter {
  readonly name: CounterName;
  readonly value: number;
  readonly from: string;
  /** The counter value the run was configured to end at, when the file says. */
  readonly end: number | null;
}

function strippedCounter(
  root: PyValue,
  convention: ConventionId,
  fileName: string,
): StrippedCounter | undefined {
  for (const counter of countersFor(CONVENTIONS[convention], fileName)) {
    for (const path of counter.paths) {
      const value = intValue(lookup(root, path));
      if (value !== undefined && counter.stripped?.(value)) {
        const end = counter.end ? (intValue(lookup(root, counter.end)) ?? null) : null;
        return { name: counter.name, value, from: path.join("."), end };
      }
    }
  }
  return undefined;
}

/** The counter from the checkpoint itself, else from the file name (fvcore `model_0059999.pth`). */
function locateCounter(
  root: PyValue,
  convention: ConventionId,
  fileName: string,
): LocatedCounter | undefined {
  const rule = CONVENTIONS[convention];
  for (const counter of countersFor(rule, fileName)) {
    for (const path of counter.paths) {
      const raw = lookup(root, path);
      const value = intValue(raw) ?? scalarTensorHint(raw);
      if (value === undefined || counter.stripped?.(value)) continue;
      return { value: counterValue(counter, value, "checkpoint", path.join(".")), rule: counter };
    }
  }
  const fromName = counterInName(rule.counterInName, fileName);
  const nameRule = nameCounterRule(rule, fileName);
  if (fromName === undefined || nameRule === undefined) return undefined;
  const from = fileName.split("/").pop() ?? fileName;
  return { value: counterValue(nameRule, fromName, "file-name", from), rule: nameRule };
}

export function findCounter(
  root: PyValue,
  guess: ConventionGuess,
  fileName: string,
): CounterValue | undefined {
  return locateCounter(root, guess.convention, fileName)?.value;
}

/** Counters saved as tensors cannot be read without tensor bytes; they still count as present. */
function scalarTensorHint(value: PyValue | undefined): number | undefined {
  return isBoxed(value, "tensor") && (value as TorchTensor).shape.length === 0 ? Number.NaN : undefined;
}

/** RNG state matters for exact data order, not for whether training continues correctly. */
const NON_ESSENTIAL: ReadonlySet<Component> = new Set(["scaler", "rng", "ema"]);

/** The restart point a counter read from a file name gives, by the rule that applies to that name. */
export function resumeAtFromName(convention: ConventionId, fileName: string, counter: number): number {
  return nameCounterRule(CONVENTIONS[convention], fileName)?.resumeAt(counter) ?? counter;
}

function verdictOf(
  convention: ConventionId,
  status: (c: Component) => ComponentState["status"] | undefined,
  essentialMissing: readonly Component[],
): Verdict {
  if (convention === "state-dict") return "not-a-training-checkpoint";
  if (status("model") !== "present") {
    const stateSaved = status("optimizer") === "present" || status("counter") === "present";
    return stateSaved ? "training-state-only" : "not-a-training-checkpoint";
  }
  if (essentialMissing.length === 0) return "resumable";
  if (status("optimizer") === "missing" && status("counter") === "missing") return "weights-only";
  return "incomplete";
}

export function judgeResume(root: PyValue, guess: ConventionGuess, fileName: string): ResumeVerdict {
  const rule = CONVENTIONS[guess.convention];
  const located = locateCounter(root, guess.convention, fileName);
  const counter = located?.value;
  const components: ComponentState[] = [
    componentState(root, "model", rule.model),
    componentState(root, "optimizer", rule.optimizer),
    componentState(root, "scheduler", rule.scheduler),
    counter?.source === "checkpoint"
      ? { component: "counter", status: "present", key: counter.from }
      : rule.counters.length > 0
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
  const verdict = verdictOf(guess.convention, status, essentialMissing);

  const resets = verdict === "not-a-training-checkpoint" ? [] : missing.filter((c) => c !== "model");
  const saved =
    counter?.source === "checkpoint" && Number.isFinite(counter.value) ? counter.value : undefined;
  const finished = located === undefined ? strippedCounter(root, guess.convention, fileName) : undefined;
  return {
    ...(finished ? { finished } : {}),
    convention: guess.convention,
    conventionLabel: rule.label,
    evidence: guess.evidence,
    verdict,
    components,
    counter,
    resumeAt:
      verdict === "not-a-training-checkpoint"
        ? undefined
        : saved === undefined || located === undefined
          ? 0
          : located.rule.resumeAt(saved),
    resets,
    missing,
  };
}
