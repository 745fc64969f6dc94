import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { elementSize } from "../src/reader/torch/dtypes.js";
import { safetensorsCode } from "../src/repair/convert/safetensorsWriter.js";
import { hasTypedStorage } from "../src/repair/convert/stateDictPickle.js";
import { writeBigEndianCopy } from "./helpers/bigEndian.js";
import { ckpt } from "./helpers/cli.js";
import { findTruths } from "./helpers/samples.js";
import { findTorchPythons, runPython, type TorchPython } from "./helpers/torch.js";

/**
 * Proof with the real libraries: every bundled sample converted by ckpt loads with safetensors (and, written
 * as .pth, with torch.load(weights_only=True, mmap=True)), and every tensor is bit-identical to the tensor
 * torch loads from the source under the same name; aliases equal what they alias; where the reference writer
 * is deterministic (one metadata key) the file is byte-identical to what safetensors.torch.save_file writes.
 * Which samples must be refused is derived from their truth files, not listed. One Python process checks
 * every conversion of a torch version.
 */
const pythons = findTorchPythons();
const scratch = mkdtempSync(join(tmpdir(), "ckpt-convert-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface TruthTensor {
  readonly path: Array<string | number>;
  readonly dtype: string;
  readonly layout: string;
  readonly quantization?: unknown;
  readonly storage: unknown;
}
interface Truth {
  readonly format: string;
  readonly tensors?: TruthTensor[];
}

interface Report {
  error?: string;
  missing: string[];
  extra: string[];
  unequal: string[];
  aliasesUnequal: string[];
  metadata: Record<string, string>;
  aliasesShareStorage?: boolean;
  byteIdentical?: boolean;
  sameHeader?: boolean;
  sameData?: boolean;
}

type Target = "safetensors" | "torch";
/** `--all` (every tensor by its dotted path) or the default: the model part, keyed as its loader expects. */
type Mode = "all" | "model";
const MODES: Mode[] = ["all", "model"];

/** Why the truth says a tensor cannot be written into `target`, or undefined. */
function unconvertible(t: TruthTensor, target: Target, torch: TorchPython): string | undefined {
  if (t.layout !== "strided") return "sparse";
  if (t.quantization || t.dtype.startsWith("q")) return "quantized";
  if (!t.storage) return "no data";
  if (target === "safetensors" && safetensorsCode(t.dtype) === undefined) return "dtype";
  // torch 1.x has no _rebuild_tensor_v3: dtypes without a typed storage class cannot be saved for it.
  if (target === "torch" && torch.samples === "torch1" && t.dtype === "complex32") return "dtype";
  return undefined;
}

interface Case {
  readonly sample: string;
  readonly target: Target;
  readonly refused: TruthTensor[];
  readonly run: { code: number; out: string };
  readonly unchanged: boolean;
  /** Written name -> dtype, from ckpt's result. */
  readonly dtypes: Map<string, string>;
  report?: Report;
  /** For a refusal: whether torch confirms that tensor cannot be written exactly. */
  confirmation?: { confirmed: boolean; why: string };
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const samples = findTruths<Truth>().filter(
  ({ truth }) => truth.tensors && truth.tensors.length > 0 && truth.format !== "pointer",
);
const hasModule = (python: string, name: string) => {
  try {
    runPython(python, "has_module.py", [name]);
    return true;
  } catch {
    return false;
  }
};

describe.runIf(pythons.length > 0)("converted files load in the real libraries", () => {
  for (const torch of pythons) {
    const targets: Target[] = hasModule(torch.python, "safetensors") ? ["safetensors", "torch"] : ["torch"];
    const mine = samples.filter(({ path }) => path.includes(`/${torch.samples}/`));
    // torch >= 2.1 loads files a big-endian machine wrote: big-endian copies prove ckpt's byte swap on real torch.
    if (torch.samples === "torch2") {
      for (const original of mine.filter(({ path }) =>
        /\/(dtypes\.pt|training_checkpoint\.pth)$/.test(path),
      )) {
        const path = join(scratch, `big-endian-${basename(original.path)}`);
        writeBigEndianCopy(original.path, path);
        mine.push({ path, truth: original.truth });
      }
    }
    const cases = new Map<string, Case>();
    beforeAll(async () => {
      const specs: unknown[] = [];
      const checked: Case[] = [];
      for (const { path, truth } of mine) {
        for (const target of targets)
          for (const mode of MODES) {
            const output = join(
              scratch,
              `${torch.samples}-${basename(path)}-${mode}.${target === "torch" ? "pth" : "safetensors"}`,
            );
            const before = sha(path);
            const run = await ckpt(
              "convert",
              path,
              "-o",
              output,
              ...(mode === "all" ? ["--all"] : []),
              "--json",
            );
            // Only --all is sure to reach every tensor the truth lists.
            const refused =
              mode === "all" ? (truth.tensors ?? []).filter((t) => unconvertible(t, target, torch)) : [];
            const c: Case = {
              sample: basename(path),
              target,
              refused,
              run,
              unchanged: sha(path) === before,
              dtypes: new Map((truth.tensors ?? []).map((t) => [t.path.map(String).join("."), t.dtype])),
            };
            cases.set(`${c.sample} ${target} ${mode}`, c);
            const out = JSON.parse(run.out);
            if (run.code === 0) specs.push({ source: path, result: out });
            else if (out.code === "convert-refused") {
              const name = /tensor "((?:[^"\\]|\\.)*)"/.exec(out.message)?.[1];
              specs.push({
                source: path,
                refused: name === undefined ? "" : JSON.parse(`"${name}"`),
                target,
              });
            } else continue;
            checked.push(c);
          }
      }
      const file = join(scratch, `specs-${torch.samples}.json`);
      writeFileSync(file, JSON.stringify(specs));
      const reports = JSON.parse(runPython(torch.python, "check_convert.py", [file])) as Report[];
      checked.forEach((c, i) => {
        if (c.run.code === 0) c.report = reports[i] as Report;
        else c.confirmation = reports[i] as unknown as { confirmed: boolean; why: string };
      });
    }, 600_000);

    describe(`torch ${torch.version}`, () => {
      for (const { path } of mine) {
        for (const target of targets)
          for (const mode of MODES) {
            it(`${basename(path)} -> ${target}, ${mode === "all" ? "every tensor" : "the model"}`, () => {
              const c = cases.get(`${basename(path)} ${target} ${mode}`) as Case;
              expect(c.unchanged).toBe(true);
              // The truth's refusals must be refused; any other refusal must be one torch confirms.
              if (c.refused.length > 0) expect(c.run.code, c.run.out).toBe(2);
              if (c.run.code !== 0) {
                expect(JSON.parse(c.run.out).code, c.run.out).toBe("convert-refused");
                expect(c.confirmation?.confirmed, c.confirmation?.why).toBe(true);
                return;
              }
              expect(c.run.code, c.run.out).toBe(0);
              const report = c.report as Report;
              expect(report.error).toBeUndefined();
              // torch swaps a big-endian file's storages by their storage class, and an UntypedStorage
              // (uint16/32/64, complex32: _rebuild_tensor_v3) counts as uint8, so torch leaves those elements
              // byte-reversed (serialization.py load_tensor). ckpt swaps by the tensor's dtype: the values saved.
              const tornByTorch = (name: string) =>
                c.sample.startsWith("big-endian-") &&
                !hasTypedStorage(c.dtypes.get(name) ?? "float32") &&
                elementSize(c.dtypes.get(name) ?? "uint8") > 1;
              report.unequal = report.unequal.filter((name) => !tornByTorch(name));
              expect(report).toMatchObject({ missing: [], extra: [], unequal: [], aliasesUnequal: [] });
              if (target === "torch") expect(report.aliasesShareStorage).toBe(true);
              if (target === "safetensors") {
                expect(report.metadata.format).toBe("pt");
                expect(report.sameHeader).toBe(true);
                expect(report.sameData).toBe(true);
                if (Object.keys(report.metadata).length === 1) expect(report.byteIdentical).toBe(true);
              }
            });
          }
      }
    });
  }
});
