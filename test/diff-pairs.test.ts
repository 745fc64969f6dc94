import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { DiffReport, PairedTensor, TensorDiff } from "../src/inspect/diff/diff.js";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `ckpt diff --values --hash` on every pair `samples/make_pairs.py` made, against what torch computed of the
 * same two inputs (`torch.equal`, `(a - b).abs().max()`, norms, sha256 of the contiguous bytes, the keys each
 * side has): the renames, the names on one side only, every tensor's figures, the non-tensor values that
 * differ, and the exit code.
 */
interface TruthTensor {
  name: string;
  nameB: string;
  dtypeA: string;
  dtypeB: string;
  shapeA: number[];
  shapeB: number[];
  equal: boolean;
  sameBytes: boolean;
  sha256A: string;
  sha256B: string;
  elements?: number;
  differing?: number;
  maxAbsDiff?: number;
  relL2?: number | null;
  nanAppeared?: number;
  infAppeared?: number;
}

interface PairTruth {
  pair: string;
  a: string;
  b: string;
  select: { a: string | null; b: string | null };
  renames: Array<{ from: string; to: string }>;
  onlyInA: string[];
  onlyInB: string[];
  tensors: TruthTensor[];
  values: { changed: Array<{ name: string }>; onlyInA: string[]; onlyInB: string[] };
  equal: boolean;
}

const PAIRS_DIR = join(SAMPLES_DIR, "pairs");
const truths: PairTruth[] = existsSync(PAIRS_DIR)
  ? readdirSync(PAIRS_DIR)
      .filter((name) => name.endsWith(".truth.json"))
      .sort()
      .map((name) => JSON.parse(readFileSync(join(PAIRS_DIR, name), "utf8")) as PairTruth)
  : [];

function args(truth: PairTruth, ...extra: string[]): string[] {
  const out = ["diff", join(SAMPLES_DIR, truth.a), join(SAMPLES_DIR, truth.b), ...extra];
  if (truth.select.a) out.push("--select-a", truth.select.a);
  if (truth.select.b) out.push("--select-b", truth.select.b);
  return out;
}

async function diffJson(truth: PairTruth, ...extra: string[]): Promise<{ code: number; report: DiffReport }> {
  const { code, out, err } = await ckpt(...args(truth, "--json", ...extra));
  expect(err).toBe("");
  return { code, report: JSON.parse(out) as DiffReport };
}

/** Close as float64 arithmetic in another order gets: relative 1e-9, or absolute for figures near 0. */
function expectClose(actual: number | null | undefined, expected: number | null | undefined, what: string) {
  if (expected === null || expected === undefined) {
    expect(actual ?? null, what).toBe(expected ?? null);
    return;
  }
  expect(actual, what).not.toBeNull();
  expect(Math.abs((actual as number) - expected), what).toBeLessThanOrEqual(
    1e-9 * Math.max(1, Math.abs(expected)),
  );
}

const paired = (tensors: readonly TensorDiff[]) =>
  new Map(tensors.filter((t): t is PairedTensor => "a" in t).map((t) => [t.name, t]));

describe("ckpt diff against torch on the sample pairs", () => {
  it("has the pairs", () => {
    expect(truths.length).toBeGreaterThanOrEqual(20);
  });

  for (const truth of truths) {
    it(`${truth.pair}: names, renames, figures and exit code as torch computes them`, async () => {
      const { code, report } = await diffJson(truth, "--values", "--hash");
      expect(code).toBe(truth.equal ? 0 : 1);
      expect(report.summary.equal).toBe(truth.equal);
      expect(report.renames.map((r) => ({ from: r.from, to: r.to }))).toEqual(truth.renames);
      const names = (status: string) => report.tensors.filter((t) => t.status === status).map((t) => t.name);
      expect(names("only-in-a").sort()).toEqual([...truth.onlyInA].sort());
      expect(names("only-in-b").sort()).toEqual([...truth.onlyInB].sort());

      const ours = paired(report.tensors);
      expect(ours.size).toBe(truth.tensors.length);
      for (const t of truth.tensors) {
        const mine = ours.get(t.name);
        expect(mine, t.name).toBeDefined();
        if (!mine) continue;
        expect(mine.nameB ?? mine.name, t.name).toBe(t.nameB);
        expect([mine.a.dtype, mine.b.dtype], t.name).toEqual([t.dtypeA, t.dtypeB]);
        expect([mine.a.shape, mine.b.shape], t.name).toEqual([t.shapeA, t.shapeB]);
        if (t.elements === undefined) {
          expect(mine.status, t.name).toBe("shape-changed");
          continue;
        }
        const v = mine.values;
        expect(v?.kind, t.name).toBe("compared");
        if (v?.kind !== "compared") continue;
        expect(v.sha256, t.name).toEqual({ a: t.sha256A, b: t.sha256B });
        expect(v.identicalBytes, t.name).toBe(t.sameBytes);
        expect(mine.status, t.name).toBe(
          t.dtypeA !== t.dtypeB ? "dtype-changed" : t.sameBytes ? "identical" : "changed",
        );
        expect(v.elements, t.name).toBe(t.elements);
        expect(v.differing, t.name).toBe(t.differing);
        expect(v.nanAppeared, t.name).toBe(t.nanAppeared);
        expect(v.infAppeared, t.name).toBe(t.infAppeared);
        expectClose(v.maxAbsDiff, t.maxAbsDiff, `${t.name} max |a-b|`);
        expectClose(v.relL2, t.relL2, `${t.name} rel. L2`);
      }

      const valueNames = (status: string) =>
        report.values
          .filter((v) => v.status === status)
          .map((v) => v.name)
          .sort();
      expect(valueNames("changed")).toEqual(truth.values.changed.map((v) => v.name).sort());
      expect(valueNames("only-in-a")).toEqual([...truth.values.onlyInA].sort());
      expect(valueNames("only-in-b")).toEqual([...truth.values.onlyInB].sort());
    });
  }

  it("without --values compares names, dtypes and shapes only, and says so", async () => {
    const truth = truths.find((t) => t.pair === "finetune_bn_eval_model");
    if (!truth) throw new Error("no finetune_bn_eval_model pair");
    const { code, report } = await diffJson(truth);
    expect(report.valuesCompared).toBe(false);
    expect(report.summary.tensors.unchecked).toBe(truth.tensors.length);
    expect(code).toBe(0);
    const text = await ckpt(...args(truth));
    expect(text.out).toContain("values not compared: --values");
  });

  it("answers 'did fine-tuning touch the frozen backbone' with --filter", async () => {
    const truth = truths.find((t) => t.pair === "finetune_bn_train_model");
    if (!truth) throw new Error("no finetune_bn_train_model pair");
    const { code, report } = await diffJson(truth, "--values", "--filter", "backbone.*");
    const backbone = truth.tensors.filter((t) => t.name.startsWith("backbone."));
    expect(report.tensors.map((t) => t.name).sort()).toEqual(backbone.map((t) => t.name).sort());
    expect(report.summary.tensors.changed).toBe(backbone.filter((t) => !t.sameBytes).length);
    expect(code).toBe(1);
    // Only the BatchNorm statistics moved: the weights the optimizer never saw are identical.
    for (const t of report.tensors) expect(t.status === "changed").toBe(/running_|num_batches/.test(t.name));
  });

  it("prints the summary line the issue asks for", async () => {
    const truth = truths.find((t) => t.pair === "wider_head");
    if (!truth) throw new Error("no wider_head pair");
    const { out, code } = await ckpt(...args(truth, "--values"));
    expect(code).toBe(1);
    expect(out).toMatch(/different: 14 tensors identical, 2 with another shape; 0 values equal/);
  });

  it("names a rename once, not as removals and additions", async () => {
    const truth = truths.find((t) => t.pair === "dataparallel");
    if (!truth) throw new Error("no dataparallel pair");
    const { out } = await ckpt(...args(truth, "--values"));
    expect(out).toContain("* -> module.* (16 tensors)");
    expect(out).not.toContain("Only in");
    expect(out).toMatch(/16 tensors identical, 16 renamed "" -> module\./);
  });
});

