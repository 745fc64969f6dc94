import { ReaderError } from "../../reader/errors.js";
import { dictSet, isBoxed, type PyDict, type PyValue, pyDict, pyList } from "../../reader/pickle/value.js";
import {
  closeSharded,
  openSharded,
  type ShardedCheckpoint,
  type ShardedFinding,
  shardedFileBytes,
} from "../../reader/sharded/index.js";
import { completenessFindings } from "../sharded/completeness.js";
import { blockingFinding, shardedFindingMessage } from "../sharded/findingText.js";
import { dcpStateDict } from "../sharded/state.js";
import type { TreeFiles } from "../treeFiles.js";
import type { CandidateStatus } from "./candidates.js";
import type { FileProblem } from "./integrity.js";

/**
 * Sharded checkpoints as run candidates: a directory opened as one logical checkpoint, its completeness
 * findings turned into the candidate's status the way loading would fail (a missing rank file makes the
 * directory incomplete, a short one truncated), and its state read as the dict the framework would load.
 */
export type ShardedOpen =
  | { readonly ok: true; readonly checkpoint: ShardedCheckpoint; readonly sizeBytes: number }
  | {
      readonly ok: false;
      readonly status: CandidateStatus;
      readonly problem: FileProblem;
      readonly sizeBytes: number;
    };

const STATUS_OF_FINDING: Partial<Record<ShardedFinding["code"], CandidateStatus>> = {
  "file-too-short": "truncated",
  "file-missing": "incomplete-dir",
  "metadata-missing": "incomplete-dir",
  "rank-file-missing": "incomplete-dir",
  "world-size-mismatch": "incomplete-dir",
  "shard-missing": "incomplete-dir",
  "latest-target-missing": "incomplete-dir",
};

/** A sharded checkpoint its caller has open, and the path it was opened from. */
export interface OpenedSharded {
  readonly path: string;
  readonly checkpoint: ShardedCheckpoint;
}

/**
 * Opens `path` as a sharded checkpoint and says whether it would load whole. Close `checkpoint` when ok
 * (closing only drops file handles: a closed checkpoint reopens its files when read again). `opened`, when
 * the caller already holds the checkpoint at `path` (inspect does), is judged instead of decoding its
 * metadata a second time: a 50,000-tensor `.metadata` is tens of megabytes of pickle.
 */
export function openShardedCandidate(fs: TreeFiles, path: string, opened?: OpenedSharded): ShardedOpen {
  let checkpoint: ShardedCheckpoint;
  try {
    checkpoint =
      opened !== undefined && opened.path === path ? opened.checkpoint : openSharded(fs.tree, path);
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
    return {
      ok: false,
      status: "corrupt",
      problem: { code: error.code, message: error.message },
      sizeBytes: 0,
    };
  }
  const sizeBytes = shardedFileBytes(checkpoint);
  const blocking = blockingFinding(completenessFindings(checkpoint));
  if (blocking) {
    closeSharded(checkpoint);
    return {
      ok: false,
      status: STATUS_OF_FINDING[blocking.code] ?? "corrupt",
      problem: { code: blocking.code, message: shardedFindingMessage(blocking) },
      sizeBytes,
    };
  }
  return { ok: true, checkpoint, sizeBytes };
}

/** The directory's state: for DCP the nested state dict, for the others that they hold weights. */
export function shardedState(checkpoint: ShardedCheckpoint): PyDict {
  if (checkpoint.kind === "dcp") return dcpStateDict(checkpoint);
  const root = pyDict();
  dictSet(root, "model", true);
  return root;
}

/**
 * Lightning's sharded `*.ckpt/` directory (ModelParallelStrategy, FSDPStrategy with `state_dict_type="sharded"`):
 * DCP holds `state_dict` and `optimizer_N`, `meta.pt` everything else; Lightning loads the optimizers back
 * into `optimizer_states` in order.
 */
export function lightningShardedRoot(dcp: PyDict, meta: PyValue | undefined): PyDict {
  const root = pyDict();
  if (isBoxed(meta, "dict")) {
    meta.keys.forEach((k, i) => {
      dictSet(root, k, meta.values[i] as PyValue);
    });
  }
  const optimizers: PyValue[] = [];
  dcp.keys.forEach((key, i) => {
    const value = dcp.values[i] as PyValue;
    if (typeof key === "string" && /^optimizer_\d+$/.test(key)) optimizers[Number(key.slice(10))] = value;
    else dictSet(root, key, value);
  });
  if (optimizers.length > 0) dictSet(root, "optimizer_states", pyList(optimizers.map((o) => o ?? null)));
  return root;
}
