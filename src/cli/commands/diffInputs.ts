import { statSync } from "node:fs";
import { join } from "node:path";
import type { SideDescription } from "../../inspect/diff/diff.js";
import { checkpointSide, type DiffSide, shardedSide } from "../../inspect/diff/side.js";
import { planResume } from "../../inspect/runs/node.js";
import { planRemoteResume } from "../../inspect/runs/remoteRuns.js";
import type { Checkpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import {
  openLocation,
  openSource,
  type RemoteTreeSource,
  readLocated,
  transferOf,
} from "../../reader/location.js";
import { NodeTree, openShardedPath } from "../../reader/nodeTree.js";
import { openCheckpoint } from "../../reader/open.js";
import { isRemotePath } from "../../reader/remote/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import {
  closeSharded,
  detectSharded,
  openSharded,
  type ShardedCheckpoint,
} from "../../reader/sharded/open.js";
import type { ByteSource } from "../../reader/source.js";
import { addTransfers } from "../transfer.js";

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
  /** What reading a remote input moved so far; undefined for a local one. */
  readonly transfer: () => Readonly<Transfer> | undefined;
  readonly close: () => void;
}

type Opened = (
  | { readonly kind: "file"; readonly file: string; readonly checkpoint: Checkpoint }
  | { readonly kind: "sharded"; readonly file: string; readonly checkpoint: ShardedCheckpoint }
) & {
  /** The remote tree a sharded or run input was read through, which counts what it moved. */
  readonly tree?: RemoteTreeSource;
};

/** What was read of a remote input before its checkpoint was opened (its run's plan), to be counted too. */
type Earlier = { readonly transfer?: Readonly<Transfer> };

/**
 * A remote argument, opened once: a file (a pointer names its target by URL), a prefix holding a sharded
 * checkpoint, or a run prefix, which stands for the checkpoint its plan chooses.
 */
async function openRemoteInput(
  input: string,
): Promise<{ opened: Opened; run: SideDescription["run"]; earlier: Earlier }> {
  const opened = openLocation(input);
  if (opened.kind === "file") return { opened: remoteFile(input, opened.source), run: null, earlier: {} };
  const tree = opened.tree as RemoteTreeSource;
  if (detectSharded(tree, "") !== undefined)
    return {
      opened: { kind: "sharded", file: input, checkpoint: openSharded(tree, ""), tree },
      run: null,
      earlier: {},
    };
  tree.close();
  const plan = await planRemoteResume(input, { verify: "none" });
  if (!plan.choice) {
    throw new ReaderError("no-chosen-checkpoint", "a run directory whose resume plan chooses no checkpoint", {
      file: input,
    });
  }
  const chosen = `${input.replace(/\/+$/, "")}/${plan.choice.file}`;
  const inner = await openRemoteInput(chosen);
  return {
    opened: inner.opened,
    run: { dir: input, convention: plan.convention, choice: plan.choice.file },
    earlier: { transfer: addTransfers([plan.transfer, tree.totals()]) as Transfer },
  };
}

/**
 * The checkpoint read from `path`, or, for a pointer file, what `follow` opens at the target it names (a
 * pointer stands for its target; one whose target is gone is an error of its own).
 */
function fileOrTarget(path: string, checkpoint: Checkpoint, follow: (target: string) => Opened): Opened {
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
  return follow(checkpoint.target);
}

function remoteFile(path: string, source: ByteSource): Opened {
  return fileOrTarget(path, readLocated(source, path), (target) => remoteFile(target, openSource(target)));
}

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
  return fileOrTarget(path, openCheckpoint(path), openPath);
}

async function openRun(dir: string): Promise<{ opened: Opened; run: NonNullable<SideDescription["run"]> }> {
  const plan = await planResume(dir, { verify: "none" });
  if (!plan.choice) {
    throw new ReaderError("no-chosen-checkpoint", "a run directory whose resume plan chooses no checkpoint", {
      file: dir,
    });
  }
  const chosen = isRemotePath(dir)
    ? `${dir.replace(/\/+$/, "")}/${plan.choice.file}`
    : join(dir, plan.choice.file);
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
  const { opened, run, earlier } = isRemotePath(input)
    ? await openRemoteInput(input)
    : isDirectory(input) && detectSharded(new NodeTree(input)) === undefined
      ? { ...(await openRun(input)), earlier: {} }
      : { opened: openPath(input), run: null, earlier: {} };
  const close = () => {
    if (opened.kind === "file") opened.checkpoint.source.close();
    else closeSharded(opened.checkpoint);
    opened.tree?.close();
  };
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
      transfer: () =>
        addTransfers([
          earlier.transfer,
          opened.kind === "file" ? transferOf(opened.checkpoint.source) : opened.tree?.totals(),
        ]),
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
