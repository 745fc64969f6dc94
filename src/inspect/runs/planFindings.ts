import { readPointer } from "../../reader/pointer.js";
import { basename, isAbsolute, resolve } from "../../reader/posixPath.js";
import type { Finding } from "../findings.js";
import { CONVENTIONS } from "../resume/conventions.js";
import type { TreeFiles } from "../treeFiles.js";
import type { CandidateReport } from "./candidates.js";
import type { Choice } from "./choice.js";
import type { TrainingConfig } from "./config.js";
import type { FrameworkResume } from "./frameworkResume.js";
import type { RunLayout } from "./layout.js";
import type { PointerStatus } from "./pointerStatus.js";
import { runsBelow } from "./runDirs.js";

/** Whether the framework's own resume, on the directory as it is, resumes from the plan's choice at its point. */
export function frameworkAgrees(framework: FrameworkResume, choice: Choice): boolean {
  const sameFile =
    framework.file !== null &&
    (framework.file === choice.file || framework.file.startsWith(`${choice.file}/`));
  // A framework that loads the chosen file but restarts its counter (the file holds none) does what the plan
  // does: both start at 0 with those weights, and the lost counter is a finding of its own.
  const loadsChoice = framework.outcome === "resumes" || (framework.outcome === "starts-over" && sameFile);
  return loadsChoice && sameFile && (choice.resumeAt === null || framework.startsAt === choice.resumeAt);
}

/** What a resume plan found wrong, as findings: the pointer, broken and unsafe candidates, the framework. */
export interface FindingInputs {
  readonly layout: RunLayout;
  readonly status: PointerStatus | undefined;
  readonly target: CandidateReport | undefined;
  readonly moved: CandidateReport | undefined;
  readonly ordered: readonly CandidateReport[];
  readonly choice: Choice | null;
  readonly framework: FrameworkResume | null;
  readonly config: TrainingConfig | null;
  readonly runDir: string;
  readonly fs: TreeFiles;
}

export function planFindings(i: FindingInputs): Finding[] {
  const findings: Finding[] = [];
  const pointerFile = i.layout.pointer?.file ?? "pointer";
  if (i.status && i.status !== "ok") {
    findings.push({
      code: "pointer-problem",
      file: pointerFile,
      status: i.status,
      target: i.layout.pointer?.content?.trim() ?? null,
      detail: i.moved ? i.moved.file : (i.target?.problem?.message ?? null),
    });
  }
  for (const c of i.ordered) {
    if (c.status === "unreadable" && c !== i.target) {
      findings.push({ code: "candidate-unreadable", file: c.file, detail: c.problem?.message ?? "" });
    } else if (c.status !== "ok" && c !== i.target) {
      findings.push({
        code: "candidate-broken",
        file: c.file,
        status: c.status,
        detail: c.problem?.message ?? "",
      });
    }
  }
  for (const c of i.ordered) {
    if (c.security === "dangerous" || c.security === "unknown" || c.security === "inconclusive") {
      findings.push({ code: "candidate-unsafe", file: c.file, verdict: c.security });
    }
  }
  const loaded = i.ordered.find((c) => c.file === i.framework?.file);
  if (loaded?.finished) {
    findings.push({
      code: "run-finished",
      label: CONVENTIONS[loaded.convention ?? i.layout.convention].label,
      counter: `${loaded.finished.from} = ${loaded.finished.value}`,
      epochs: loaded.finished.end,
    });
  }
  if (!i.choice) {
    if (!loaded?.finished) {
      const weightsOnly = i.ordered.filter(
        (c) => c.status === "ok" && c.verdict === "not-a-training-checkpoint",
      ).length;
      const below = i.ordered.length === 0 ? runsBelow(i.runDir, i.fs) : [];
      findings.push({
        code: "no-usable-checkpoint",
        candidates: i.ordered.length,
        ...(weightsOnly > 0 ? { weightsOnly } : {}),
        ...(below.length > 0 ? { below } : {}),
      });
    }
  } else if (i.choice.verdict !== "resumable") {
    findings.push({ code: "resume-loses-state", file: i.choice.file, resets: i.choice.resets });
  }
  if (i.framework && i.choice) {
    if (!frameworkAgrees(i.framework, i.choice)) {
      findings.push({
        code: "framework-resume-differs",
        outcome: i.framework.outcome,
        frameworkFile: i.framework.file,
        frameworkStartsAt: i.framework.startsAt,
        choiceFile: i.choice.file,
        choiceStartsAt: i.choice.resumeAt,
        why: i.framework.why,
      });
    }
  }
  const maxIter = i.config?.maxIter;
  if (
    maxIter !== undefined &&
    i.choice?.resumeAt !== null &&
    i.choice?.resumeAt !== undefined &&
    i.choice.resumeAt >= maxIter
  ) {
    findings.push({ code: "counter-past-end", resumeAt: i.choice.resumeAt, maxIter });
  }
  const weights = i.config?.modelWeights;
  if (weights && isPointerFile(weights, i.runDir, i.fs))
    findings.push({ code: "weights-names-pointer", weights });
  return findings;
}

/** `MODEL.WEIGHTS: outputs/last_checkpoint`: the text file itself, which torch.load rejects ("invalid load key"). */
function isPointerFile(weights: string, runDir: string, fs: TreeFiles): boolean {
  const name = basename(weights);
  if (name === "last_checkpoint" || name === "latest") return true;
  // A relative MODEL.WEIGHTS is relative to where training was started, unknown here: the run dir's file
  // of that name is the one it meant.
  for (const path of [...(isAbsolute(weights) ? [weights] : []), resolve(runDir, name)]) {
    if (!fs.isFile(path)) continue;
    try {
      const source = fs.tree.open(path);
      try {
        return readPointer(source) !== undefined;
      } finally {
        source.close();
      }
    } catch {
      return false;
    }
  }
  return false;
}
