import { basename, join, normalize, relative, resolve } from "node:path";
import type { RunName } from "./auditSummary.js";

export { nameOf, type RunName } from "./auditSummary.js";

/** An argument as typed, without "./" or a trailing slash. */
function tidy(arg: string): string {
  return normalize(arg).replace(/(.)\/+$/, "$1");
}

/** What a run that is the argument is called: the argument, or for "." (the working directory) its name. */
function shown(arg: string): string {
  return tidy(arg) === "." ? basename(resolve(arg)) : tidy(arg);
}

/** The argument `dir` came from: the one it equals, else the deepest that contains it. */
function argumentOf(dir: string, args: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const arg of args) {
    const root = resolve(arg);
    if (dir === root) return arg;
    if (dir.startsWith(`${root}/`) && (best === undefined || root.length > resolve(best).length)) best = arg;
  }
  return best;
}

function nameOne(dir: string, args: readonly string[]): RunName {
  const arg = argumentOf(dir, args);
  if (arg === undefined) return { label: dir, path: dir };
  if (resolve(arg) === dir) return { label: shown(arg), path: tidy(arg) };
  const rel = relative(resolve(arg), dir);
  return { label: rel, path: join(arg, rel) };
}

/**
 * Names for `dirs` (absolute, as the audit reports them) found under `args` (as typed). Two runs that would
 * share a name (`a/run` and `b/run` from `ckpt audit a b`) are named by their paths instead.
 */
export function runNames(dirs: readonly string[], args: readonly string[]): Map<string, RunName> {
  const names = new Map(dirs.map((dir) => [dir, nameOne(dir, args)] as const));
  const count = new Map<string, number>();
  for (const { label } of names.values()) count.set(label, (count.get(label) ?? 0) + 1);
  for (const [dir, name] of names) {
    if ((count.get(name.label) ?? 0) > 1) names.set(dir, { label: name.path, path: name.path });
  }
  return names;
}
