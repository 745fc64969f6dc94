import { ReaderError } from "../../reader/errors.js";
import { dictSet, isBoxed, type PyDict, type PyValue, pyDict } from "../../reader/pickle/value.js";
import { basename, dirname, join, relative } from "../../reader/posixPath.js";
import { closeSharded, type ShardedCheckpoint } from "../../reader/sharded/index.js";
import type { ConventionId, CounterName } from "../resume/conventions.js";
import { detectFileConvention } from "../resume/fingerprints.js";
import { lookup } from "../resume/lookup.js";
import {
  type Component,
  type ComponentState,
  type CounterSource,
  judgeResume,
  type ResumeVerdict,
  type StrippedCounter,
  type Verdict,
} from "../resume/verdict.js";
import { type ScanVerdict, scanCheckpoint } from "../security/scan.js";
import { dcpJudgedState } from "../sharded/state.js";
import type { TreeFiles } from "../treeFiles.js";
import type { CrcPlans } from "./crcPlans.js";
import { checkFile, type FileProblem, type FileStatus } from "./integrity.js";
import type { CandidateRef } from "./layout.js";
import { megatronDirState } from "./megatron.js";
import { unfinishedMarker } from "./nemoMarker.js";
import {
  lightningShardedRoot,
  type OpenedSharded,
  openShardedCandidate,
  shardedState,
} from "./shardedDirs.js";
import { crcPlanProblem, dcpCrcPlan, shardedCrcProblem } from "./shardedIntegrity.js";

/** One checkpoint a resume could use, checked: whole and loadable, and what it would restore. */
/** `unfinished`: the writer's own in-progress marker is still beside it (NeMo's `-unfinished`). */
export type CandidateStatus = FileStatus | "incomplete-dir" | "unfinished";

export interface CandidateReport {
  /** Relative to the run dir. */
  readonly file: string;
  readonly kind: "file" | "dir";
  readonly counter: number | null;
  readonly counterSource: CounterSource | null;
  /** Which counter it is (`iteration`, `epoch`, ...) and what its value means, from the conventions table. */
  readonly counterName: CounterName | null;
  readonly counterMeaning: string | null;
  readonly status: CandidateStatus;
  readonly verdict: Verdict | null;
  readonly missing: Component[];
  readonly problem: FileProblem | null;
  readonly sizeBytes: number | null;
  readonly convention: ConventionId | null;
  readonly components: ComponentState[];
  /** The counter the framework restarts at from this checkpoint (0 when the file has no counter). */
  readonly resumeAt: number | null;
  /** Lightning logger version, when the run has several. */
  readonly group: string | null;
  /** What its pickles could run when loaded (file candidates that loaded). */
  readonly security: ScanVerdict | null;
  /** The framework marked the run finished in this checkpoint (ultralytics strips `last.pt` to epoch -1). */
  readonly finished: StrippedCounter | null;
  /** For file candidates that loaded: zip record CRCs for the manifest. */
  readonly records: Array<{ name: string; crc32: number; size: number }> | null;
}

export interface ExamineOptions {
  readonly verify: boolean;
  readonly runConvention: ConventionId;
  readonly fs: TreeFiles;
  /** The sharded checkpoint at the candidate's path, when the caller has it open already. */
  readonly opened?: OpenedSharded;
  /** Where a DCP step judged without `verify` leaves what verifying it later takes (`verifyCandidate`). */
  readonly crcPlans?: CrcPlans;
}

function report(
  ref: CandidateRef,
  fields: Partial<CandidateReport> & Pick<CandidateReport, "status">,
): CandidateReport {
  return {
    file: ref.rel,
    kind: ref.kind,
    counter: ref.counterFromName ?? null,
    counterSource: ref.counterFromName === undefined ? null : "file-name",
    counterName: null,
    counterMeaning: null,
    verdict: null,
    missing: [],
    problem: null,
    sizeBytes: null,
    convention: null,
    components: [],
    resumeAt: null,
    group: ref.group ?? null,
    security: null,
    finished: null,
    records: null,
    ...fields,
  };
}

