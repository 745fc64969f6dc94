import { join, relative } from "../../reader/posixPath.js";
import type { TreeFiles } from "../treeFiles.js";
import { detectRunLayout } from "./layout.js";

/** What is a run directory, and where runs are below a directory: shared by `audit`'s walk and `resume-plan`. */

/** Trees that never hold runs (and can be huge): neither walk enters them. */
export const SKIPPED_DIRS: ReadonlySet<string> = new Set([
  ".git",
  "node_modules",
  "__pycache__",
  ".venv",
  "venv",
  ".mypy_cache",
  ".cache",
  "wandb",
]);

/** A directory is a run when its layout is a framework's, or its checkpoints carry a counter in their names. */
export function isRunDir(dir: string, fs: TreeFiles): boolean {
  const layout = detectRunLayout(dir, fs);
  if (layout.convention !== "unknown") return layout.candidates.length > 0 || layout.pointer?.exists === true;
  return layout.candidates.filter((c) => c.counterFromName !== undefined).length >= 2;
}

/** How far `runsBelow` looks: a few levels and a few hundred directories, so a wrong directory costs little. */
const BELOW_DEPTH = 3;
const BELOW_DIRS = 256;

/**
 * The runs under `dir` (not `dir` itself), relative to it, nearest first: what to point `resume-plan` at when
 * `dir` holds no checkpoint itself (a `ModelCheckpoint(dirpath="ckpts")` under the run's folder). A run's own
 * subdirectories are not searched. Bounded: at most `BELOW_DEPTH` levels and `BELOW_DIRS` directories listed.
 */
export function runsBelow(dir: string, fs: TreeFiles): string[] {
  const found: string[] = [];
  const visited = new Set<string>([fs.realpath(dir)]);
  let level = [dir];
  let listed = 0;
  for (let depth = 1; depth <= BELOW_DEPTH && level.length > 0; depth++) {
    const next: string[] = [];
    for (const parent of level) {
      if (++listed > BELOW_DIRS) return found;
      for (const entry of fs.tree.list(parent) ?? []) {
        if (entry.kind !== "directory" || SKIPPED_DIRS.has(entry.name)) continue;
        const path = join(parent, entry.name);
        const real = fs.realpath(path);
        if (visited.has(real)) continue; // a symlink back into the tree
        visited.add(real);
        if (isRunDir(path, fs)) found.push(relative(dir, path));
        else next.push(path);
      }
    }
    level = next;
  }
  return found;
}
