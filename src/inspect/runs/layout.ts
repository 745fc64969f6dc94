import { dirname, isAbsolute, join, normalize, relative, resolve } from "../../reader/posixPath.js";
import { detectSharded, looksLikeDcpHfShards } from "../../reader/sharded/index.js";
import type { Companion } from "../resume/companions.js";
import { CONVENTIONS, type ConventionId, counterInName } from "../resume/conventions.js";
import type { TreeFiles } from "../treeFiles.js";

/**
 * How a run directory is laid out: which convention wrote it, its pointer file, and every checkpoint in it
 * that a resume could use. Names follow `conventions.md`; nothing here opens a checkpoint.
 */
export type PointerKind = "fvcore" | "mmengine" | "deepspeed" | "megatron" | "lightning-last" | "mmcv-latest";

/** Pointers that are text files ckpt can rewrite as their framework writes them; links are the OS's. */
export const TEXT_POINTER_KINDS: ReadonlySet<PointerKind> = new Set([
  "fvcore",
  "mmengine",
  "deepspeed",
  "megatron",
]);

export interface PointerFileInfo {
  readonly kind: PointerKind;
  /** Path relative to the run dir. */
  readonly file: string;
  /** Raw text (for file pointers) or the symlink target (for `last.ckpt` links). */
  readonly content: string | undefined;
  /** Absolute path the framework would open, or undefined when the pointer itself is absent. */
  readonly target: string | undefined;
  readonly exists: boolean;
}

export interface CandidateRef {
  /** Absolute path. */
  readonly path: string;
  /** Relative to the run dir. */
  readonly rel: string;
  readonly kind: "file" | "dir";
  readonly counterFromName: number | undefined;
  readonly mtimeMs: number;
  /** Lightning: the logger version folder (`version_0`) the file belongs to. */
  readonly group: string | undefined;
  /**
   * Finer order than the counter, from the name (AllenNLP's `e2_b5` comes after `e2_b0`): compared
   * element by element after the counter.
   */
  readonly nameOrder?: readonly number[];
  /** Files the framework loads together with this one (AllenNLP's model_state beside training_state). */
  readonly companions?: readonly Companion[];
}

export interface RunLayout {
  readonly runDir: string;
  readonly convention: ConventionId;
  /** Why this convention, for people. */
  readonly evidence: string;
  readonly pointer: PointerFileInfo | undefined;
  readonly candidates: CandidateRef[];
  /**
   * Among checkpoints holding the same state, the one the framework resumes from (torchvision's
   * checkpoint.pth beside model_N.pth); by default a `last*` file.
   */
  readonly preferred?: RegExp;
}

const CHECKPOINT_FILE = /\.(pt|pth|ckpt|bin|safetensors|pth\.tar)$/;

function candidate(
  fs: TreeFiles,
  runDir: string,
  path: string,
  kind: "file" | "dir",
  pattern?: RegExp,
  group?: string,
): CandidateRef {
  return {
    path,
    rel: relative(runDir, path),
    kind,
    counterFromName: counterInName(pattern, path),
    mtimeMs: fs.mtimeMs(path),
    group,
  };
}

/** A file pointer as its framework reads it: fvcore and DeepSpeed join with the run dir, mmengine does not. */
function filePointer(fs: TreeFiles, runDir: string, file: string, kind: PointerKind): PointerFileInfo {
  const path = join(runDir, file);
  const content = fs.readText(path);
  if (content === undefined) return { kind, file, content: undefined, target: undefined, exists: false };
  const text = content.trim();
  const target = kind === "mmengine" || isAbsolute(text) ? text : join(runDir, text);
  return { kind, file, content, target, exists: true };
}

export const MEGATRON_TRACKER = "latest_checkpointed_iteration.txt";

