import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { findShardedTruths, SHARDED_DIR } from "./helpers/sharded.js";

const SAMPLES_DIR_OUTPUTS = join(SAMPLES_DIR, "outputs");

/**
 * The commands on sharded checkpoints, against the truth torch's own consolidation wrote for each sample:
 * `inspect DIR` lists the consolidated tensors with the sha256 torch's tensors have, `resume-plan` and
 * `audit` reach the verdict `inspect` reaches (one code path), damaged samples are named as such, and `scan`
 * scans every item of every data file.
 */

interface Truth {
  readonly kind: "dcp" | "deepspeed" | "hf-index";
  readonly tensors?: Array<{ name: string; shape: number[]; dtype: string; sha256?: string }>;
  readonly step: { name: string; value: number } | null;
  readonly damage?: { kind: string };
}

interface InspectJson {
  readonly schema: string;
  readonly format: string;
  readonly tensors: Array<{ name: string; shape: number[]; dtype: string; sha256?: string }>;
  readonly findings: Array<{ code: string; severity: string }>;
  readonly resume?: { verdict: string | null; status: string; counter: { value: number } | null };
  readonly security: { verdict: string; files: Array<{ file: string; verdict: string; items: number }> };
}

async function inspectJson(...args: string[]): Promise<InspectJson> {
  const { out } = await ckpt("inspect", "--json", ...args);
  return JSON.parse(out) as InspectJson;
}

const samples = findShardedTruths<Truth>();
// Values the reader cannot undo (a sample written through a custom stream extension) have no hash.
const UNREADABLE_VALUES = new Set(["dcp/transform_descriptors"]);

