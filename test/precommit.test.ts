import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** ckpt where model files are checked before they land: the pre-commit hook and the README's CI recipe. */
const ROOT = join(import.meta.dirname, "..");

interface Hook {
  id: string;
  name: string;
  entry: string;
  language: string;
  files: string;
}

const hooks = parse(readFileSync(join(ROOT, ".pre-commit-hooks.yaml"), "utf8")) as Hook[];

describe("the pre-commit hook", () => {
  const [hook] = hooks;

  it("is ckpt scan, installed by pre-commit's node support", () => {
    expect(hooks).toHaveLength(1);
    expect(hook).toMatchObject({ id: "ckpt-scan", language: "node", entry: "ckpt scan --quiet" });
    const bin = (
      JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> }
    ).bin;
    expect(Object.keys(bin)).toContain(hook?.entry.split(" ")[0]);
  });

  it("its files pattern takes model files and leaves everything else", () => {
    const files = new RegExp(hook?.files ?? "^$");
    for (const name of [
      "model_final.pth",
      "last.ckpt",
      "pytorch_model.bin",
      "DiMPnet_ep0003.pth.tar",
      "weights.pt",
      "scaler.pkl",
      "model.joblib",
      "model.safetensors",
      "embeddings.npy",
      "arrays.npz",
    ])
      expect(files.test(`models/${name}`), name).toBe(true);
    for (const name of ["README.md", "config.yaml", "train.py", "last_checkpoint", "data.tar.gz"])
      expect(files.test(`models/${name}`), name).toBe(false);
  });

  it("run as pre-commit runs it (the entry, then the staged files): passes clean files, stops dangerous ones", () => {
    const files = new RegExp(hook?.files ?? "^$");
    const staged = (dir: string) =>
      readdirSync(dir)
        .filter((n) => files.test(n))
        .map((n) => join(dir, n));
    const args = (hook?.entry ?? "").split(" ").slice(1);
    const clean = staged(join(SAMPLES_DIR, "torch2")).filter((f) =>
      /state_dict|safetensors|training/.test(f),
    );
    expect(clean.length).toBeGreaterThan(2);
    expect(ckptBinary([...args, ...clean]).status).toBe(0);
    const evil = staged(join(import.meta.dirname, "fixtures", "security")).filter((f) =>
      /bare-evil-first\.pkl$|names-import\.pkl$|frame-overlong-system\.pt$/.test(f),
    );
    expect(evil.length).toBeGreaterThan(0);
    const stopped = ckptBinary([...args, ...evil]);
    expect(stopped.status).toBe(1);
    expect(stopped.stdout).toContain("Dangerous globals:");
  });
});

describe("the README's CI recipe", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const block = /```yaml\n(# \.github\/workflows\/[\s\S]*?)```/.exec(readme)?.[1] ?? "";

  it("is a GitHub Actions workflow whose steps run ckpt audit and ckpt scan", () => {
    const workflow = parse(block) as { jobs: Record<string, { steps: Array<{ run?: string }> }> };
    const runs = Object.values(workflow.jobs).flatMap((job) =>
      job.steps.flatMap((s) => (s.run ? [s.run] : [])),
    );
    expect(runs).toContain("npx ckpt audit outputs --fail-on warning");
    expect(runs).toContain("npx ckpt scan models/");
  });

  it("its ckpt commands are valid: on the samples they judge (exit 0 or 1), never a usage error", async () => {
    const commands = block.split("\n").flatMap((l) => /run: npx ckpt (.*)$/.exec(l)?.[1] ?? []);
    expect(commands.length).toBeGreaterThanOrEqual(2);
    for (const command of commands) {
      const args = command
        .split(" ")
        .map((a) =>
          a === "outputs" ? join(SAMPLES_DIR, "outputs") : a === "models/" ? join(SAMPLES_DIR, "torch2") : a,
        );
      expect([0, 1], command).toContain((await ckpt(...args)).code);
    }
  });
});