/** The tracker's text as Python's `int()` reads it (sign, underscores, surrounding spaces), or undefined. */
function trackerIteration(text: string): number | undefined {
  if (!/^\+?\d+(?:_\d+)*$/.test(text)) return undefined;
  return Number(text.replace(/^\+/, "").replaceAll("_", ""));
}

/** get_checkpoint_name's directory for an iteration: `iter_{:07d}` (wider past 9,999,999). */
function megatronIterationName(iteration: number): string {
  return `iter_${String(iteration).padStart(7, "0")}`;
}

/**
 * Megatron-LM's tracker (read_metadata in megatron/training/checkpointing.py): an iteration, which names
 * `iter_{:07d}`, or `release`, which names `release/`. Anything else makes Megatron exit: no target.
 */
function megatronPointer(fs: TreeFiles, runDir: string): PointerFileInfo {
  const file = MEGATRON_TRACKER;
  const content = fs.readText(join(runDir, file));
  if (content === undefined) return { kind: "megatron", file, content, target: undefined, exists: false };
  const text = content.trim();
  const iteration = trackerIteration(text);
  const dir =
    iteration !== undefined ? megatronIterationName(iteration) : text === "release" ? "release" : undefined;
  return { kind: "megatron", file, content, target: dir && join(runDir, dir), exists: true };
}

/**
 * What Megatron's _get_checkpoint_format looks for: metadata.json (with common.pt), mp_rank_0* directories,
 * or, with `bareDcp`, a `.metadata` alone (torch_dcp, which is also any other DCP save).
 */
function holdsMegatronSave(fs: TreeFiles, dir: string, names: Iterable<string>, bareDcp: boolean): boolean {
  for (const name of names) {
    if (name === "metadata.json" || name === "common.pt" || (bareDcp && name === ".metadata")) return true;
    if (/^mp_rank_\d{2}/.test(name) && fs.isDirectory(join(dir, name))) return true;
  }
  return false;
}

const MEGATRON_ITERATION = /(?:^|\/)iter_(\d{7,})$/;

/**
 * One Megatron checkpoint directory given on its own (`iter_NNNNNNN/` holding `mp_rank_*` directories or
 * torch_dist's `common.pt` and `metadata.json`): judged as Megatron's load would read it, not as bare DCP.
 */
function megatronIterationDir(
  fs: TreeFiles,
  runDir: string,
  names: ReadonlySet<string>,
): RunLayout | undefined {
  if (!/(?:^|\/)(?:iter_\d{7,}|release)$/.test(runDir)) return undefined;
  // Given alone, a bare DCP directory stays DCP's: only Megatron's own files make it Megatron's.
  if (!holdsMegatronSave(fs, runDir, names, false)) return undefined;
  return {
    runDir,
    convention: "megatron",
    evidence: "a Megatron-LM checkpoint directory (iter_NNNNNNN with mp_rank_* or common.pt)",
    pointer: undefined,
    candidates: [{ ...candidate(fs, runDir, runDir, "dir", /iter_(\d+)$/), rel: "." }],
  };
}

/**
 * `iter_NNNNNNN/` directories (and `release/`) beside Megatron's tracker file. Without the tracker, only
 * iteration directories that hold a Megatron save count: an empty `iter_0000001/` elsewhere is not one.
 */
function megatronLayout(fs: TreeFiles, runDir: string, names: ReadonlySet<string>): RunLayout | undefined {
  const single = megatronIterationDir(fs, runDir, names);
  if (single) return single;
  const tracker = names.has(MEGATRON_TRACKER);
  const iterations = dirsMatching(fs, runDir, runDir, MEGATRON_ITERATION);
  if (!tracker && !iterations.some((c) => holdsMegatronSave(fs, c.path, fs.list(c.path), true)))
    return undefined;
  const release = join(runDir, "release");
  const candidates = fs.isDirectory(release)
    ? [...iterations, candidate(fs, runDir, release, "dir")]
    : iterations;
  return {
    runDir,
    convention: "megatron",
    evidence: `${MEGATRON_TRACKER} / iter_NNNNNNN directories`,
    pointer: megatronPointer(fs, runDir),
    candidates,
  };
}

