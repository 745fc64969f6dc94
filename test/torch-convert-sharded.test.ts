import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { describeWith } from "./helpers/requires.js";
import { findShardedTruths, SHARDED_DIR } from "./helpers/sharded.js";
import { runPython, torchRequirement } from "./helpers/torch.js";

/**
 * Proof with the real libraries for sharded sources: every sample ckpt converts is loaded with
 * safetensors.torch.load_file and each tensor compared with torch.equal to torch's own consolidation of the
 * source (dcp_to_torch_save then torch.load; zero_to_fp32's logic; every shard loaded and merged), aliases
 * included; and a tiny transformers model converted from pytorch_model.bin shards loads with from_pretrained
 * from ckpt's directory and gives the same logits as from its source. One Python process checks them all.
 */

interface Truth {
  kind: "dcp" | "deepspeed" | "hf-index";
  consolidatedBy: string | null;
  tensors: unknown[];
  damage?: unknown;
}

interface Spec {
  label: string;
  kind: Truth["kind"];
  source: string;
  output: string;
  key: string;
  pretrained?: boolean;
  /** torch's own dcp_to_torch_save reads it: a skip would hide a failure. */
  mustConsolidate: boolean;
}

interface Report {
  skipped?: string;
  error?: string;
  written: string[];
  unequal: string[];
  aliasesUnequal: string[];
  aliases: Record<string, string>;
  notWritten: string[];
  format: string | null;
  logitsEqual?: boolean;
}

const scratch = mkdtempSync(join(tmpdir(), "ckpt-convert-sharded-torch-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const samples = findShardedTruths<Truth>().filter(
  (s) => !s.truth.damage && s.truth.tensors.length > 0 && !s.name.includes("transform_descriptors"),
);

describeWith(
  torchRequirement("torch2"),
  "converted sharded checkpoints equal torch's consolidation",
  ([torch]) => {
    const specs: Spec[] = [];
    const reports = new Map<string, Report>();
    /** Defaults refused: a save with no model part (accelerate's optimizer_0) has nothing to take by default. */
    const refusedDefault = new Map<string, string>();

    /** Per source: the tensors inspect finds inside its bytes items (torch's consolidation includes them). */
    const insideBytesItems = new Map<string, string[]>();

    beforeAll(async () => {
      for (const { dir } of samples) {
        const report = JSON.parse((await ckpt("inspect", "--json", dir)).out) as {
          bytesItems?: Array<{ name: string; tensors?: Array<{ path: Array<string | number> }> }>;
        };
        const names = (report.bytesItems ?? []).flatMap((item) =>
          (item.tensors ?? []).map((t) => [item.name, ...t.path].join(".")),
        );
        if (names.length > 0) insideBytesItems.set(dir, names.sort());
      }
      const add = async (spec: Omit<Spec, "output" | "key">, output: string, ...args: string[]) => {
        const run = await ckpt("convert", spec.source, "-o", output, ...args, "--json");
        if (run.code !== 0 && args.length === 0) {
          refusedDefault.set(spec.label, JSON.parse(run.out).code);
          return;
        }
        expect(run.code, `${spec.label}: ${run.out}`).toBe(0);
        const key = JSON.parse(run.out).selected as string;
        specs.push({ ...spec, output, key });
      };
      for (const { dir, name, truth } of samples) {
        const label = `${name} --all`;
        const by = truth.consolidatedBy ?? "";
        const mustConsolidate =
          by.startsWith("torch.distributed.checkpoint.format_utils") || by.startsWith("torch.load(");
        const base = { label, kind: truth.kind, source: dir, mustConsolidate };
        await add(base, join(scratch, `${name.replaceAll("/", "_")}.safetensors`), "--all");
        await add(
          { ...base, label: `${name} (default)` },
          join(scratch, `${name.replaceAll("/", "_")}-default.safetensors`),
        );
      }
      // Shards and an index, as save_pretrained writes them; config.json copied beside them as a user would.
      const hf = join(SHARDED_DIR, "hf", "bin_shards");
      const out = join(scratch, "hf-from-bin");
      await add(
        {
          label: "hf/bin_shards -> shards",
          kind: "hf-index",
          source: hf,
          pretrained: true,
          mustConsolidate: true,
        },
        `${out}/`,
        "--max-shard-size",
        "8KB",
      );
      copyFileSync(join(hf, "config.json"), join(out, "config.json"));
      const zero3 = join(SHARDED_DIR, "deepspeed", "zero3_fp16");
      await add(
        {
          label: "deepspeed/zero3_fp16 -> shards",
          kind: "deepspeed",
          source: zero3,
          mustConsolidate: true,
        },
        join(scratch, "zero3-shards/"),
        "--max-shard-size",
        "200B",
      );
      const file = join(scratch, "specs.json");
      writeFileSync(file, JSON.stringify(specs));
      const checked = JSON.parse(runPython(torch.python, "check_convert_sharded.py", [file])) as Report[];
      for (const [i, s] of specs.entries()) reports.set(s.label, checked[i] as Report);
    }, 600_000);

    it("checked every sample, both ways", () => {
      expect(samples.length).toBeGreaterThanOrEqual(15);
      expect(reports.size + refusedDefault.size).toBe(samples.length * 2 + 2);
      expect(Object.fromEntries(refusedDefault)).toEqual({
        "dcp/accelerate/checkpoints/checkpoint_0/optimizer_0 (default)": "convert-refused",
      });
    });

    for (const { name } of samples) {
      for (const label of [`${name} --all`, `${name} (default)`]) {
        it(label, () => {
          if (refusedDefault.has(label)) return;
          const report = reports.get(label) as Report;
          const spec = specs.find((s) => s.label === label) as Spec;
          expect(report.error).toBeUndefined();
          if (report.skipped !== undefined) {
            // Only where torch's own reader cannot read the save (its .truth.json hashes are checked without Python).
            expect(spec.mustConsolidate, report.skipped).toBe(false);
            return;
          }
          expect(report.written.length).toBeGreaterThan(0);
          expect(report.unequal).toEqual([]);
          expect(report.aliasesUnequal).toEqual([]);
          expect(report.format).toBe("pt");
          // Everything torch restores, tensors inside bytes items too (named as inspect lists them).
          if (label.endsWith("--all")) {
            expect(report.notWritten).toEqual([]);
            for (const inside of insideBytesItems.get(spec.source) ?? [])
              expect(report.written).toContain(inside);
          }
        });
      }
    }

    it("a tiny Llama from pytorch_model.bin shards: from_pretrained on ckpt's shards gives the same logits", () => {
      const report = reports.get("hf/bin_shards -> shards") as Report;
      expect(report.error).toBeUndefined();
      expect(report.unequal).toEqual([]);
      expect(report.notWritten).toEqual([]);
      expect(report.logitsEqual).toBe(true);
    });

    it("ZeRO-3 fp16 into shards: the fp32 weights, tied name included", () => {
      const report = reports.get("deepspeed/zero3_fp16 -> shards") as Report;
      expect(report.error).toBeUndefined();
      expect(report.unequal).toEqual([]);
      expect(report.aliasesUnequal).toEqual([]);
      expect(report.notWritten).toEqual([]);
    });
  },
);
