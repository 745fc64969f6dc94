import type { ReaderNote } from "../reader/checkpoint.js";
import type { Component, Verdict } from "./resume/verdict.js";
import type { FrameworkOutcome } from "./runs/frameworkResume.js";
import type { PointerStatus } from "./runs/pointerStatus.js";
import type { SecurityNote } from "./security/scan.js";
import { type KeyPath, MAX_WALK_DEPTH, MAX_WALK_VISITS, type WalkLimit } from "./walk.js";

/**
 * Findings are data: a stable code plus the facts behind it. Severity and prose live in one table below, so
 * detectors never write sentences and every code has exactly one severity.
 */
export type Severity = "error" | "warning" | "info";

export type Finding =
  | ReaderNote
  | { readonly code: "pointer-file"; readonly target: string; readonly exists: boolean }
  | { readonly code: "walk-truncated"; readonly limit: WalkLimit }
  | { readonly code: "tensor-without-data"; readonly path: KeyPath; readonly rebuild: string }
  | {
      readonly code: "resume-verdict";
      readonly verdict: Exclude<Verdict, "resumable">;
      readonly missing: Component[];
      readonly label: string;
      /** For training state saved apart from the weights: the weights file the framework pairs it with. */
      readonly partner?: string;
    }
  | {
      readonly code: "state-dict-key-prefix";
      readonly prefix: string;
      readonly keys: number;
      readonly path: KeyPath;
    }
  | {
      readonly code: "optimizer-param-mismatch";
      readonly optimizerParams: number;
      readonly modelTensors: number;
    }
  | { readonly code: "final-checkpoint-has-state"; readonly counter: number }
  | { readonly code: "bytes-item-tensors"; readonly item: string; readonly tensors: number }
  | {
      readonly code: "run-finished";
      readonly label: string;
      readonly counter: string;
      /** The epochs the run was configured for, when the file says. */
      readonly epochs: number | null;
    }
  | {
      readonly code: "pointer-problem";
      readonly file: string;
      readonly status: Exclude<PointerStatus, "ok">;
      readonly target: string | null;
      readonly detail: string | null;
    }
  | {
      readonly code: "candidate-broken";
      readonly file: string;
      readonly status: string;
      readonly detail: string;
    }
  | {
      readonly code: "no-usable-checkpoint";
      readonly candidates: number;
      /** Candidates that load but hold weights only (a model directory, a `save_pretrained` output). */
      readonly weightsOnly?: number;
      /** With no candidate here: the runs below, relative to this directory (`runDirs.ts`), nearest first. */
      readonly below?: readonly string[];
    }
  | { readonly code: "candidate-unreadable"; readonly file: string; readonly detail: string }
  | { readonly code: "resume-loses-state"; readonly file: string; readonly resets: Component[] }
  | {
      readonly code: "framework-resume-differs";
      readonly outcome: FrameworkOutcome;
      readonly frameworkFile: string | null;
      readonly frameworkStartsAt: number | null;
      readonly choiceFile: string;
      readonly choiceStartsAt: number | null;
      readonly why: string;
    }
  | { readonly code: "counter-past-end"; readonly resumeAt: number; readonly maxIter: number }
  | { readonly code: "weights-names-pointer"; readonly weights: string }
  | {
      readonly code: "dangerous-global";
      readonly module: string;
      readonly name: string;
      readonly record: string;
      readonly offset: number;
      readonly dynamic: boolean;
    }
  | {
      readonly code: "storage-mostly-unused";
      readonly path: KeyPath;
      /** Key paths that view the storage. */
      readonly keys: number;
      readonly storageBytes: number;
      readonly usedBytes: number;
      readonly tensorBytes: number;
      /** The unused bytes relative to the file size. */
      readonly share: number;
    }
  | {
      readonly code: "storage-shared";
      readonly path: KeyPath;
      readonly keys: number;
      readonly storageBytes: number;
    }
  | {
      readonly code: "float64-in-model";
      readonly path: KeyPath;
      readonly bytes: number;
      readonly modelDtypes: string[];
    }
  | { readonly code: "unknown-globals"; readonly names: string[] }
  | { readonly code: "candidate-unsafe"; readonly file: string; readonly verdict: string }
  | { readonly code: "weights-only-blocked"; readonly reasons: string[]; readonly allow: string[] }
  | SecurityNote;