/** A pointer that is a file or a symlink to one (mmcv `latest.pth`, Lightning `last.ckpt`). */
function linkPointer(fs: TreeFiles, runDir: string, file: string, kind: PointerKind): PointerFileInfo {
  const path = join(runDir, file);
  if (!fs.present(path)) return { kind, file, content: undefined, target: undefined, exists: false };
  // A symlink names the checkpoint it points at; a copy (Windows) is itself the checkpoint.
  const link = fs.readlink(path);
  const target = link === undefined ? path : resolve(runDir, link);
  return { kind, file, content: link, target: fs.exists(path) ? target : undefined, exists: true };
}

function filesMatching(fs: TreeFiles, runDir: string, dir: string, pattern: RegExp): CandidateRef[] {
  return fs
    .list(dir)
    .map((name) => join(dir, name))
    .filter((path) => pattern.test(path) && fs.isFile(path))
    .map((path) => candidate(fs, runDir, path, "file", pattern));
}

function dirsMatching(fs: TreeFiles, runDir: string, dir: string, pattern: RegExp): CandidateRef[] {
  return fs
    .list(dir)
    .map((name) => join(dir, name))
    .filter((path) => pattern.test(path) && fs.isDirectory(path))
    .map((path) => candidate(fs, runDir, path, "dir", pattern));
}

/** A `.ckpt` file, or the directory of DCP shards and `meta.pt` a sharded strategy saves under that name. */
function lightningCandidate(fs: TreeFiles, runDir: string, path: string, version?: string): CandidateRef {
  return candidate(fs, runDir, path, fs.isDirectory(path) ? "dir" : "file", /step=(\d+)/, version);
}

/**
 * A sharded checkpoint given as the run directory itself (an FSDP2 `dcp.save` directory, a Lightning `*.ckpt/`,
 * a DeepSpeed tag, a Hugging Face model directory with an index): a run of one checkpoint.
 */
function singleShardedLayout(fs: TreeFiles, runDir: string): RunLayout | undefined {
  const kind = detectSharded(fs.tree, runDir);
  if (kind === undefined) return undefined;
  const self = (pattern?: RegExp): CandidateRef => ({
    ...candidate(fs, runDir, runDir, "dir", pattern),
    rel: ".",
  });
  const one = (convention: ConventionId, evidence: string, pattern?: RegExp): RunLayout => ({
    runDir,
    convention,
    evidence,
    pointer: undefined,
    candidates: [self(pattern)],
  });
  if (kind === "dcp" && runDir.endsWith(".ckpt"))
    return one(
      "lightning",
      "a sharded Lightning checkpoint directory (DCP shards and meta.pt)",
      /step=(\d+)/,
    );
  if (kind === "dcp")
    return one(
      "dcp",
      looksLikeDcpHfShards(fs.tree.list(runDir) ?? [])
        ? "a torch.distributed.checkpoint directory of HuggingFaceStorageWriter shards (shard-*-model-*.safetensors)"
        : "a torch.distributed.checkpoint directory (.metadata, *.distcp)",
      /step-(\d+)$/,
    );
  if (kind === "deepspeed")
    return one("deepspeed", "a DeepSpeed checkpoint tag directory", /global_step(\d+)$/);
  return one("state-dict", "a sharded model directory (*.index.json and its shards)");
}

