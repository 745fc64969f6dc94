import { ReaderError } from "../../errors.js";
import { baseName, joinPath, parentPath, type TreeEntry, type TreeSource } from "../../tree.js";
import type { ShardedFinding } from "../findings.js";
import { attachSources, SourceCache } from "../sources.js";
import {
  type DeepSpeedGroup,
  type DeepSpeedTensor,
  moduleLayout,
  type ZeroLayout,
  zeroLayout,
} from "./layout.js";
import {
  type DeepSpeedRole,
  naturalCompare,
  optimFileName,
  parseDeepSpeedName,
  zero3ModelFileName,
} from "./names.js";
import { type ModelStates, type OptimStates, readModelStates, readOptimStates } from "./parse.js";

export interface DeepSpeedFile {
  /** Relative to the tag directory. */
  readonly name: string;
  readonly role: DeepSpeedRole;
  readonly rank: number | null;
  /** `bf16_` for bf16 runs' optimizer files, else "". */
  readonly prefix: string;
  readonly size: number;
}

export interface DeepSpeedCheckpoint {
  readonly kind: "deepspeed";
  readonly tree: TreeSource;
  /** The save directory (where `latest` is). */
  readonly dir: string;
  /** What `latest` says (trimmed, as the engine reads it), or null when there is no `latest`. */
  readonly latest: string | null;
  /** Tag directories in the save directory, in natural order. */
  readonly tags: readonly string[];
  /** The tag read: the one asked for, else `latest`'s, else the last tag (with a `latest-missing` finding). */
  readonly tag: string | null;
  /** `zero_to_fp32.py`, which the engine copies beside `latest` when ZeRO is on. */
  readonly recoveryScript: boolean;
  readonly stage: number | null;
  readonly worldSize: number | null;
  readonly dsVersion: string | null;
  /** `global_steps` from the model states: the counter a resume continues from. */
  readonly globalSteps: number | null;
  readonly modelFiles: readonly DeepSpeedFile[];
  readonly optimFiles: readonly DeepSpeedFile[];
  readonly groups: readonly DeepSpeedGroup[];
  /** The fp32 state dict as zero_to_fp32 rebuilds it, in its order; without ZeRO, the saved module. */
  readonly tensors: readonly DeepSpeedTensor[];
  readonly findings: readonly ShardedFinding[];
}

/** What reading the values needs: the parsed files, kept with the checkpoint. */
export interface DeepSpeedParsed {
  readonly model: ModelStates | undefined;
  readonly optim: ReadonlyArray<OptimStates | undefined>;
  readonly zero3Models: ReadonlyArray<ModelStates | undefined>;
}

const parsed = new WeakMap<DeepSpeedCheckpoint, DeepSpeedParsed>();

export function deepSpeedParsed(checkpoint: DeepSpeedCheckpoint): DeepSpeedParsed {
  const state = parsed.get(checkpoint);
  if (!state) throw new ReaderError("not-a-checkpoint", "not a checkpoint opened by openDeepSpeed");
  return state;
}

const LATEST = "latest";
const RECOVERY_SCRIPT = "zero_to_fp32.py";

function deepSpeedFiles(entries: readonly TreeEntry[]): DeepSpeedFile[] {
  const out: DeepSpeedFile[] = [];
  for (const entry of entries) {
    const name = entry.kind === "file" ? parseDeepSpeedName(entry.name) : undefined;
    if (name && name.mpRank === 0)
      out.push({ name: entry.name, role: name.role, rank: name.rank, prefix: name.prefix, size: entry.size });
  }
  return out.sort((a, b) => naturalCompare(a.name, b.name));
}

/** Whether a directory is a DeepSpeed save directory (`latest`, or tag directories of ZeRO files) or a tag directory. */
export function looksLikeDeepSpeed(tree: TreeSource, dir: string): boolean {
  const entries = tree.list(dir) ?? [];
  if (deepSpeedFiles(entries).length > 0) return true;
  return tagDirs(tree, dir, entries).length > 0;
}

