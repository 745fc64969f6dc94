import { CONVENTIONS, type ConventionId, nameCounterRule } from "../resume/conventions.js";
import type { Component, Verdict } from "../resume/verdict.js";
import type { CandidateReport } from "./candidates.js";
import type { CandidateRef } from "./layout.js";

/**
 * Which checkpoint a run resumes from: the candidates ranked newest first, the newest one that truly resumes
 * chosen (or else the newest usable one), and what resuming from it restores, resets and starts at.
 */
export interface Choice {
  readonly file: string;
  /** The counter training should restart at: from the checkpoint, or from its file name when only that has it. */
  readonly resumeAt: number | null;
  readonly counterName: string | null;
  /** What the counter's value means and how `resumeAt` follows from it (from the conventions table). */
  readonly counterMeaning: string | null;
  /** The counter's value as saved (in the file, or in its name). */
  readonly savedCounter: number | null;
  /** Where `resumeAt` comes from: the checkpoint (the framework will do this) or the file name (needs repair). */
  readonly resumeAtSource: "checkpoint" | "file-name" | null;
  readonly restores: Component[];
  readonly resets: Component[];
  readonly verdict: CandidateReport["verdict"];
}

/** At equal counters, the checkpoint that restores more comes first (a repaired copy before its original). */
function verdictRank(c: CandidateReport): number {
  if (c.status !== "ok") return 5;
  const rank: Record<Verdict, number> = {
    resumable: 0,
    incomplete: 1,
    "weights-only": 2,
    "training-state-only": 3,
    "not-a-training-checkpoint": 4,
  };
  return rank[c.verdict ?? "not-a-training-checkpoint"];
}

/** `last.pth.tar`, `last.ckpt`: the name a framework resumes from when several files hold the same state. */
const LAST_NAME = /(?:^|\/)last[^/]*$/;

/** Newest first: by counter, then what restores more, the pointer's target, a "last" file, modification time. */
/** Element-wise comparison of two name orders (absent sorts first). */
function compareOrder(a: readonly number[] | undefined, b: readonly number[] | undefined): number {
  const length = Math.max(a?.length ?? 0, b?.length ?? 0);
  for (let i = 0; i < length; i++) {
    const d = (a?.[i] ?? -1) - (b?.[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

export function newestFirst(
  candidates: readonly CandidateReport[],
  refs: ReadonlyMap<string, CandidateRef>,
  pointed: string | undefined,
  preferred: RegExp = LAST_NAME,
): CandidateReport[] {
  // Ties (model_final.pth and model_0000029.pth hold the same iteration) go to the file the run's own pointer
  // names; modification times come last, since a copy or a git checkout resets them.
  return [...candidates].sort(
    (a, b) =>
      (b.counter ?? -1) - (a.counter ?? -1) ||
      compareOrder(refs.get(b.file)?.nameOrder, refs.get(a.file)?.nameOrder) ||
      verdictRank(a) - verdictRank(b) ||
      Number(b.file === pointed) - Number(a.file === pointed) ||
      Number(preferred.test(b.file)) - Number(preferred.test(a.file)) ||
      (refs.get(b.file)?.mtimeMs ?? 0) - (refs.get(a.file)?.mtimeMs ?? 0),
  );
}

export function choose(ordered: readonly CandidateReport[]): CandidateReport | undefined {
  const usable = ordered.filter(
    (c) =>
      c.status === "ok" &&
      // A checkpoint the framework marked finished (ultralytics' stripped last.pt) resumes nothing.
      c.finished === null &&
      c.verdict !== null &&
      c.verdict !== "not-a-training-checkpoint" &&
      c.verdict !== "training-state-only",
  );
  return usable.find((c) => c.verdict === "resumable") ?? usable[0];
}

export function choiceOf(candidate: CandidateReport, convention: ConventionId): Choice {
  const rule = CONVENTIONS[candidate.convention ?? convention];
  const nameRule = nameCounterRule(rule, candidate.file);
  const restores = candidate.components.filter((c) => c.status === "present").map((c) => c.component);
  const fromCheckpoint = candidate.counterSource === "checkpoint";
  const resumeAt =
    candidate.counter === null
      ? (candidate.resumeAt ?? null)
      : fromCheckpoint
        ? candidate.resumeAt
        : (nameRule?.resumeAt(candidate.counter) ?? candidate.counter);
  return {
    file: candidate.file,
    resumeAt,
    counterName: candidate.counterName ?? nameRule?.name ?? null,
    counterMeaning: candidate.counterMeaning ?? nameRule?.meaning ?? null,
    savedCounter: candidate.counter,
    resumeAtSource: candidate.counter === null ? null : fromCheckpoint ? "checkpoint" : "file-name",
    restores,
    resets: candidate.missing,
    verdict: candidate.verdict,
  };
}