function lightningLayout(fs: TreeFiles, runDir: string): RunLayout | undefined {
  const logs = join(runDir, "lightning_logs");
  const versions = fs.list(logs).filter((v) => /^version_\d+$/.test(v));
  const candidates: CandidateRef[] = [];
  for (const version of versions) {
    const dir = join(logs, version, "checkpoints");
    for (const name of fs.list(dir).filter((n) => n.endsWith(".ckpt"))) {
      candidates.push(lightningCandidate(fs, runDir, join(dir, name), version));
    }
  }
  for (const name of fs.list(join(runDir, "checkpoints")).filter((n) => n.endsWith(".ckpt"))) {
    candidates.push(lightningCandidate(fs, runDir, join(runDir, "checkpoints", name)));
  }
  if (versions.length === 0 && candidates.length === 0) return undefined;
  // ckpt_path="last" looks in ModelCheckpoint's dirpath. An explicit dirpath (checkpoints/) is stable across
  // reruns; the default one is the logger's version folder, and a rerun opens a new, empty version.
  const explicit = join(runDir, "checkpoints", "last.ckpt");
  const numbers = versions.map((v) => Number(v.slice("version_".length)));
  const nextVersion = `version_${numbers.length > 0 ? Math.max(...numbers) + 1 : 0}`;
  const lastPath = fs.exists(explicit) ? explicit : join(logs, nextVersion, "checkpoints", "last.ckpt");
  const exists = fs.exists(lastPath);
  const link = exists ? fs.readlink(lastPath) : undefined;
  return {
    runDir,
    convention: "lightning",
    evidence: `lightning_logs with ${versions.join(", ") || "no versions"}`,
    pointer: {
      kind: "lightning-last",
      file: relative(runDir, lastPath),
      content: link,
      target: exists ? lastPath : undefined,
      exists,
    },
    candidates,
  };
}

/**
 * Recognises the run's convention from what the directory holds, most specific layout first. `runDirInput` is
 * an absolute path in `fs`'s tree.
 */