describe("ckpt diff refuses what it cannot compare", () => {
  it("exits 2 with its own code for one input and nothing to compare it with", async () => {
    const { code, err } = await ckpt("diff", join(PAIRS_DIR, "plain.pt"));
    expect(code).toBe(2);
    expect(err).toMatch(/diff-needs-two/);
    expect(err).toMatch(/Next:|--select-a/);
  });

  it("exits 2 for a missing file and for a key that selects nothing", async () => {
    const missing = await ckpt("diff", join(PAIRS_DIR, "plain.pt"), join(PAIRS_DIR, "nope.pt"));
    expect(missing.code).toBe(2);
    const nothing = await ckpt(
      "diff",
      join(PAIRS_DIR, "pretrain.pth"),
      join(PAIRS_DIR, "pretrain.pth"),
      "--select",
      "nope",
    );
    expect(nothing.code).toBe(2);
    expect(nothing.err).toMatch(/nothing-selected/);
  });
});

describe("ckpt diff --values on two threads", () => {
  const twoThreads = { ...process.env, CKPT_PARALLEL_MIN_BYTES: "1" };
  const oneThread = { ...process.env, CKPT_PARALLEL_MIN_BYTES: "1e15" };
  for (const pair of ["earlier_iteration", "diverged", "bf16", "dcp_steps"]) {
    it(`${pair}: the worker's figures are this thread's`, () => {
      const truth = truths.find((t) => t.pair === pair);
      if (!truth) throw new Error(`no ${pair} pair`);
      const run = (env: NodeJS.ProcessEnv) => {
        const result = ckptBinary([...args(truth, "--json", "--values", "--hash")], env);
        expect(result.stderr).toBe("");
        expect(result.status).toBe(truth.equal ? 0 : 1);
        return JSON.parse(result.stdout) as DiffReport;
      };
      expect(run(twoThreads)).toEqual(run(oneThread));
    });
  }
});

describe("ckpt diff of two runs", () => {
  it("compares the checkpoints their resume plans choose", async () => {
    const outputs = join(SAMPLES_DIR, "outputs");
    const { code, out } = await ckpt(
      "diff",
      join(outputs, "fvcore_dangling"),
      join(outputs, "fvcore_finished"),
      "--json",
    );
    const report = JSON.parse(out) as DiffReport;
    expect(report.a.run?.choice).toBe("model_0000009.pth");
    expect(report.b.run?.choice).toBe("model_final.pth");
    expect(report.a.file).toBe(join(outputs, "fvcore_dangling", "model_0000009.pth"));
    expect(code).toBe(report.summary.equal ? 0 : 1);
    // In text, each side's line names the chosen file once (it holds the run's directory already).
    const text = await ckpt("diff", join(outputs, "fvcore_dangling"), join(outputs, "fvcore_finished"));
    const sideA = text.out.split("\n")[0] as string;
    expect(sideA).toContain(`${join(outputs, "fvcore_dangling", "model_0000009.pth")} (the fvcore run's`);
    expect(sideA.split(join(outputs, "fvcore_dangling")).length).toBe(2);
  });
});