function tagDirs(tree: TreeSource, dir: string, entries: readonly TreeEntry[]): string[] {
  return entries
    .filter(
      (e) => e.kind === "directory" && deepSpeedFiles(tree.list(joinPath(dir, e.name)) ?? []).length > 0,
    )
    .map((e) => e.name)
    .sort(naturalCompare);
}

/**
 * Opens a DeepSpeed checkpoint: `dir` is the save directory (the tag is `tag`, else what `latest` names) or a
 * tag directory itself. Reads `latest`, the zip directory and pickle of every model- and optimizer-states
 * file of the tag; no tensor bytes.
 */
export function openDeepSpeed(tree: TreeSource, dir: string, tag?: string): DeepSpeedCheckpoint {
  let saveDir = dir;
  let chosen = tag;
  if (tag === undefined && deepSpeedFiles(tree.list(dir) ?? []).length > 0) {
    saveDir = parentPath(dir);
    chosen = baseName(dir);
  }
  const entries = tree.list(saveDir) ?? [];
  const findings: ShardedFinding[] = [];
  const tags = tagDirs(tree, saveDir, entries);
  const latest = entries.some((e) => e.kind === "file" && e.name === LATEST)
    ? readLatest(tree, joinPath(saveDir, LATEST))
    : null;
  if (chosen === undefined) {
    if (latest !== null) chosen = latest;
    else {
      findings.push({ code: "latest-missing", severity: "warning", tags });
      chosen = tags[tags.length - 1];
    }
  }
  const tagEntries = chosen === undefined ? undefined : tree.list(joinPath(saveDir, chosen));
  if (chosen !== undefined && tagEntries === undefined)
    findings.push({ code: "latest-target-missing", severity: "error", tag: chosen });
  const files = deepSpeedFiles(tagEntries ?? []);
  // Only model-parallel rank 0 is read (as zero_to_fp32 does); the other ranks' slices are named.
  const otherRanks = (tagEntries ?? []).filter(
    (e) => e.kind === "file" && (parseDeepSpeedName(e.name)?.mpRank ?? 0) > 0,
  );
  if (otherRanks.length > 0) {
    const names = [
      ...files.filter((f) => f.role === "model-states").map((f) => f.name),
      ...otherRanks.map((e) => e.name),
    ];
    findings.push({ code: "model-parallel-ranks", severity: "warning", files: names.sort(naturalCompare) });
  }
  const modelFiles = files.filter((f) => f.role === "model-states");
  const optimFiles = files.filter((f) => f.role === "optim-states");
  const base = {
    kind: "deepspeed",
    tree,
    dir: saveDir,
    latest,
    tags,
    tag: chosen ?? null,
    recoveryScript: entries.some((e) => e.kind === "file" && e.name === RECOVERY_SCRIPT),
    modelFiles,
    optimFiles,
  } as const;
  const empty = { stage: null, worldSize: null, dsVersion: null, globalSteps: null, groups: [], tensors: [] };
  if (chosen === undefined || tagEntries === undefined) {
    const checkpoint: DeepSpeedCheckpoint = { ...base, ...empty, findings };
    parsed.set(checkpoint, { model: undefined, optim: [], zero3Models: [] });
    return checkpoint;
  }
  const tagDir = joinPath(saveDir, chosen);
  return readTag(base, tagDir, modelFiles, optimFiles, findings);
}

function readLatest(tree: TreeSource, path: string): string {
  const source = tree.open(path);
  try {
    return new TextDecoder().decode(source.read(0, Math.min(source.size, 4096))).trim();
  } finally {
    source.close();
  }
}