export function detectRunLayout(runDirInput: string, fs: TreeFiles): RunLayout {
  const runDir = normalize(runDirInput);
  const names = new Set(fs.list(runDir));
  const layout = (
    convention: ConventionId,
    evidence: string,
    candidates: CandidateRef[],
    pointer?: PointerFileInfo,
  ): RunLayout => ({ runDir, convention, evidence, pointer, candidates });

  const globalSteps = dirsMatching(fs, runDir, runDir, /global_step(\d+)$/);
  if (names.has("latest") || globalSteps.length > 0) {
    return layout(
      "deepspeed",
      "latest / global_stepN directories",
      globalSteps,
      filePointer(fs, runDir, "latest", "deepspeed"),
    );
  }

  const megatron = megatronLayout(fs, runDir, names);
  if (megatron) return megatron;

  const single = singleShardedLayout(fs, runDir);
  if (single) return single;

  const fvcoreFiles = filesMatching(fs, runDir, runDir, /(?:^|\/)model_(\d{7})(?:\.resumable)?\.pth$/).concat(
    filesMatching(fs, runDir, runDir, /(?:^|\/)model_final\.pth$/),
  );
  const mmFiles = filesMatching(fs, runDir, runDir, /(?:^|\/)(?:epoch|iter)_(\d+)\.pth$/);
  if (names.has("last_checkpoint")) {
    const text = fs.readText(join(runDir, "last_checkpoint"))?.trim() ?? "";
    const mm = isAbsolute(text) || /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || mmFiles.length > 0;
    if (mm) {
      return layout(
        "mmengine",
        "last_checkpoint holds a path",
        mmFiles,
        filePointer(fs, runDir, "last_checkpoint", "mmengine"),
      );
    }
    return layout(
      "fvcore",
      "last_checkpoint holds a basename",
      fvcoreFiles,
      filePointer(fs, runDir, "last_checkpoint", "fvcore"),
    );
  }

  const lightning = lightningLayout(fs, runDir);
  if (lightning) return lightning;

  const hf = dirsMatching(fs, runDir, runDir, /checkpoint-(\d+)$/);
  if (hf.length > 0) return layout("hf-trainer", "checkpoint-N directories", hf);

  const accelerateRoot = names.has("checkpoints") ? join(runDir, "checkpoints") : runDir;
  const accelerate = dirsMatching(fs, runDir, accelerateRoot, /checkpoint_(\d+)$/);
  if (accelerate.length > 0) return layout("accelerate", "checkpoint_N directories", accelerate);

  const dcpRoot = names.has("checkpoint") ? join(runDir, "checkpoint") : runDir;
  const dcp = dirsMatching(fs, runDir, dcpRoot, /step-(\d+)$/);
  if (dcp.length > 0) return layout("dcp", "torchtitan's step-N directories", dcp);

  if (names.has("checkpoint_last.pt")) {
    // fairseq's save_dir: checkpoint_last.pt (what --restore-file loads by default), checkpoint_best.pt,
    // checkpoint{epoch}.pt and checkpoint_{epoch}_{updates}.pt.
    // The same state is often in three files: checkpoint_last.pt first (what fairseq loads), then the
    // epoch's own file, then checkpoint_best.pt (overwritten whenever validation improves).
    const rank = (file: string) => (/_last\.pt$/.test(file) ? 3 : /_best\.pt$/.test(file) ? 1 : 2);
    const fairseq = filesMatching(
      fs,
      runDir,
      runDir,
      /(?:^|\/)checkpoint(?:_last|_best|\d+|_\d+_\d+)\.pt$/,
    ).map((c) => ({ ...c, nameOrder: [rank(c.rel)] }));
    return layout("fairseq", "checkpoint_last.pt / checkpointN.pt", fairseq);
  }

  const ultralytics = ultralyticsLayout(fs, runDir);
  if (ultralytics) return ultralytics;

  const allennlp = allennlpCandidates(fs, runDir, names);
  if (allennlp.length > 0) return layout("allennlp", "model_state_* / training_state_* pairs", allennlp);

  if (names.has("checkpoint.pth") && [...names].some((n) => /^model_\d+\.pth$/.test(n))) {
    const torchvision = filesMatching(fs, runDir, runDir, /(?:^|\/)model_(\d+)\.pth$/).concat(
      filesMatching(fs, runDir, runDir, /(?:^|\/)checkpoint\.pth$/),
    );
    return {
      ...layout("torchvision", "checkpoint.pth beside model_N.pth (reference scripts)", torchvision),
      preferred: /(?:^|\/)checkpoint\.pth$/,
    };
  }

  if (names.has("last.pth.tar") || [...names].some((n) => /^checkpoint-\d+\.pth\.tar$/.test(n))) {
    const timm = filesMatching(fs, runDir, runDir, /checkpoint-(\d+)\.pth\.tar$/).concat(
      filesMatching(fs, runDir, runDir, /(?:last|model_best)\.pth\.tar$/),
    );
    return layout("timm", "last.pth.tar / checkpoint-N.pth.tar", timm);
  }

  const pytracking = findPytracking(fs, runDir);
  if (pytracking.length > 0) return layout("pytracking", "*_epNNNN.pth.tar files", pytracking);

  if (fvcoreFiles.length > 0) {
    return layout(
      "fvcore",
      "model_NNNNNNN.pth files",
      fvcoreFiles,
      filePointer(fs, runDir, "last_checkpoint", "fvcore"),
    );
  }
  if (mmFiles.length > 0 && fs.present(join(runDir, "latest.pth"))) {
    return layout(
      "mmcv",
      "latest.pth beside epoch_N.pth / iter_N.pth",
      mmFiles,
      linkPointer(fs, runDir, "latest.pth", "mmcv-latest"),
    );
  }
  if (mmFiles.length > 0) {
    return layout(
      "mmengine",
      "epoch_N.pth files",
      mmFiles,
      filePointer(fs, runDir, "last_checkpoint", "mmengine"),
    );
  }
  const loose = filesMatching(fs, runDir, runDir, CHECKPOINT_FILE).map((c) => ({
    ...c,
    counterFromName: counterInName(CONVENTIONS.unknown.counterInName, c.path),
  }));
  return layout("unknown", "checkpoint files without a known layout", loose);
}

