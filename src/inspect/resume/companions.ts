import { basename, dirname, join } from "../../reader/posixPath.js";
import type { TreeFiles } from "../treeFiles.js";
import type { ConventionId } from "./conventions.js";

/**
 * Parts of one checkpoint that a framework saves in other files beside it and loads together with it:
 * AllenNLP's `training_state_e3_b0.th` holds the optimizer and counters of the weights in
 * `model_state_e3_b0.th`; under ZeRO, DeepSpeed's `mp_rank_00_model_states.pt` holds `optimizer: None` and
 * the optimizer lives in the `*_optim_states.pt` shards. ckpt judges such a file together with its companions.
 */
export interface Companion {
  /**
   * The top-level key the companion stands for in the judged root (`model`, `optimizer`); with `holdsState`,
   * the key the file's own content goes under.
   */
  readonly key: string;
  /** Absolute or caller-relative paths, in the directory of the file. */
  readonly files: readonly string[];
  /**
   * The companion holds the training state and the file itself only the weights (AllenNLP's model_state
   * with its training_state): the judged root is the companion's, with the file's content at `key`.
   */
  readonly holdsState?: boolean;
}

/** `training_state_e3_b0.th` -> `model_state_e3_b0.th` (AllenNLP 2.x; 1.x names `..._epoch_3.th` alike). */
function weightsBeside(file: string): string | undefined {
  const name = basename(file);
  if (!name.includes("training_state")) return undefined;
  return join(dirname(file), name.replace("training_state", "model_state"));
}

/**
 * The companions a file of this convention has, whether or not they exist (the caller checks): a missing
 * companion is itself a finding.
 */
export function companionsOf(file: string, convention: ConventionId, fs: TreeFiles): Companion[] {
  switch (convention) {
    case "allennlp":
    case "training-loop": {
      const weights = weightsBeside(file);
      return weights ? [{ key: "model", files: [weights] }] : [];
    }
    case "deepspeed": {
      const shards = fs.list(dirname(file)).filter((n) => /optim_states\.pt$/.test(n));
      return shards.length > 0
        ? [{ key: "optimizer", files: shards.map((n) => join(dirname(file), n)) }]
        : [];
    }
    default:
      return [];
  }
}