function fromVerdict(verdict: ResumeVerdict): Partial<CandidateReport> {
  return {
    verdict: verdict.verdict,
    missing: verdict.missing,
    convention: verdict.convention,
    components: verdict.components,
    resumeAt: verdict.resumeAt ?? null,
    finished: verdict.finished ?? null,
    ...(verdict.counter
      ? { counterName: verdict.counter.name, counterMeaning: verdict.counter.meaning }
      : {}),
    ...(verdict.counter && Number.isFinite(verdict.counter.value)
      ? { counter: verdict.counter.value, counterSource: verdict.counter.source }
      : {}),
  };
}

/** The verdict with its parts' keys as saved: below `wrapper` when the state was judged from inside it. */
function underKey(verdict: ResumeVerdict, wrapper: string | null): ResumeVerdict {
  if (wrapper === null) return verdict;
  const below = (key: string) => `${wrapper}.${key}`;
  const components = verdict.components.map((c) =>
    c.status === "present" && c.key !== "(root)" ? { ...c, key: below(c.key) } : c,
  );
  const { counter, finished } = verdict;
  return {
    ...verdict,
    components,
    counter: counter && counter.source === "checkpoint" ? { ...counter, from: below(counter.from) } : counter,
    ...(finished ? { finished: { ...finished, from: below(finished.from) } } : {}),
  };
}

async function examineFile(ref: CandidateRef, options: ExamineOptions): Promise<CandidateReport> {
  const check = await checkFile(ref.path, options);
  if (check.status !== "ok" && check.problem.torchLoads) {
    // Only CRCs disagree: torch would load it anyway, so say what it holds as well as that it is corrupt.
    const loaded = await examineFile(ref, { ...options, verify: false });
    return { ...loaded, status: check.status, problem: check.problem };
  }
  if (check.status !== "ok") {
    return report(ref, { status: check.status, problem: check.problem, sizeBytes: check.sizeBytes ?? null });
  }
  const { checkpoint } = check;
  try {
    if (checkpoint.format === "pointer") return report(ref, { status: "not-a-checkpoint" });
    const companions = await checkCompanions(ref, options);
    if ("problem" in companions) return report(ref, companions.problem);
    const { root, judgedAs } = withCompanions(checkpoint.root, ref, companions);
    const detected = detectFileConvention(root, judgedAs);
    // In a Trackron run every file follows Trackron's rules (its schedule is derived from the iteration),
    // including a copy repaired to carry the iteration, which on its own looks like plain fvcore.
    const guess =
      options.runConvention === "trackron" && detected.convention === "fvcore"
        ? { convention: "trackron" as const, evidence: [...detected.evidence, "in a Trackron run"] }
        : detected;
    const verdict = judgeResume(root, guess, judgedAs);
    const records =
      checkpoint.format === "torch-zip" || checkpoint.format === "torchscript"
        ? checkpoint.archive.entries.map((e) => ({ name: e.name, crc32: e.crc32, size: e.uncompressedSize }))
        : null;
    const security = scanCheckpoint(checkpoint).verdict;
    return report(ref, {
      status: "ok",
      sizeBytes: check.sizeBytes + companions.sizeBytes,
      records,
      security,
      ...fromVerdict(verdict),
    });
  } finally {
    checkpoint.source.close();
  }
}

type CompanionCheck =
  | {
      /** What each companion holds, by its key; the training state when a companion holds it. */
      readonly parts: ReadonlyMap<string, PyValue>;
      readonly state: { readonly root: PyValue; readonly file: string } | undefined;
      readonly sizeBytes: number;
    }
  | { readonly problem: Partial<CandidateReport> & Pick<CandidateReport, "status"> };

/**
 * The files the framework loads together with the candidate (AllenNLP's weights beside its training state),
 * each checked as the candidate itself is: one that is missing or broken makes the candidate unusable.
 */
async function checkCompanions(ref: CandidateRef, options: ExamineOptions): Promise<CompanionCheck> {
  const parts = new Map<string, PyValue>();
  let state: { root: PyValue; file: string } | undefined;
  let sizeBytes = 0;
  for (const companion of ref.companions ?? []) {
    for (const file of companion.files) {
      const check = await checkFile(file, options);
      sizeBytes += check.sizeBytes ?? 0;
      if (check.status !== "ok") {
        const message = `${relative(dirname(ref.path), file)}: ${check.problem.message}`;
        return { problem: { status: check.status, problem: { ...check.problem, message }, sizeBytes } };
      }
      const content = "root" in check.checkpoint ? check.checkpoint.root : true;
      if (companion.holdsState) state = { root: content, file };
      else parts.set(companion.key, content);
      check.checkpoint.source.close();
    }
  }
  return { parts, state, sizeBytes };
}

