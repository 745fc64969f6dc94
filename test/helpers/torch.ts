import { spawnSync } from "node:child_process";
import { join, relative } from "node:path";
import type { Requirement } from "./requires.js";

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

const ROOT = join(import.meta.dirname, "..", "..");
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

function candidates(): string[] {
  return process.env.CKPT_TORCH_PYTHONS?.split(":").filter(Boolean) ?? CANDIDATES;
}

export function findTorchPythons(): TorchPython[] {
  const found = new Map<string, TorchPython>();
  for (const python of candidates()) {
    const torch = probe(python);
    if (torch && !found.has(torch.version)) found.set(torch.version, torch);
  }
  return [...found.values()];
}

/**
 * The interpreters a suite can use (any torch, or torch 2.x only), or one line naming what is missing and
 * where it was looked for: "needs torch 2.x (none of /opt/torch2/bin/python, .ci/venv/bin/python has it)".
 */
export function torchRequirement(which: "any" | "torch2"): Requirement<[TorchPython, ...TorchPython[]]> {
  const all = findTorchPythons();
  const [first, ...rest] = which === "torch2" ? all.filter((t) => t.samples === "torch2") : all;
  if (first) return { found: [first, ...rest] };
  const shown = (python: string) => (python.startsWith(ROOT) ? relative(ROOT, python) : python);
  const looked = candidates().filter((python) => !all.some((t) => t.python === python));
  const facts = [
    ...(looked.length > 0 ? [`none of ${looked.map(shown).join(", ")} has it`] : []),
    ...all.map((t) => `${shown(t.python)} has torch ${t.version}`),
    ".ci/run installs it, CKPT_TORCH_PYTHONS names others",
  ];
  return { missing: `needs ${which === "torch2" ? "torch 2.x" : "torch"} (${facts.join("; ")})` };
}

export function runPython(python: string, script: string, args: readonly string[]): string {
  const run = spawnSync(python, [join(import.meta.dirname, "..", "fixtures", "torch", script), ...args], {
    encoding: "utf8",
    timeout: 300_000,
  });
  if (run.status !== 0) throw new Error(`${script} failed (${run.status}): ${run.stderr}`);
  return run.stdout;
}