/** ltr keeps checkpoints under `checkpoints/<project path>/<NetType>_epNNNN.pth.tar`, a few levels down. */
function findPytracking(fs: TreeFiles, runDir: string): CandidateRef[] {
  const found: CandidateRef[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 4) return;
    for (const name of fs.list(dir)) {
      const path = join(dir, name);
      if (fs.isDirectory(path)) walk(path, depth + 1);
      else if (/_ep(\d{4})\.pth\.tar$/.test(name))
        found.push(candidate(fs, runDir, path, "file", /_ep(\d{4})\.pth\.tar$/));
    }
  };
  // ltr writes to {workspace}/checkpoints/{project path}/: only a workspace's checkpoints/ is searched.
  const root = join(runDir, "checkpoints");
  if (fs.isDirectory(root)) walk(root, 1);
  return found;
}

/**
 * Ultralytics writes `runs/<task>/<name>/weights/{last,best,epochN}.pt`; the run directory is `<name>/`
 * (its `weights/` folder is accepted too).
 */
function ultralyticsLayout(fs: TreeFiles, runDir: string): RunLayout | undefined {
  // A run (runs/detect/train), its weights/ folder, or the project directory whose runs/<task>/<name>/ it
  // holds: `resume=True` takes the newest last*.pt anywhere below where it is started.
  const runs = join(runDir, "runs");
  const weightDirs = /(?:^|\/)weights$/.test(runDir)
    ? [runDir]
    : [join(runDir, "weights")].concat(
        fs
          .list(runs)
          .flatMap((task) => fs.list(join(runs, task)).map((name) => join(runs, task, name, "weights"))),
      );
  const candidates: CandidateRef[] = [];
  for (const dir of weightDirs) {
    const files = fs.list(dir).filter((n) => /^(?:last|best|epoch\d+)\.pt$/.test(n));
    if (!files.includes("last.pt") && !files.includes("best.pt")) continue;
    for (const n of files)
      candidates.push(candidate(fs, runDir, join(dir, n), "file", /(?:^|\/)epoch(\d+)\.pt$/));
  }
  if (candidates.length === 0) return undefined;
  const where = [...new Set(candidates.map((c) => dirname(c.rel) || "."))];
  return {
    runDir,
    convention: "ultralytics",
    evidence: `${where.join(", ")} hold${where.length === 1 ? "s" : ""} last.pt / best.pt`,
    pointer: undefined,
    candidates,
  };
}

/** AllenNLP 2.x `model_state_e{E}_b{B}.th` + `training_state_e{E}_b{B}.th`; 1.x `..._epoch_{E}.th`. */
const ALLENNLP_STATE = /^(model|training)_state_(e(\d+)_b(\d+)|epoch_(\d+))\.th$/;

/**
 * One candidate per saved point in time, named by its model_state file as AllenNLP finds it, with the
 * training state (optimizer, counters) as its companion: a point whose training state is gone is still
 * listed, and reported missing, since AllenNLP would pick it and fail.
 */
function allennlpCandidates(fs: TreeFiles, runDir: string, names: ReadonlySet<string>): CandidateRef[] {
  // AllenNLP's _find_all_checkpoints globs model_state files only.
  const points = new Set<string>();
  for (const name of names) {
    const match = ALLENNLP_STATE.exec(name);
    if (match?.[1] === "model") points.add(match[2] as string);
  }
  return [...points].sort().map((point) => {
    const training = join(runDir, `training_state_${point}.th`);
    const weights = join(runDir, `model_state_${point}.th`);
    const [epoch, batch] = (/\d+/g[Symbol.match](point) ?? []).map(Number);
    return {
      ...candidate(fs, runDir, weights, "file", /_state_(?:e|epoch_)(\d+)/),
      nameOrder: [epoch ?? 0, batch ?? 0],
      companions: [{ key: "model", files: [training], holdsState: true }],
    };
  });
}