function copyDict(root: PyDict): PyDict {
  const copy = pyDict(root.className);
  root.keys.forEach((key, i) => {
    dictSet(copy, key, root.values[i] as PyValue);
  });
  return copy;
}

/**
 * The root the candidate is judged on, and the file name its convention is told from: the candidate's own
 * with each companion's content at its key, or, when a companion holds the training state, that state with
 * the candidate's content (the weights) at the companion's key.
 */
function withCompanions(
  root: PyValue,
  ref: CandidateRef,
  companions: Extract<CompanionCheck, { parts: unknown }>,
): { root: PyValue; judgedAs: string } {
  const holder = (ref.companions ?? []).find((c) => c.holdsState);
  if (holder && companions.state && isBoxed(companions.state.root, "dict")) {
    const merged = copyDict(companions.state.root);
    dictSet(merged, holder.key, root);
    return { root: merged, judgedAs: companions.state.file };
  }
  if (companions.parts.size === 0 || !isBoxed(root, "dict")) return { root, judgedAs: ref.path };
  const merged = copyDict(root);
  for (const [key, value] of companions.parts) dictSet(merged, key, value);
  return { root: merged, judgedAs: ref.path };
}

/** The first of `names` that exists in `dir`. */
function firstExisting(fs: TreeFiles, dir: string, names: readonly string[]): string | undefined {
  return names.find((name) => fs.exists(join(dir, name)));
}

interface DirFiles {
  readonly model: readonly string[];
  readonly parts: ReadonlyArray<readonly [key: string, names: readonly string[]]>;
}

/** What each directory convention keeps in one checkpoint directory (conventions.md sections 7, 8, 9). */
const DIR_FILES: Partial<Record<ConventionId, DirFiles>> = {
  "hf-trainer": {
    model: [
      "model.safetensors",
      "pytorch_model.bin",
      "model.safetensors.index.json",
      "pytorch_model.bin.index.json",
      "adapter_model.safetensors",
      "adapter_model.bin",
      // Under FSDP, save_fsdp_model: a DCP directory (SHARDED_STATE_DICT) or one file (FULL_STATE_DICT).
      "pytorch_model_fsdp_0",
      "pytorch_model_fsdp.bin",
    ],
    parts: [
      ["optimizer", ["optimizer.pt", "optimizer.bin", "optimizer_0"]],
      ["scheduler", ["scheduler.pt"]],
      ["scaler", ["scaler.pt"]],
      ["rng_state", ["rng_state.pth", "rng_state_0.pth"]],
    ],
  },
  accelerate: {
    // save_fsdp_model / save_fsdp_optimizer: SHARDED_STATE_DICT writes DCP directories, FULL_STATE_DICT files.
    model: ["model.safetensors", "pytorch_model.bin", "pytorch_model_fsdp_0", "pytorch_model_fsdp.bin"],
    parts: [
      ["optimizer", ["optimizer.bin", "optimizer_0"]],
      ["scheduler", ["scheduler.bin"]],
      ["scaler", ["scaler.pt"]],
      ["random_states", ["random_states_0.pkl"]],
      // register_for_checkpointing objects: where users keep their step counter.
      ["custom", ["custom_checkpoint_0.pkl"]],
    ],
  },
};

/** With `verify`, a sharded checkpoint's bytes streamed through their CRCs: the first damaged record. */
async function crcProblemOf(
  checkpoint: ShardedCheckpoint,
  options: ExamineOptions,
): Promise<FileProblem | undefined> {
  if (!options.verify) return undefined;
  return readProblem(() => shardedCrcProblem(checkpoint));
}

/** What `check` finds, or the reader's error as the problem: a data file that vanished or cannot be read. */
async function readProblem(check: () => Promise<FileProblem | undefined>): Promise<FileProblem | undefined> {
  try {
    return await check();
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
    return { code: error.code, message: error.message };
  }
}

