import { statSync } from "node:fs";
import { join } from "node:path";
import type { SideDescription } from "../../inspect/diff/diff.js";
import { checkpointSide, type DiffSide, shardedSide } from "../../inspect/diff/side.js";
import { planResume } from "../../inspect/runs/node.js";
import type { Checkpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { NodeTree, openShardedPath } from "../../reader/nodeTree.js";
import { openCheckpoint } from "../../reader/open.js";
import { closeSharded, detectSharded, type ShardedCheckpoint } from "../../reader/sharded/open.js";

/**
 * What a `ckpt diff` argument names, opened: a checkpoint file (a pointer file stands for the file it names),
 * a sharded checkpoint (a DCP or DeepSpeed directory, Hugging Face shards or their `*.index.json`), or a run
 * directory, which stands for the checkpoint its resume plan chooses (the one a resume would load).
 */
export interface OpenedInput {
  readonly description: SideDescription;
  readonly side: DiffSide;
  /** Throws `file-changed` when a file was modified while being read. */
  readonly assertUnchanged: () => void;
  readonly close: () => void;
}

type Opened =
  | { readonly kind: "file"; readonly file: string; readonly checkpoint: Checkpoint }
  | { readonly kind: "sharded"; readonly file: string; readonly checkpoint: ShardedCheckpoint };

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // missing paths are reported by the file reader, with their code
  }
}

function openPath(path: string): Opened {
  if (
    path.endsWith(".index.json") ||
    (isDirectory(path) && detectSharded(new NodeTree(path)) !== undefined)
  ) {
    return { kind: "sharded", file: path, checkpoint: openShardedPath(path) };
  }
  const checkpoint = openCheckpoint(path);
  if (checkpoint.format !== "pointer") return { kind: "file", file: path, checkpoint };
  checkpoint.source.close();
  if (!checkpoint.targetExists) {
    throw new ReaderError(
      "pointer-target-missing",
      `a pointer to ${checkpoint.target}, which does not exist`,
      {
        file: path,
      },
    );
  }
  return openPath(checkpoint.target);
}

async function openRun(dir: string): Promise<{ opened: Opened; run: NonNullable<SideDescription["run"]> }> {
  const plan = await planResume(dir, { verify: "none" });
  if (!plan.choice) {
    throw new ReaderError("no-chosen-checkpoint", "a run directory whose resume plan chooses no checkpoint", {
      file: dir,
    });
  }
  const chosen = join(dir, plan.choice.file);
  return {
    opened: openPath(chosen),
    run: { dir, convention: plan.convention, choice: plan.choice.file },
  };
}

function sideOf(opened: Opened, select: string): DiffSide {
  return opened.kind === "file"
    ? checkpointSide(opened.checkpoint, select)
    : shardedSide(opened.checkpoint, select);
}

/** Opens one argument and reads its structure (no tensor bytes); `select` is the dotted key compared. */
export async function openDiffInput(input: string, select: string | undefined): Promise<OpenedInput> {
  const directory = isDirectory(input);
  const { opened, run } =
    directory && detectSharded(new NodeTree(input)) === undefined
      ? await openRun(input)
      : { opened: openPath(input), run: null };
  const close = () =>
    opened.kind === "file" ? opened.checkpoint.source.close() : closeSharded(opened.checkpoint);
  try {
    const side = sideOf(opened, select ?? "");
    if (select !== undefined && side.tensors.length === 0 && side.values.length === 0) {
      throw new ReaderError("nothing-selected", `nothing in it under the key ${select}`, { file: input });
    }
    return {
      description: {
        input,
        file: opened.file,
        format: opened.kind === "file" ? opened.checkpoint.format : opened.checkpoint.kind,
        select: select ?? null,
        run,
      },
      side,
      assertUnchanged: () => {
        if (opened.kind === "file") opened.checkpoint.source.assertUnchanged();
      },
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