describe("inspect DIR: one logical checkpoint", () => {
  it("finds the samples", () => {
    expect(samples.length).toBeGreaterThanOrEqual(20);
  });

  for (const { dir, name, truth } of samples) {
    it(`${name}: every consolidated tensor, with torch's sha256`, async () => {
      const report = await inspectJson("--hash", dir);
      expect(report.schema).toBe("ckpt.inspect/1");
      expect(report.format).toBe(truth.kind);
      const got = new Map(report.tensors.map((t) => [t.name, t]));
      for (const expected of truth.tensors ?? []) {
        const tensor = got.get(expected.name);
        expect(tensor, `${name} ${expected.name}`).toBeDefined();
        expect(tensor?.shape).toEqual(expected.shape);
        expect(tensor?.dtype).toBe(expected.dtype);
        if (expected.sha256 && !UNREADABLE_VALUES.has(name) && !truth.damage)
          expect(tensor?.sha256, `${name} ${expected.name}`).toBe(expected.sha256);
      }
      // Where torch's consolidation fails (a lost ZeRO partition) the truth lists none; ckpt still lists the names.
      if ((truth.tensors ?? []).length > 0) expect(report.tensors.length).toBe(truth.tensors?.length);
    });
  }

  it("a .metadata file means its directory; an index file means its shards", async () => {
    const dir = join(SHARDED_DIR, "dcp", "fsdp2_2ranks");
    const viaMetadata = await inspectJson(join(dir, ".metadata"));
    expect(viaMetadata.format).toBe("dcp");
    expect(viaMetadata.tensors.length).toBe(33);
    const index = join(SHARDED_DIR, "hf", "bin_shards", "pytorch_model.bin.index.json");
    expect((await inspectJson(index)).format).toBe("hf-index");
  });

  it("the FSDP2 checkpoint holds model, optimizer and step: resumable at the step inside it", async () => {
    const report = await inspectJson(join(SHARDED_DIR, "dcp", "fsdp2_2ranks"));
    expect(report.resume?.verdict).toBe("resumable");
    expect(report.resume?.counter?.value).toBe(3);
  });

  it("the PyTorch DCP recipe's AppState (app.model, app.optim): model and optimizer found, no counter", async () => {
    const dir = join(SHARDED_DIR, "dcp", "writer_options", "recipe_app_state_2ranks");
    const report = (await inspectJson(dir)) as InspectJson & {
      resume: { components: Array<{ component: string; status: string; key?: string }> };
    };
    expect(report.resume.verdict).toBe("incomplete");
    const byPart = new Map(report.resume.components.map((c) => [c.component, c]));
    expect(byPart.get("model")).toEqual({ component: "model", status: "present", key: "app.model" });
    expect(byPart.get("optimizer")).toEqual({ component: "optimizer", status: "present", key: "app.optim" });
    expect(byPart.get("counter")?.status).toBe("missing");
    // dcp.load restores these weights and restarts the recipe's loop at 0, as the plan does: the lost counter
    // is a warning, not a framework that resumes elsewhere.
    const plan = await ckpt("resume-plan", "--json", dir);
    const codes = (JSON.parse(plan.out) as { findings: Array<{ code: string }> }).findings.map((f) => f.code);
    expect(codes).toEqual(["resume-loses-state"]);
    // Still exit 1: resuming does not pick up where the run stopped (its step count restarts).
    expect(plan.code).toBe(1);
  });

  it("a state saved with flatten_state_dict=False: tensors inside a bytes item are shown, hashed as torch loads them, and warned about", async () => {
    const dir = join(SHARDED_DIR, "dcp", "writer_options", "unflattened");
    const report = (await inspectJson(dir, "--hash")) as InspectJson & {
      bytesItems: Array<{
        name: string;
        tensors?: Array<{ path: unknown[]; dtype: string; shape: number[]; sha256?: string }>;
      }>;
    };
    expect(report.tensors.map((t) => t.name)).toEqual(["w"]);
    const ema = report.bytesItems.find((b) => b.name === "ema");
    const truth = JSON.parse(readFileSync(`${dir}.truth.json`, "utf8")) as {
      bytes: Array<{ name: string; loaded: { tensors?: unknown[] } }>;
    };
    const expected = truth.bytes.find((b) => b.name === "ema")?.loaded.tensors;
    expect(expected).toHaveLength(2);
    expect(ema?.tensors).toEqual(expected);
    expect(ema?.tensors?.map((t) => t.path)).toEqual([[0], [1]]);
    expect(report.bytesItems.find((b) => b.name === "groups")?.tensors).toBeUndefined();
    expect(report.findings).toContainEqual(
      expect.objectContaining({ code: "bytes-item-tensors", severity: "warning" }),
    );
  });

  it("a bytes item larger than a read block is opened in place: its value, its tensors, their hashes as torch's", async () => {
    const dir = join(SHARDED_DIR, "dcp", "writer_options", "large_bytes_item");
    const truth = JSON.parse(readFileSync(`${dir}.truth.json`, "utf8")) as {
      bytes: Array<{ name: string; length: number; loaded: { tensors?: Array<{ path: unknown[] }> } }>;
    };
    const expected = truth.bytes.find((b) => b.name === "extra");
    expect(expected?.length).toBeGreaterThan(128 * 1024);
    type Report = InspectJson & {
      bytesItems: Array<{
        name: string;
        value: unknown;
        tensors?: Array<{ path: unknown[]; sha256?: string }>;
      }>;
    };
    const hashed = (await inspectJson(dir, "--hash")) as Report;
    const extra = hashed.bytesItems.find((b) => b.name === "extra");
    expect(extra?.value).toEqual({ type: "list" });
    expect(extra?.tensors).toEqual(expected?.loaded.tensors);
    // --filter selects tensors inside items by their full path, as it selects logical tensors.
    const filtered = (await inspectJson(dir, "--hash", "--filter", "extra.2.*")) as Report;
    const some = filtered.bytesItems.find((b) => b.name === "extra")?.tensors ?? [];
    expect(some.map((t) => [t.path, t.sha256 !== undefined])).toEqual([
      [[1], false],
      [[2, "ema", "shadow"], true],
    ]);
  });

  it("a bytes item whose archive is damaged: an error finding naming it, the other items still scanned", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-bad-item-"));
    try {
      const sample = join(SHARDED_DIR, "dcp", "writer_options", "large_bytes_item");
      cpSync(sample, dir, { recursive: true });
      const truth = JSON.parse(readFileSync(`${sample}.truth.json`, "utf8")) as {
        bytes: Array<{ name: string; file: string; offset: number; length: number }>;
      };
      const extra = truth.bytes.find((b) => b.name === "extra") as (typeof truth.bytes)[number];
      const file = join(dir, extra.file);
      const bytes = readFileSync(file);
      // The item's last central directory entry loses its signature.
      const entry = bytes.lastIndexOf(Buffer.from("PK\x01\x02", "latin1"), extra.offset + extra.length);
      expect(entry).toBeGreaterThan(extra.offset);
      bytes.write("XXXX", entry, "latin1");
      writeFileSync(file, bytes);
      const { code, out } = await ckpt("inspect", "--json", dir);
      expect(code).toBe(1);
      const report = JSON.parse(out) as InspectJson & { security: { verdict: string } };
      expect(report.findings).toContainEqual(
        expect.objectContaining({ code: "item-unreadable", severity: "error" }),
      );
      expect(report.security.verdict).toBe("inconclusive");
      // scan reports the data file as inconclusive (its damaged item was not read), not as an error.
      const scan = JSON.parse((await ckpt("scan", "--json", dir)).out) as Array<{
        file: string;
        verdict: string;
      }>;
      expect(scan.find((f) => f.file.endsWith(".distcp"))?.verdict).toBe("inconclusive");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("damaged samples carry their finding, as an error, and exit 1", async () => {
    const damaged = samples.filter((s) => s.truth.damage && s.truth.damage.kind !== "malicious-bytes-item");
    expect(damaged.length).toBeGreaterThanOrEqual(6);
    for (const { dir, name } of damaged) {
      const { code, out } = await ckpt("inspect", "--json", dir);
      const report = JSON.parse(out) as InspectJson;
      expect(
        report.findings.some((f) => f.severity === "error"),
        name,
      ).toBe(true);
      expect(code, name).toBe(1);
    }
  });
});

describe("one verdict: inspect, resume-plan and audit agree on sharded checkpoints", () => {
  for (const { dir, name } of samples) {
    it(name, async () => {
      const inspected = await inspectJson(dir);
      const { out } = await ckpt("resume-plan", "--json", dir);
      const plan = JSON.parse(out) as {
        candidates: Array<{ file: string; status: string; verdict: string | null; counter: number | null }>;
      };
      const self = plan.candidates.find((c) => c.file === ".");
      if (!self) return; // DeepSpeed save directories and torchtitan roots: checked below.
      expect(self.status).toBe(inspected.resume?.status);
      expect(self.verdict).toBe(inspected.resume?.verdict);
    });
  }

  it("torchtitan resumes from the highest step-N, DeepSpeed from what latest names", async () => {
    const titan = JSON.parse(
      (await ckpt("resume-plan", "--json", join(SHARDED_DIR, "dcp", "torchtitan", "checkpoint"))).out,
    );
    expect(titan.choice.file).toBe("step-20");
    expect(titan.framework.file).toBe("step-20");
    const zero1 = JSON.parse(
      (await ckpt("resume-plan", "--json", join(SHARDED_DIR, "deepspeed", "zero1"))).out,
    );
    expect(zero1.choice.file).toBe("global_step4");
    expect(zero1.choice.verdict).toBe("resumable");
  });

  it("DeepSpeed without ZeRO: one model-states file holds module and optimizer, no partitions are expected", async () => {
    const dir = join(SHARDED_DIR, "deepspeed", "zero0_fp32");
    const report = JSON.parse((await ckpt("inspect", "--json", dir)).out) as InspectJson & {
      layout: { stage: number; worldSize: number; optimFiles: unknown[] };
      resume: { verdict: string };
    };
    expect(report.layout).toMatchObject({ stage: 0, worldSize: 2, optimFiles: [] });
    expect(report.findings.filter((f) => f.severity === "error")).toEqual([]);
    expect(report.resume.verdict).toBe("resumable");
    const truth = JSON.parse(readFileSync(`${dir}.truth.json`, "utf8")) as {
      tensors: Array<{ name: string }>;
    };
    expect(report.tensors.map((t) => t.name)).toEqual(truth.tensors.map((t) => t.name));
    const plan = await ckpt("resume-plan", "--json", dir);
    expect(plan.code).toBe(0);
    expect(JSON.parse(plan.out).choice).toMatchObject({ file: "global_step3", verdict: "resumable" });
  });

  it("DeepSpeed with model-parallel ranks: rank 0's tensors are shown with a warning, and convert refuses", async () => {
    const run = mkdtempSync(join(tmpdir(), "ckpt-ds-mp-"));
    try {
      cpSync(join(SHARDED_DIR, "deepspeed", "zero0_fp32"), run, { recursive: true });
      const tag = join(run, "global_step3");
      cpSync(join(tag, "mp_rank_00_model_states.pt"), join(tag, "mp_rank_01_model_states.pt"));
      const report = JSON.parse((await ckpt("inspect", "--json", run)).out) as InspectJson;
      expect(report.findings).toContainEqual(
        expect.objectContaining({ code: "model-parallel-ranks", severity: "warning" }),
      );
      const converted = await ckpt("convert", run, "-o", `${run}-out.safetensors`, "--json");
      expect(converted.code).toBe(2);
      expect(JSON.parse(converted.out).code).toBe("sharded-incomplete");
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });

  it("the Trainer under DeepSpeed without scheduler.pt or DeepSpeed's own scheduler: its resume crashes", async () => {
    const run = mkdtempSync(join(tmpdir(), "ckpt-hf-ds-"));
    try {
      cpSync(join(SAMPLES_DIR_OUTPUTS, "hf_deepspeed_run"), run, { recursive: true });
      rmSync(join(run, "checkpoint-6", "scheduler.pt"));
      const plan = JSON.parse((await ckpt("resume-plan", "--json", run)).out);
      expect(plan.framework).toMatchObject({ outcome: "crashes", file: "checkpoint-6" });
      expect(plan.framework.why).toContain("scheduler.pt");
      expect(plan.choice.file).toBe("checkpoint-3");
    } finally {
      rmSync(run, { recursive: true, force: true });
    }
  });

  it("a DeepSpeed run whose latest tag lost a rank's partition cannot resume, and says which file", async () => {
    const { out } = await ckpt(
      "resume-plan",
      "--json",
      join(SHARDED_DIR, "damaged", "deepspeed_missing_rank"),
    );
    const plan = JSON.parse(out);
    expect(plan.choice).toBeNull();
    expect(plan.pointer.status).toBe("incomplete-target");
    expect(JSON.stringify(plan.candidates)).toMatch(/optimizer partition|rank 1/);
  });

  it("audit of the sharded samples: a row per sharded run, none of them loose files", async () => {
    const { out } = await ckpt("audit", "--json", SHARDED_DIR);
    const audit = JSON.parse(out) as { runs: Array<{ runDir: string; convention: string }> };
    const names = audit.runs.map((r) => relative(SHARDED_DIR, r.runDir));
    expect(names).toContain("dcp/fsdp2_2ranks");
    expect(names).toContain("dcp/lightning");
    expect(audit.runs.every((r) => r.convention !== "unknown")).toBe(true);
  });
});

describe("scan: every pickle of every shard", () => {
  const tmp = mkdtempSync(join(tmpdir(), "ckpt-sharded-scan-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("a DCP data file is scanned item by item: a poisoned bytes item is found", async () => {
    const dir = join(SHARDED_DIR, "damaged", "dcp_malicious_bytes_item");
    const { code, out } = await ckpt("scan", "--json", dir);
    const reports = JSON.parse(out) as Array<{ file: string; verdict: string; items?: number }>;
    const data = reports.find((r) => r.file.endsWith("__0_0.distcp"));
    expect(data?.verdict).toBe("dangerous");
    expect(data?.items).toBe(3);
    expect(code).toBe(1);
    const inspected = await inspectJson(dir);
    expect(inspected.security.verdict).toBe("dangerous");
  });

  it("every file of a 4-rank checkpoint is reported, with each of its items", async () => {
    const dir = join(SHARDED_DIR, "dcp", "fsdp2_4ranks");
    const { out } = await ckpt("scan", "--json", dir);
    const reports = JSON.parse(out) as Array<{ file: string; verdict: string; items?: number }>;
    const files = readdirSync(dir).filter((n) => n.endsWith(".distcp") || n === ".metadata");
    expect(reports.map((r) => r.file.split("/").pop()).sort()).toEqual(files.sort());
    expect(reports.every((r) => r.verdict === "clean" || r.verdict === "framework")).toBe(true);
  });

  it("a data file names each safe global once, counted over its tensor items", async () => {
    const dir = join(SHARDED_DIR, "dcp", "fsdp2_4ranks");
    const { out } = await ckpt("scan", "--json", dir);
    const reports = JSON.parse(out) as Array<{
      file: string;
      globals: Array<{ name: string; class: string; occurrences?: number }>;
    }>;
    const { out: inspected } = await ckpt("inspect", "--json", dir);
    const chunks = (JSON.parse(inspected) as { tensors: Array<{ chunks: Array<{ file: string }> }> }).tensors
      .flatMap((t) => t.chunks)
      .map((c) => c.file);
    for (const report of reports.filter((r) => r.file.endsWith(".distcp"))) {
      const rebuild = report.globals.filter((g) => g.name === "_rebuild_tensor_v2");
      expect(rebuild, report.file).toHaveLength(1);
      const file = report.file.split("/").pop();
      expect(rebuild[0]?.occurrences ?? 1, report.file).toBe(chunks.filter((f) => f === file).length);
    }
  });

  it("a copy with the poisoned file inside a tree is found by walking the tree", async () => {
    cpSync(join(SHARDED_DIR, "damaged", "dcp_malicious_bytes_item"), join(tmp, "run", "step-1"), {
      recursive: true,
    });
    const { code, out } = await ckpt("scan", "--json", tmp);
    const reports = JSON.parse(out) as Array<{ file: string; verdict: string }>;
    expect(reports.some((r) => r.verdict === "dangerous")).toBe(true);
    expect(code).toBe(1);
  });
});