/**
 * A candidate judged without `verify`, judged with it: a DCP step whose CRC plan `options.crcPlans` kept has
 * only its items checked (what `examineDir` would add: the same verdict, corrupt when an item is damaged);
 * any other is examined again, streaming its bytes.
 */
export async function verifyCandidate(
  candidate: CandidateReport,
  ref: CandidateRef,
  options: ExamineOptions,
): Promise<CandidateReport> {
  if (candidate.status !== "ok") return candidate;
  const kept = options.crcPlans?.take(ref.path);
  if (!kept) return examineCandidate(ref, { ...options, verify: true });
  const damaged = await readProblem(() => crcPlanProblem(kept));
  return damaged ? { ...candidate, status: "corrupt", problem: damaged } : candidate;
}

/**
 * A checkpoint directory is judged like a file whose top-level keys are its files: each file present and
 * whole counts as that component. Any file that is present but broken makes the directory unusable.
 */
async function examineDir(ref: CandidateRef, options: ExamineOptions): Promise<CandidateReport> {
  const root = pyDict();
  let total = 0;
  const broken: FileProblem[] = [];
  // What the CRC check found damaged (`--verify`): the directory is still judged (torch loads a record whose
  // CRC disagrees without noticing), then called corrupt.
  let damaged: FileProblem | undefined;
  // The key a DCP save's whole state sits under (the PyTorch DCP recipe's `app`): the parts' keys are below it.
  let wrapper: string | null = null;
  const checkInto = async (key: string, name: string | undefined): Promise<PyValue | undefined> => {
    if (name === undefined) return undefined;
    if (name.startsWith("random_states")) {
      // accelerate's RNG pickle: present is enough (its content is not torch data).
      dictSet(root, key, true);
      return true;
    }
    if (options.fs.isDirectory(join(ref.path, name)) || name.endsWith(".index.json")) {
      // accelerate's FSDP layout: pytorch_model_fsdp_0/ and optimizer_0/ are DCP checkpoints of their own.
      const opened = openShardedCandidate(options.fs, join(ref.path, name));
      total += opened.sizeBytes;
      if (!opened.ok) {
        broken.push({ code: opened.problem.code, message: `${name}: ${opened.problem.message}` });
        return undefined;
      }
      const crc = await crcProblemOf(opened.checkpoint, options);
      if (crc) damaged ??= { ...crc, message: `${name}: ${crc.message}` };
      const state = shardedState(opened.checkpoint);
      closeSharded(opened.checkpoint);
      dictSet(root, key, state);
      return state;
    }
    const value = await checkOnly(name);
    if (value !== undefined) dictSet(root, key, value);
    return value;
  };
  /** One file checked as the load would meet it: its root (true without one), undefined when broken. */
  const checkOnly = async (name: string): Promise<PyValue | undefined> => {
    const check = await checkFile(join(ref.path, name), options);
    total += check.sizeBytes ?? 0;
    if (check.status !== "ok") {
      broken.push({ code: check.problem.code, message: `${name}: ${check.problem.message}` });
      return undefined;
    }
    const value = "root" in check.checkpoint ? check.checkpoint.root : true;
    check.checkpoint.source.close();
    return value;
  };

  const convention = options.runConvention;
  const files = DIR_FILES[convention];
  if (convention === "hf-trainer" && holdsDeepSpeedSave(options.fs, ref.path)) {
    // The Trainer under DeepSpeed: engine.save_checkpoint(checkpoint-N) holds model, optimizer and (DeepSpeed's
    // own) scheduler, and resume loads them from there (deepspeed_load_checkpoint), not from model.safetensors.
    const opened = openShardedCandidate(options.fs, ref.path, options.opened);
    if (!opened.ok)
      return report(ref, { status: opened.status, problem: opened.problem, sizeBytes: opened.sizeBytes });
    total += opened.sizeBytes;
    const tag = opened.checkpoint.kind === "deepspeed" ? opened.checkpoint.latest : null;
    closeSharded(opened.checkpoint);
    if (tag === null) {
      return report(ref, {
        status: "incomplete-dir",
        problem: {
          code: "pointer-missing",
          message:
            "global_step* but no latest file: DeepSpeed's load_checkpoint finds no tag and the Trainer raises ValueError",
        },
      });
    }
    const state = await deepSpeedTagState(options.fs, ref.path, tag, checkOnly);
    if ("code" in state) return report(ref, { status: "incomplete-dir", problem: state });
    dictSet(root, "model", state.get("module") ?? true);
    const optimizer = state.get("optimizer");
    if (optimizer !== undefined) dictSet(root, "optimizer", optimizer);
    // A scheduler the DeepSpeed config made is in the model states; the Trainer's own goes to scheduler.pt.
    const scheduler = state.get("lr_scheduler");
    if (options.fs.exists(join(ref.path, "scheduler.pt"))) await checkInto("scheduler", "scheduler.pt");
    else if (scheduler !== undefined && scheduler !== null) dictSet(root, "scheduler", scheduler);
    else {
      // _load_optimizer_and_scheduler loads scheduler.pt whenever the scheduler is not DeepSpeed's own.
      return report(ref, {
        status: "incomplete-dir",
        problem: {
          code: "scheduler-file-missing",
          message: `no scheduler.pt and no scheduler in ${tag}: the Trainer's torch.load of scheduler.pt raises FileNotFoundError`,
        },
        sizeBytes: total,
      });
    }
    for (const [key, names] of files?.parts ?? []) {
      if (key !== "optimizer" && key !== "scheduler")
        await checkInto(key, firstExisting(options.fs, ref.path, names));
    }
    addTrainerState(options.fs, root, ref.path);
  } else if (files) {
    const model = firstExisting(options.fs, ref.path, files.model);
    if (model === undefined) {
      return report(ref, {
        status: "incomplete-dir",
        problem: {
          code: "model-file-missing",
          message: `no model weights (${files.model.slice(0, 2).join(" or ")})`,
        },
      });
    }
    await checkInto("model", model);
    for (const [key, names] of files.parts) await checkInto(key, firstExisting(options.fs, ref.path, names));
    if (convention === "hf-trainer") addTrainerState(options.fs, root, ref.path);
  } else if (convention === "megatron") {
    const dir = await megatronDirState(options.fs, ref.path, checkOnly);
    // A file the load fails on (rank 0's truncated or unreadable model_optim_rng.pt) is reported as what it is.
    if (!dir.ok && broken.length === 0) {
      return report(ref, {
        status: dir.opened?.status ?? "incomplete-dir",
        problem: dir.problem,
        sizeBytes: dir.opened?.sizeBytes ?? total,
      });
    }
    if (dir.ok) {
      total += dir.sizeBytes;
      for (const [i, key] of dir.state.keys.entries()) dictSet(root, key, dir.state.values[i] as PyValue);
    }
  } else if (convention === "deepspeed") {
    const opened = openShardedCandidate(options.fs, ref.path, options.opened);
    if (!opened.ok)
      return report(ref, { status: opened.status, problem: opened.problem, sizeBytes: opened.sizeBytes });
    closeSharded(opened.checkpoint);
    const state = await deepSpeedTagState(options.fs, ref.path, "", checkOnly);
    if ("code" in state) return report(ref, { status: "incomplete-dir", problem: state });
    for (const [key, value] of state) dictSet(root, key, value);
  } else if (convention === "dcp" || convention === "lightning" || convention === "state-dict") {
    const opened = openShardedCandidate(options.fs, ref.path, options.opened);
    if (!opened.ok)
      return report(ref, { status: opened.status, problem: opened.problem, sizeBytes: opened.sizeBytes });
    total += opened.sizeBytes;
    damaged ??= await crcProblemOf(opened.checkpoint, options);
    // Lightning's sharded save has meta.pt beside the items, which a verification reads as well.
    if (!options.verify && opened.checkpoint.kind === "dcp" && convention !== "lightning")
      options.crcPlans?.keep(ref.path, dcpCrcPlan(opened.checkpoint));
    const dcp =
      opened.checkpoint.kind === "dcp" && convention === "dcp"
        ? dcpJudgedState(opened.checkpoint)
        : undefined;
    const state = dcp ? dcp.state : shardedState(opened.checkpoint);
    wrapper = dcp?.wrapper ?? null;
    closeSharded(opened.checkpoint);
    const judged =
      convention === "lightning" ? lightningShardedRoot(state, await checkInto("meta", "meta.pt")) : state;
    judged.keys.forEach((key, i) => {
      dictSet(root, key, judged.values[i] as PyValue);
    });
  }

  if (broken.length > 0) {
    const problem = broken[0] as FileProblem;
    return report(ref, {
      status: problem.code.endsWith("truncated") ? "truncated" : "corrupt",
      problem,
      sizeBytes: total,
    });
  }
  const guess = { convention, evidence: [`directory ${ref.rel}`] };
  const verdict = judgeResume(root, guess, ref.path);
  const judged = report(ref, { status: "ok", sizeBytes: total, ...fromVerdict(underKey(verdict, wrapper)) });
  return damaged ? { ...judged, status: "corrupt", problem: damaged } : judged;
}

