import { existsSync, readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import type { CandidateReport } from "../inspect/runs/candidates.js";
import type { ResumePlan } from "../inspect/runs/plan.js";
import { ReaderError } from "../reader/errors.js";
import { writeFileAtomic } from "./atomicWrite.js";
import { pointerContent, willRewritePointer as rewrites } from "./pointerRewrite.js";

export { willRewritePointer } from "./pointerRewrite.js";

/**
 * `ckpt resume-plan --write`: the resume manifest, and a corrected pointer when the run's pointer is missing,
 * dangling, names a broken file or still names where a moved run used to be. Pointers are written
 * byte-compatible with the framework that reads them; the old pointer is kept as a backup; nothing outside
 * the run directory is ever written.
 */
export const MANIFEST_NAME = "resume-manifest.json";

function insideRunDir(runDir: string, path: string): string {
  const rel = relative(runDir, resolve(path));
  if (rel.startsWith("..") || resolve(path) === resolve(runDir)) {
    throw new Error(`refusing to write ${path}: outside the run directory ${runDir}`);
  }
  return resolve(path);
}

function skippedReason(c: CandidateReport): string {
  if (c.status !== "ok") return `${c.status}${c.problem ? `: ${c.problem.message}` : ""}`;
  return c.verdict === "resumable"
    ? "older than the chosen checkpoint"
    : `${c.verdict}: lacks ${c.missing.join(", ")}`;
}

export interface WriteResult {
  readonly written: string[];
}

export interface WriteOptions {
  readonly now?: Date;
  /** A checkpoint written by `ckpt repair` to resume from instead of the plan's choice (already examined). */
  readonly replacement?: CandidateReport;
}

/**
 * Refuses to write for a run with a checkpoint it could not read: that file may be the newest, and a pointer
 * moved to an older one would throw its progress away over a permission or a flaky disk.
 */
export function refuseIfUnreadable(plan: ResumePlan): void {
  const unreadable =
    plan.pointer?.status === "unreadable-target" && plan.pointer.target
      ? [plan.pointer.target, ...plan.unreadable]
      : plan.unreadable;
  if (unreadable.length === 0) return;
  throw new ReaderError(
    "checkpoint-unreadable",
    `${[...new Set(unreadable)].join(", ")} cannot be read; nothing was written`,
    { file: plan.runDir },
  );
}

/** Writes the manifest (and the pointer when it needs fixing); returns the paths written, relative to the run. */
export async function writeResumeFiles(plan: ResumePlan, options: WriteOptions = {}): Promise<string[]> {
  refuseIfUnreadable(plan);
  const now = options.now ?? new Date();
  const planned = plan.choice;
  if (!planned) return [];
  const replacement = options.replacement;
  const choice = replacement
    ? {
        ...planned,
        file: replacement.file,
        resumeAtSource: "checkpoint" as const,
        restores: planned.restores.concat(["counter"]),
        resets: planned.resets.filter((c) => c !== "counter"),
      }
    : planned;
  const runDir = plan.runDir;
  const chosen = replacement ?? plan.candidates.find((c) => c.file === choice.file);
  const written: string[] = [];

  let pointerAfter: string | null = null;
  let backup: string | null = null;
  const content = pointerContent(plan, choice.file);
  if (plan.pointer && rewrites(plan, replacement !== undefined) && content !== undefined) {
    const pointerPath = insideRunDir(runDir, join(runDir, plan.pointer.file));
    if (existsSync(pointerPath)) {
      const stamp = now.toISOString().replace(/[:.]/g, "-");
      backup = `${plan.pointer.file}.${stamp}.bak`;
      writeFileAtomic(insideRunDir(runDir, join(runDir, backup)), readFileSync(pointerPath));
      written.push(backup);
    }
    writeFileAtomic(pointerPath, content);
    pointerAfter = content;
    written.push(plan.pointer.file);
  }

  const manifest = {
    schema: "ckpt.resume-manifest/1",
    createdAt: now.toISOString(),
    runDir,
    convention: plan.convention,
    checkpoint: {
      file: choice.file,
      sizeBytes: chosen?.sizeBytes ?? null,
      records: chosen?.records ?? null,
    },
    counter:
      chosen?.counter === null || chosen === undefined
        ? null
        : { name: choice.counterName, value: chosen.counter, source: chosen.counterSource },
    resumeAt: choice.resumeAt,
    resumeAtSource: choice.resumeAtSource,
    restores: choice.restores,
    resets: choice.resets,
    pointer: plan.pointer
      ? {
          file: plan.pointer.file,
          before: plan.pointer.content,
          statusBefore: plan.pointer.status,
          after: pointerAfter ?? plan.pointer.content,
          backup,
        }
      : null,
    skipped: plan.candidates
      .filter((c) => c.file !== choice.file)
      .map((c) => ({
        file: c.file,
        status: c.status,
        verdict: c.verdict,
        why:
          c.file === planned.file && replacement
            ? `repaired: resume from ${replacement.file} instead`
            : skippedReason(c),
      })),
  };
  writeFileAtomic(
    insideRunDir(runDir, join(runDir, MANIFEST_NAME)),
    `${JSON.stringify(manifest, null, 2)}\n`,
  );
  written.push(MANIFEST_NAME);
  return written;
}
