import { spawnSync } from "node:child_process";
import { join } from "node:path";

/**
 * Python interpreters with real torch on this machine, for the tests that prove what ckpt writes loads in
 * torch. `.ci/run` installs them (Debian's python3-torch, and torch 2.x in a venv); `npm test` runs without
 * them and these suites then do not run. CKPT_TORCH_PYTHONS (colon-separated) overrides the search.
 */
export interface TorchPython {
  readonly python: string;
  readonly version: string;
  /** "torch1" or "torch2": which bundled samples this torch can load. */
  readonly samples: "torch1" | "torch2";
}

const CANDIDATES = [
  "/usr/bin/python3",
  "/opt/torch2/bin/python",
  join(import.meta.dirname, "..", "..", ".ci", "venv", "bin", "python"),
];

function probe(python: string): TorchPython | undefined {
  const run = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  if (run.status !== 0) return undefined;
  const version = run.stdout.trim();
  return { python, version, samples: version.startsWith("1.") ? "torch1" : "torch2" };
}

export function findTorchPythons(): TorchPython[] {
  const candidates = process.env.CKPT_TORCH_PYTHONS?.split(":").filter(Boolean) ?? CANDIDATES;
  const found = new Map<string, TorchPython>();
  for (const python of candidates) {
    const torch = probe(python);
    if (torch && !found.has(torch.version)) found.set(torch.version, torch);
  }
  return [...found.values()];
}

export function runPython(python: string, script: string, args: readonly string[]): string {
  const run = spawnSync(python, [join(import.meta.dirname, "..", "fixtures", "torch", script), ...args], {
    encoding: "utf8",
    timeout: 300_000,
  });
  if (run.status !== 0) throw new Error(`${script} failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}