/** Checks one file below the candidate as a load would meet it: its root, or undefined when broken. */
type CheckFile = (name: string) => Promise<PyValue | undefined>;

/** A Trainer checkpoint directory DeepSpeed saved into: `global_step*` directories in it. */
function holdsDeepSpeedSave(fs: TreeFiles, dir: string): boolean {
  return fs.list(dir).some((name) => /^global_step/.test(name) && fs.isDirectory(join(dir, name)));
}

/**
 * What a DeepSpeed tag restores, as engine.load_checkpoint reads it: `module`, `lr_scheduler` and `global_steps`
 * from the model states, and the optimizer from them (no ZeRO) or from the per-rank partitions (ZeRO, where
 * the model states hold None). `tag` is the tag directory relative to `dir` ("" when `dir` is the tag).
 */
async function deepSpeedTagState(
  fs: TreeFiles,
  dir: string,
  tag: string,
  check: CheckFile,
): Promise<Map<string, PyValue> | FileProblem> {
  const names = fs.list(join(dir, tag));
  const inTag = (name: string) => (tag === "" ? name : `${tag}/${name}`);
  const modelStates = names.find((n) => /model_states\.pt$/.test(n));
  if (modelStates === undefined)
    return { code: "model-file-missing", message: `no *_model_states.pt${tag === "" ? "" : ` in ${tag}`}` };
  const states = await check(inTag(modelStates));
  const state = new Map<string, PyValue>();
  for (const key of ["module", "lr_scheduler", "global_steps"]) {
    const value = lookup(states, [key]);
    if (value !== undefined) state.set(key, value);
  }
  const optimizer = lookup(states, ["optimizer"]);
  const shards = names.filter((n) => /optim_states\.pt$/.test(n));
  if (optimizer !== undefined && optimizer !== null) state.set("optimizer", optimizer);
  else if (shards.length > 0 && (await check(inTag(shards[0] as string))) !== undefined)
    state.set("optimizer", true);
  return state;
}

/** `trainer_state.json` holds HF's counter; without it the Trainer restarts at step 0. */
function addTrainerState(fs: TreeFiles, root: PyDict, dir: string): void {
  try {
    const state = JSON.parse(fs.readText(join(dir, "trainer_state.json")) ?? "") as {
      global_step?: unknown;
    };
    if (typeof state.global_step === "number") {
      const trainerState = pyDict();
      dictSet(trainerState, "global_step", state.global_step);
      dictSet(root, "trainer_state", trainerState);
    }
  } catch {
    // Absent or unreadable: the counter is missing, which the verdict reports.
  }
}

export async function examineCandidate(ref: CandidateRef, options: ExamineOptions): Promise<CandidateReport> {
  const marker = unfinishedMarker(ref.path);
  if (options.fs.exists(marker)) {
    return report(ref, {
      status: "unfinished",
      problem: {
        code: "save-unfinished",
        message: `${basename(marker)} is beside it: NeMo's ModelCheckpoint writes that marker before a save and removes it after, so this save never finished (NeMo's AutoResume skips it)`,
      },
    });
  }
  return ref.kind === "dir" ? examineDir(ref, options) : examineFile(ref, options);
}