function readTag(
  base: Omit<
    DeepSpeedCheckpoint,
    "stage" | "worldSize" | "dsVersion" | "globalSteps" | "groups" | "tensors" | "findings"
  >,
  tagDir: string,
  modelFiles: readonly DeepSpeedFile[],
  optimFiles: readonly DeepSpeedFile[],
  findings: ShardedFinding[],
): DeepSpeedCheckpoint {
  // The parsed files stay open in what becomes the checkpoint's source cache.
  const sources = new SourceCache(base.tree);
  const path = (file: DeepSpeedFile) => joinPath(tagDir, file.name);
  const unreadable = (file: DeepSpeedFile, error: unknown): undefined => {
    if (!(error instanceof ReaderError)) throw error;
    findings.push({
      code: "zero-state-unreadable",
      severity: "error",
      file: file.name,
      reason: error.message,
    });
    return undefined;
  };
  const first = modelFiles[0];
  let model: ModelStates | undefined;
  if (first) {
    try {
      model = readModelStates(sources, path(first));
    } catch (error) {
      unreadable(first, error);
    }
  }
  if (model && optimFiles.length === 0 && !model.zeroOptimizerState) {
    // No ZeRO: one model-states file holds the module and the whole optimizer; no partitions are expected.
    return tagCheckpoint(
      base,
      sources,
      { model, optim: [], zero3Models: [] },
      0,
      model.dpWorldSize,
      moduleLayout(model),
      findings,
    );
  }
  const byRank = new Map<number, OptimStates>();
  for (const file of optimFiles) {
    try {
      byRank.set(file.rank as number, readOptimStates(sources, path(file), file.rank as number));
    } catch (error) {
      unreadable(file, error);
    }
  }
  const known = [...byRank.values()][0];
  const stage = known?.stage ?? null;
  const worldSize = known?.partitionCount ?? model?.dpWorldSize ?? null;
  const prefix = optimFiles[0]?.prefix ?? "";
  if (worldSize !== null) {
    if (optimFiles.length !== worldSize) {
      findings.push({
        code: "world-size-mismatch",
        severity: "error",
        expected: worldSize,
        found: optimFiles.length,
      });
    }
    for (let rank = 0; rank < worldSize; rank++) {
      if (!optimFiles.some((f) => f.rank === rank)) {
        findings.push({
          code: "rank-file-missing",
          severity: "error",
          file: optimFileName(prefix, rank),
          rank,
          role: "optim-states",
        });
      }
    }
  }
  const zero3Models: Array<ModelStates | undefined> = [];
  if (stage !== null && stage >= 3 && worldSize !== null) {
    for (let rank = 0; rank < worldSize; rank++) {
      const file = modelFiles.find((f) => f.rank === rank);
      if (!file) {
        findings.push({
          code: "rank-file-missing",
          severity: "error",
          file: zero3ModelFileName(rank),
          rank,
          role: "model-states",
        });
        zero3Models.push(undefined);
      } else
        zero3Models.push(
          rank === 0 ? model : safeRead(() => readModelStates(sources, path(file)), file, unreadable),
        );
    }
  } else if (modelFiles.length === 0) {
    findings.push({
      code: "rank-file-missing",
      severity: "error",
      file: "mp_rank_00_model_states.pt",
      rank: 0,
      role: "model-states",
    });
  }
  const optim = worldSize === null ? [] : Array.from({ length: worldSize }, (_, r) => byRank.get(r));
  const layout =
    model && stage !== null && worldSize !== null
      ? zeroLayout(stage, worldSize, model, optim, zero3Models)
      : undefined;
  return tagCheckpoint(base, sources, { model, optim, zero3Models }, stage, worldSize, layout, findings);
}

function tagCheckpoint(
  base: Omit<
    DeepSpeedCheckpoint,
    "stage" | "worldSize" | "dsVersion" | "globalSteps" | "groups" | "tensors" | "findings"
  >,
  sources: SourceCache,
  state: DeepSpeedParsed,
  stage: number | null,
  worldSize: number | null,
  layout: ZeroLayout | undefined,
  findings: readonly ShardedFinding[],
): DeepSpeedCheckpoint {
  const checkpoint: DeepSpeedCheckpoint = {
    ...base,
    stage,
    worldSize,
    dsVersion: state.model?.dsVersion ?? null,
    globalSteps: state.model?.globalSteps ?? null,
    groups: layout?.groups ?? [],
    tensors: layout?.tensors ?? [],
    findings: [...findings, ...(layout?.findings ?? [])],
  };
  attachSources(checkpoint, sources);
  parsed.set(checkpoint, state);
  return checkpoint;
}

function safeRead<T>(
  read: () => T,
  file: DeepSpeedFile,
  onError: (file: DeepSpeedFile, error: unknown) => undefined,
): T | undefined {
  try {
    return read();
  } catch (error) {
    return onError(file, error);
  }
}
