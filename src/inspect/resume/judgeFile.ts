import type { Checkpoint } from "../../reader/checkpoint.js";
import { dictGet, dictSet, isBoxed, type PyValue, pyDict } from "../../reader/pickle/value.js";
import { basename } from "../../reader/posixPath.js";
import type { TreeFiles } from "../treeFiles.js";
import { type Companion, companionsOf } from "./companions.js";
import { detectFileConvention } from "./fingerprints.js";
import { isPresent } from "./lookup.js";
import { judgeResume, type ResumeVerdict } from "./verdict.js";

/** The resume verdict of one file, judged with the companions its framework loads together with it. */
export interface FileJudgement {
  readonly verdict: ResumeVerdict;
  /** Companion files the framework needs that are not beside the file (AllenNLP's model_state_*.th). */
  readonly missingCompanions: string[];
}

interface Completed {
  readonly root: PyValue;
  readonly found: ReadonlyArray<{ companion: Companion; files: string[] }>;
  readonly missing: string[];
}

/** `root` with each absent companion key standing for the files that hold it, where they exist. */
function withCompanions(root: PyValue, companions: readonly Companion[], fs: TreeFiles): Completed {
  if (!isBoxed(root, "dict")) return { root, found: [], missing: [] };
  const found: Array<{ companion: Companion; files: string[] }> = [];
  const missing: string[] = [];
  for (const companion of companions) {
    if (isPresent(dictGet(root, companion.key))) continue;
    const files = companion.files.filter((f) => fs.exists(f));
    if (files.length > 0) found.push({ companion, files });
    else missing.push(...companion.files.map((f) => basename(f)));
  }
  if (found.length === 0) return { root, found, missing };
  const copy = pyDict(root.className);
  root.keys.forEach((key, i) => {
    dictSet(copy, key, root.values[i] as PyValue);
  });
  for (const { companion, files } of found) dictSet(copy, companion.key, `saved in ${files.join(", ")}`);
  return { root: copy, found, missing };
}

/** Says which file holds a companion's part ("model (model_state_e3_b0.th)"), not the stand-in key. */
function relabel(verdict: ResumeVerdict, found: Completed["found"]): ResumeVerdict {
  if (found.length === 0) return verdict;
  const components = verdict.components.map((state) => {
    const hit = found.find(({ companion }) => state.status === "present" && state.key === companion.key);
    if (!hit || state.status !== "present") return state;
    const [first, ...rest] = hit.files.map((f) => basename(f));
    return { ...state, key: rest.length > 0 ? `${first} and ${rest.length} more` : (first as string) };
  });
  return { ...verdict, components };
}

/**
 * The convention and resume verdict of a file that holds an object graph (TorchScript modules are not judged),
 * with the companion files its framework loads beside it looked up in `fs`, the tree `file` is a path of.
 * Without a tree (a single file given as bytes), companions are not looked for.
 */
export function judgeFile(
  checkpoint: Checkpoint,
  file: string,
  fs: TreeFiles | undefined,
): FileJudgement | undefined {
  if (checkpoint.format === "pointer" || checkpoint.format === "torchscript") return undefined;
  const guess = detectFileConvention(checkpoint.root, file);
  const companions = fs ? companionsOf(file, guess.convention, fs) : [];
  const completed = fs
    ? withCompanions(checkpoint.root, companions, fs)
    : { root: checkpoint.root, found: [], missing: [] };
  const verdict = relabel(judgeResume(completed.root, guess, file), completed.found);
  return { verdict, missingCompanions: completed.missing };
}
