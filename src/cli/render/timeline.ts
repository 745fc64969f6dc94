import type { CandidateReport } from "../../inspect/runs/candidates.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";

/**
 * Where a run's checkpoints sit on its timeline (over the counter), coloured by verdict, with the pointer's
 * target and the plan's choice marked: the geometry only, drawn as SVG text by the audit HTML report and as
 * DOM nodes by the page (src/page/), so both show the same picture.
 */
export const VERDICT_COLORS: Readonly<Record<string, string>> = {
  resumable: "#2e7d32",
  incomplete: "#f9a825",
  "weights-only": "#c62828",
  "training-state-only": "#c62828",
  "not-a-training-checkpoint": "#757575",
  broken: "#000000",
};

export const TIMELINE_WIDTH = 640;
export const TIMELINE_HEIGHT = 56;

export interface TimelineMark {
  readonly file: string;
  readonly status: string;
  readonly verdict: string;
  readonly counter: number;
  /** Centre on the x axis, in the 0..TIMELINE_WIDTH view box. */
  readonly x: number;
  readonly color: string;
  readonly pointer: boolean;
  readonly choice: boolean;
  readonly title: string;
}

function colorOf(c: CandidateReport): string {
  return c.status !== "ok"
    ? (VERDICT_COLORS.broken as string)
    : (VERDICT_COLORS[c.verdict ?? "not-a-training-checkpoint"] ?? "#757575");
}

/** The marks of a run's checkpoints that carry a counter; empty when none does. */
export function timelineMarks(plan: ResumePlan): TimelineMark[] {
  const points = plan.candidates.filter((c) => c.counter !== null);
  if (points.length === 0) return [];
  const counters = points.map((c) => c.counter as number);
  const min = Math.min(0, ...counters);
  const max = Math.max(...counters, min + 1);
  const x = (v: number) => 20 + ((v - min) / (max - min)) * (TIMELINE_WIDTH - 40);
  const pointerTarget = plan.pointer?.target ?? null;
  return points.map((c) => ({
    file: c.file,
    status: c.status,
    verdict: c.verdict ?? "",
    counter: c.counter as number,
    x: x(c.counter as number),
    color: colorOf(c),
    pointer: pointerTarget !== null && (pointerTarget === c.file || pointerTarget.startsWith(`${c.file}/`)),
    choice: plan.choice?.file === c.file,
    title: `${c.file}: ${c.status === "ok" ? c.verdict : c.status} at ${c.counter}`,
  }));
}