export type FindingCode = Finding["code"];

type FindingOf<C extends FindingCode> = Extract<Finding, { code: C }>;

interface FindingInfo<C extends FindingCode> {
  readonly severity: Severity | ((finding: FindingOf<C>) => Severity);
  readonly message: (finding: FindingOf<C>) => string;
}

export const FINDING_INFO: { readonly [C in FindingCode]: FindingInfo<C> } = {
  "storage-record-missing": {
    severity: "error",
    message: (f) =>
      `storage ${f.key} is used by tensors but its record ${f.record} is missing: torch.load will fail`,
  },
  "storage-size-mismatch": {
    severity: "error",
    message: (f) => `storage ${f.key} should hold ${f.expected} bytes but its record has ${f.actual}`,
  },
  "zip-duplicate-name": {
    severity: "warning",
    message: (f) =>
      `the archive holds ${f.name} more than once; torch reads the first copy, other zip tools may not`,
  },
  "version-record-missing": {
    severity: "error",
    message: () =>
      'the archive has no version record: torch.load refuses it (Expected hasRecord("version") to be true)',
  },
  "pickle-trailing-bytes": {
    severity: "warning",
    message: (f) => `${f.count} bytes follow the STOP opcode of ${f.record}; torch ignores them`,
  },
  "big-endian": {
    severity: "info",
    message: (f) => `tensor bytes are big-endian (${f.detail}); hashes are computed on little-endian values`,
  },
  "pointer-file": {
    severity: (f) => (f.exists ? "info" : "error"),
    message: (f) =>
      f.exists
        ? `this is a pointer file naming ${f.target}: inspect that file; to resume, pass the run directory, not the pointer as weights`
        : `this pointer names ${f.target}, which does not exist: resume from this run would fail or start over`,
  },
  "walk-truncated": {
    severity: "warning",
    message: (f) =>
      f.limit === "visits"
        ? `the object graph expands to more than ${MAX_WALK_VISITS} nodes (shared references); listing stopped there`
        : `the object nests deeper than ${MAX_WALK_DEPTH} levels; what lies below was not listed`,
  },
  "resume-verdict": {
    severity: (f) => (f.verdict === "not-a-training-checkpoint" ? "info" : "warning"),
    message: (f) => {
      switch (f.verdict) {
        case "not-a-training-checkpoint":
          return "this file holds weights, not a training state: it can initialise a model but not resume a run";
        case "training-state-only":
          return `this ${f.label} file holds training state without the model weights: a resume also needs the weights file saved beside it${f.partner ? ` (${f.partner}, not found)` : ""}`;
        default:
          return `${f.label} checkpoint is ${f.verdict}: ${f.missing.join(", ")} ${f.missing.length === 1 ? "is" : "are"} missing, so resuming from it resets them`;
      }
    },
  },
  "bytes-item-tensors": {
    severity: "warning",
    message: (f) =>
      `the bytes item ${f.item} holds ${f.tensors} tensor${f.tensors === 1 ? "" : "s"} (a state saved with flatten_state_dict=False, or an object holding tensors): dcp.load and dcp_to_torch_save restore ${f.tensors === 1 ? "it" : "them"} inside that value; ckpt lists and hashes ${f.tensors === 1 ? "it" : "them"} under the item, not among DCP's logical tensors, and convert writes ${f.tensors === 1 ? "it" : "them"} as ${f.item}.<path>`,
  },
  "state-dict-key-prefix": {
    severity: "warning",
    message: (f) =>
      `all ${f.keys} keys start with "${f.prefix}" (${f.prefix === "module." ? "saved from a DDP/DataParallel wrapper" : "saved from a torch.compile'd model"}): loading into the bare model fails with unexpected keys unless the prefix is stripped`,
  },
  "optimizer-param-mismatch": {
    severity: "error",
    message: (f) =>
      `the optimizer names ${f.optimizerParams} parameters but the model has ${f.modelTensors} trainable tensors: the optimizer state belongs to another model`,
  },
  "final-checkpoint-has-state": {
    severity: "warning",
    message: (f) =>
      `model_final.pth still carries iteration ${f.counter} (and optimizer/scheduler): a new run loading it as weights may start at the end and train nothing; drop those keys to use it as weights`,
  },
  "run-finished": {
    severity: "info",
    message: (f) =>
      `${f.label} stripped this checkpoint when training finished (${f.counter}, optimizer removed): its resume refuses it ("training to ${f.epochs ?? "N"} epochs is finished, nothing to resume"); to train on, start a new run with it as pretrained weights`,
  },
  "pointer-problem": {
    severity: (f) => (f.status === "stale" || f.status === "missing" ? "warning" : "error"),
    message: (f) => {
      const named = f.target ? ` names ${f.target}` : "";
      switch (f.status) {
        case "missing":
          return `there is no ${f.file}: the framework's auto-resume finds nothing and starts over`;
        case "dangling":
          return `${f.file}${named}, which does not exist: resume fails (FileNotFoundError)`;
        case "truncated-target":
          return `${f.file}${named}, which is cut short: resume fails${f.detail ? ` (${f.detail})` : ""}`;
        case "incomplete-target":
          return `${f.file}${named}, which is incomplete: resume fails${f.detail ? ` (${f.detail})` : ""}`;
        case "corrupt-target":
          return `${f.file}${named}, which is corrupt${f.detail ? ` (${f.detail})` : ""}`;
        case "unreadable-target":
          return `${f.file}${named}, which cannot be read${f.detail ? ` (${f.detail})` : ""}: fix its permissions or the disk; ckpt will not point away from a checkpoint it could not read`;
        case "not-a-checkpoint":
          return `${f.file}${named}, which is not a checkpoint: torch.load fails ("invalid load key")`;
        case "stale":
          return `${f.file}${named}, but a newer valid checkpoint exists`;
        case "escapes-run-dir":
          return `${f.file}${named}, outside the run directory (a moved work_dir?)`;
        case "moved":
          return `${f.file}${named}, which is gone: the run directory was moved or copied, so the framework's resume fails (FileNotFoundError); the same checkpoint is here as ${f.detail} (\`ckpt resume-plan --write\` points ${f.file} at it)`;
      }
    },
  },
  "candidate-broken": {
    severity: "warning",
    message: (f) => `${f.file} is ${f.status}: ${f.detail}`,
  },
  "candidate-unreadable": {
    severity: "error",
    message: (f) =>
      `${f.file} cannot be read (${f.detail}), which says nothing about its bytes: it may be this run's newest checkpoint. Fix its permissions or the disk (or wait for the writer) and run again; until then --write and repair write nothing`,
  },
  "no-usable-checkpoint": {
    severity: "error",
    message: (f) =>
      f.candidates === 0
        ? f.below && f.below.length > 0
          ? `no checkpoint is in this directory itself, but ${f.below.length === 1 ? "a run is" : `${f.below.length} runs are`} below it: ${f.below.slice(0, 5).join(", ")}${f.below.length > 5 ? ", ..." : ""}. Run resume-plan on ${f.below.length === 1 ? "it" : "one of them"}, or audit this directory for all`
          : "no checkpoint was found in this directory: is it the run's output directory (OUTPUT_DIR, work_dir, output_dir)?"
        : f.weightsOnly === f.candidates
          ? `the ${f.candidates === 1 ? "checkpoint here holds" : `${f.candidates} checkpoints here hold`} weights only (no optimizer, no counter): they load as a model, but a resume from them starts training over`
          : `none of the ${f.candidates} checkpoints in this run can be loaded: training would start from scratch`,
  },
  "resume-loses-state": {
    severity: "warning",
    message: (f) =>
      `the best checkpoint, ${f.file}, lacks ${f.resets.join(", ")}: resuming from it resets them`,
  },
  "framework-resume-differs": {
    severity: (f) => (f.outcome === "resumes" ? "warning" : "error"),
    message: (f) =>
      `the framework's own auto-resume ${f.outcome === "resumes" ? `resumes from ${f.frameworkFile} at ${f.frameworkStartsAt}` : f.outcome.replace("-", " ")}` +
      ` (${f.why}); the plan resumes from ${f.choiceFile}${f.choiceStartsAt === null ? "" : ` at ${f.choiceStartsAt}`}`,
  },
  "counter-past-end": {
    severity: "warning",
    message: (f) =>
      `resuming starts at ${f.resumeAt}, at or past SOLVER.MAX_ITER ${f.maxIter}: the run is finished and a resume trains nothing`,
  },
  "weights-names-pointer": {
    severity: "error",
    message: (f) =>
      `MODEL.WEIGHTS is ${f.weights}, a pointer file: torch.load fails with "invalid load key"; to resume pass --resume (the run dir's pointer is followed), or name the checkpoint file itself`,
  },
  "dangerous-global": {
    severity: "error",
    message: (f) =>
      f.dynamic
        ? `${f.record} computes a global's name at load time (STACK_GLOBAL from non-literal operands, byte ${f.offset}): it can call anything; do not torch.load this file`
        : `${f.record} calls ${f.module}.${f.name} (byte ${f.offset}), which can run code or touch files: do not torch.load this file with weights_only=False`,
  },
  "candidate-unsafe": {
    severity: (f) => (f.verdict === "dangerous" ? "error" : "warning"),
    message: (f) =>
      `${f.file}'s pickle is ${f.verdict === "dangerous" ? "dangerous: it can run code when loaded" : `${f.verdict}: it instantiates code ckpt does not know`} (ckpt scan ${f.file} for details)`,
  },
  "unknown-globals": {
    severity: "warning",
    message: (f) =>
      `the pickle instantiates ${f.names.length} class(es) or function(s) that are neither torch's allowlist nor known framework code: ${f.names.slice(0, 6).join(", ")}${f.names.length > 6 ? ", ..." : ""}; torch.load(weights_only=False) would import and run them`,
  },
  "weights-only-blocked": {
    severity: "info",
    message: (f) =>
      `needs torch.load(weights_only=False) (the default since torch 2.6 is True) because of: ${f.reasons.join("; ")}` +
      (f.allow.length > 0
        ? `; these are harmless and can be allowed with torch.serialization.add_safe_globals([${f.allow.join(", ")}])`
        : ""),
  },
  "pickle-malformed-after-globals": {
    severity: "error",
    message: (f) =>
      `${f.record} breaks after naming ${f.globals} global(s) (${f.detail}): what follows cannot be checked, treat the file as unsafe`,
  },
  "pickle-unreadable": {
    severity: "warning",
    message: (f) => `${f.record} is not a readable pickle (${f.detail})`,
  },
  "pickle-after-stop": {
    severity: "warning",
    message: (f) => `${f.count} bytes follow ${f.record}'s STOP opcode; they were scanned as further pickles`,
  },
  "persistent-id-not-storage": {
    severity: "warning",
    message: (f) =>
      `${f.record} uses a persistent id that is not a torch storage (byte ${f.offset}): torch rejects it, another loader may resolve it to anything`,
  },
  "hidden-pickle": {
    severity: "warning",
    message: (f) =>
      `archive member ${f.record} is a pickle although torch never loads it: a payload for another loader?`,
  },
  "records-not-probed": {
    severity: "info",
    message: (f) =>
      `${f.records} record(s) that torch never unpickles were not probed for pickles hidden among them (a remote file: ckpt scan --deep reads every record)`,
  },
  "zip-duplicate-member": {
    severity: "warning",
    message: (f) =>
      `${f.name} appears more than once: torch executes the first copy, Python's zipfile reads the last (a known scanner bypass); every copy was scanned`,
  },
  "zip-name-mismatch": {
    severity: "warning",
    message: (f) =>
      `${f.name}: the local header names a different file than the central directory (a known scanner bypass)`,
  },
  "zip-encrypted-member": {
    severity: "warning",
    message: (f) =>
      f.scanned
        ? `${f.name} is flagged encrypted (torch refuses to read it); its stored bytes were scanned as they lie, but a loader given a password would read others: not clean`
        : `${f.name} is flagged encrypted and compressed: it cannot be scanned, so the file is not clean`,
  },
  "pickle-frames-not-honoured": {
    severity: "warning",
    message: (f) =>
      `${f.record}'s FRAMEs do not match its opcodes (${f.kinds.join(", ")}, byte ${f.offset}): CPython's readers disagree about such a stream, so every reading was scanned and none is vouched for`,
  },
  "zip-member-unreadable": {
    severity: "warning",
    message: (f) => `${f.name} cannot be read (${f.detail}): what it holds was not scanned`,
  },
  "archive-not-opened": {
    severity: "warning",
    message: (f) => `${f.kind}, which ckpt does not open: unpack it and scan what is inside`,
  },
  "too-large-to-scan": {
    severity: "warning",
    message: (f) => `${f.record} may be a pickle but is ${f.bytes} bytes, more than ckpt scans: not clean`,
  },
  "zip-junk-before": {
    severity: "warning",
    message: (f) => `${f.bytes} bytes precede the zip archive (a polyglot file?)`,
  },
  "zip-member-outside-archive": {
    severity: "warning",
    message: (f) => `${f.name} lies outside the archive folder torch reads`,
  },
  "storage-mostly-unused": {
    // A tenth of the file or more is worth fixing; less is worth knowing.
    severity: (f) => (f.share >= 0.1 ? "warning" : "info"),
    message: (f) =>
      `${f.keys === 1 ? "a view" : `${f.keys} views`} of a storage of ${bytes(f.storageBytes)} reaching only ${bytes(f.usedBytes)} of it: torch.save writes the whole storage (pytorch/pytorch#53419); .clone() before saving would save ${bytes(Math.max(0, f.storageBytes - f.tensorBytes))}, ckpt repair --compact saves ${bytes(f.storageBytes - f.usedBytes)}`,
  },
  "storage-shared": {
    severity: "info",
    message: (f) =>
      `one storage of ${bytes(f.storageBytes)} is reachable under ${f.keys} keys (tied weights, aliases): saved once, and loaded as tensors that share memory`,
  },
  "float64-in-model": {
    severity: "info",
    message: (f) =>
      `a float64 tensor (${bytes(f.bytes)}) in a model that is otherwise ${f.modelDtypes.join(" and ")}: as float32 it would take half that (a numpy table that was never cast?)`,
  },
  "tensor-without-data": {
    severity: "info",
    message: (f) => `a tensor saved without data (${f.rebuild}): shape and dtype only`,
  },
};

/** Byte counts in messages: exact, grouped by thousands ("131,072 bytes"). */
function bytes(n: number): string {
  return `${n.toLocaleString("en-US")} bytes`;
}

export function severityOf(finding: Finding): Severity {
  const info = FINDING_INFO[finding.code] as FindingInfo<FindingCode>;
  return typeof info.severity === "function" ? info.severity(finding as never) : info.severity;
}

export function messageOf(finding: Finding): string {
  const info = FINDING_INFO[finding.code] as FindingInfo<FindingCode>;
  return info.message(finding as never);
}

const RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

export function atLeast(severity: Severity, threshold: Severity): boolean {
  return RANK[severity] >= RANK[threshold];
}

/** A finding as every report carries it: its code, severity and message, and the key path it concerns. */
export interface FindingReport {
  readonly code: FindingCode;
  readonly severity: Severity;
  readonly message: string;
  readonly path?: KeyPath;
}

export function findingReport(finding: Finding): FindingReport {
  return {
    code: finding.code,
    severity: severityOf(finding),
    message: messageOf(finding),
    ...("path" in finding ? { path: finding.path } : {}),
  };
}
