import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { join } from "node:path";
import { main } from "../../src/cli/main.js";
import { PLAIN, type Style } from "../../src/cli/style.js";

/** Runs the ckpt CLI in-process, capturing what it prints, as it prints into a pipe (no colour, plain columns). */
export function ckpt(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return ckptStyled(PLAIN, ...args);
}

/** The same, for an output device described by `style`: e.g. a terminal 80 columns wide, with box drawing. */
export async function ckptStyled(
  style: Style,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(["node", "ckpt", ...args], {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    style,
  });
  return { code, out, err };
}

/**
 * Runs the built CLI (`bin/ckpt.js`, which `npm test` builds first) in a child process: for what only the
 * build has (worker threads, the bundle) and for real exit codes and stderr.
 */
export function ckptBinary(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [join(import.meta.dirname, "..", "..", "bin", "ckpt.js"), ...args], {
    encoding: "utf8",
    env,
    cwd,
  });
}
