import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { InspectReport } from "../src/inspect/report.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { ckpt } from "./helpers/cli.js";
import { assemble, type Op } from "./helpers/pickleWriter.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { runPython, torchRequirement } from "./helpers/torch.js";

/**
 * `ckpt repair --compact`: every storage cut to the bytes its tensors reach. Without Python, ckpt itself says
 * the copy holds the same tensors (`ckpt diff --values` exits 0) in only the bytes they reach; with real
 * torch, the copies load (weights_only and mmap too), every tensor is bit-identical with the same stride (or,
 * for a view with gaps that ckpt gathered, the stride `.clone()` gives it), tied tensors still share memory,
 * and the storage bytes are what torch writes after `.clone()`.
 */
const scratch = mkdtempSync(join(tmpdir(), "ckpt-compact-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const SIZE_DIR = join(SAMPLES_DIR, "size");
const sizeSamples = existsSync(SIZE_DIR)
  ? readdirSync(SIZE_DIR).filter((name) => name.endsWith(".pt") && !name.endsWith(".clone.pt"))
  : [];
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

interface CloneTruth {
  clone: { storageBytes: number };
  storages: Array<{ names: string[] }>;
}
const cloneTruth = (name: string) =>
  JSON.parse(readFileSync(join(SIZE_DIR, name.replace(/\.pt$/, ".truth.json")), "utf8")) as CloneTruth;

async function compact(input: string, output: string): Promise<string> {
  const before = sha(input);
  const run = await ckpt("repair", input, "-o", output, "--compact");
  expect(run.err).toBe("");
  expect(run.code).toBe(0);
  expect(sha(input)).toBe(before);
  return run.out;
}

async function sizeOf(file: string): Promise<NonNullable<InspectReport["size"]>> {
  const report = JSON.parse((await ckpt("inspect", file, "--json")).out) as InspectReport;
  if (!report.size) throw new Error(`no size for ${file}`);
  return report.size;
}

describe("repair --compact, checked by ckpt itself", () => {
  it("has the samples", () => expect(sizeSamples.length).toBeGreaterThanOrEqual(9));

  for (const name of sizeSamples) {
    it(`${name}: same tensors (diff --values exits 0), only the bytes they reach`, async () => {
      const input = join(SIZE_DIR, name);
      const output = join(scratch, `own-${name}`);
      await compact(input, output);
      const before = await sizeOf(input);
      const after = await sizeOf(output);
      // A view with gaps is gathered as clone() would (its elements only); other storages keep what they reach.
      expect(after.storageBytes).toBe(name === "column_slice.pt" ? before.cloneBytes : before.usedBytes);
      expect(after.usedBytes).toBe(after.storageBytes);
      expect(after.views).toEqual([]);
      // Tensors that overlap keep sharing a storage (tied weights); disjoint pieces of one become their own.
      expect(after.shared.length).toBeLessThanOrEqual(before.shared.length);
      if (name === "tied.pt") expect(after.shared.length).toBe(1);
      const diff = await ckpt("diff", input, output, "--values");
      expect(diff.out).toMatch(/^equal: /m);
      expect(diff.code).toBe(0);
    });
  }

  it("gathers a view with gaps (4 columns of a 512 x 64 tensor) as clone() does: contiguous, offset 0", async () => {
    const input = join(SIZE_DIR, "column_slice.pt");
    const output = join(scratch, "gathered.pt");
    await compact(input, output);
    const tensorsOf = async (file: string) =>
      (JSON.parse((await ckpt("inspect", file, "--json", "--hash")).out) as InspectReport).tensors;
    const [before] = await tensorsOf(input);
    const [after] = await tensorsOf(output);
    expect(before?.stride).toEqual([64, 1]);
    expect(after?.stride).toEqual([4, 1]);
    expect(after?.offset).toBe(0);
    expect(after?.storage?.sizeBytes).toBe(512 * 4 * 4);
    expect(after?.shape).toEqual(before?.shape);
    // The sha256 of the elements in row-major order: the same values.
    expect(after?.sha256).toBeDefined();
    expect(after?.sha256).toBe(before?.sha256);
  });

  it("a gathered view's stride tuple that the pickle reads again elsewhere keeps its old value there", async () => {
    // cols: 2 of 4 columns (stride (4, 1), memoised as entry 1); rows: a whole 2 x 4 tensor whose stride
    // is that memo entry read again. Gathering cols changes its tuple; rows must still read (4, 1).
    const g = (module: string, name: string): Op => ({ op: "global", module, name });
    const int = (value: number): Op => ({ op: "int", value });
    const tensor = (key: string, numel: number, shape: number[], stride: Op[]): Op[] => [
      g("torch._utils", "_rebuild_tensor_v2"),
      { op: "mark" },
      { op: "mark" },
      { op: "str", value: "storage" },
      g("torch", "FloatStorage"),
      { op: "str", value: key },
      { op: "str", value: "cpu" },
      int(numel),
      { op: "tuple" },
      { op: "binpersid" },
      int(0),
      { op: "mark" },
      ...shape.map(int),
      { op: "tuple" },
      ...stride,
      { op: "bool", value: false },
      g("collections", "OrderedDict"),
      { op: "emptyTuple" },
      { op: "reduce" },
      { op: "tuple" },
      { op: "reduce" },
    ];
    const pickle = assemble([
      { op: "emptyDict" },
      { op: "mark" },
      { op: "str", value: "cols" },
      ...tensor("0", 16, [4, 2], [{ op: "mark" }, int(4), int(1), { op: "tuple" }, { op: "put", index: 1 }]),
      { op: "str", value: "rows" },
      ...tensor("1", 8, [2, 4], [{ op: "get", index: 1 }]),
      { op: "setitems" },
    ]);
    const floats = (from: number, n: number) =>
      new Uint8Array(Float32Array.from({ length: n }, (_, k) => from + k).buffer);
    const input = join(scratch, "memo-stride.pt");
    const fd = openSync(input, "w");
    const writer = new TorchZipWriter(fd, "memo-stride");
    writer.addRecord("data.pkl", pickle);
    writer.addRecord("data/0", floats(0, 16));
    writer.addRecord("data/1", floats(100, 8));
    writer.addRecord("version", new TextEncoder().encode("3\n"));
    writer.finish();
    closeSync(fd);
    const output = join(scratch, "memo-stride.compact.pt");
    await compact(input, output);
    const tensors = async (file: string) =>
      new Map(
        (JSON.parse((await ckpt("inspect", file, "--json", "--hash")).out) as InspectReport).tensors.map(
          (t) => [t.path.join("."), t],
        ),
      );
    const before = await tensors(input);
    const after = await tensors(output);
    expect(before.get("cols")?.stride).toEqual([4, 1]);
    expect(after.get("cols")?.stride).toEqual([2, 1]);
    expect(after.get("cols")?.storage?.sizeBytes).toBe(32);
    expect(after.get("rows")?.stride).toEqual([4, 1]);
    for (const name of ["cols", "rows"]) {
      expect(after.get(name)?.sha256, name).toBeDefined();
      expect(after.get(name)?.sha256, name).toBe(before.get(name)?.sha256);
    }
  });

  it("says what it cut", async () => {
    const out = await compact(join(SIZE_DIR, "slice_of_big.pt"), join(scratch, "said.pt"));
    expect(out).toContain(
      "compact: 1 storage cut to the bytes their tensors reach, 131072 -> 4096 bytes of storage",
    );
  });

  it("combines with other edits", async () => {
    const output = join(scratch, "both.pt");
    const run = await ckpt(
      "repair",
      join(SIZE_DIR, "training_mix.pt"),
      "-o",
      output,
      "--compact",
      "--set-counter",
      "iteration=7",
    );
    expect(run.code).toBe(0);
    const diff = JSON.parse(
      (await ckpt("diff", join(SIZE_DIR, "training_mix.pt"), output, "--values", "--json")).out,
    );
    expect(diff.summary.tensors.changed).toBe(0);
    expect(diff.values.map((v: { name: string }) => v.name)).toEqual(["iteration"]);
  });
});

interface Check {
  loads: boolean;
  error?: string;
  samePaths: boolean;
  unequal: string[];
  sameValues: boolean;
  sharingLost: string[];
  storageBytes: { original: number; compacted: number };
  mmap?: boolean | string;
  weightsOnly: boolean | string | null;
}

/** Whole modules pickle classes defined in the scripts that saved them: torch cannot load them here. */
const WHOLE_MODULE = /whole_|_module\.pt$|torch0[34]_/;

describeWith(torchRequirement("any"), "compacted files in real torch", (pythons) => {
  for (const torch of pythons) {
    it(`torch ${torch.version}: every sample compacted loads with identical tensors`, async () => {
      const dir = join(SAMPLES_DIR, torch.samples);
      const inputs = [
        ...sizeSamples.map((name) => join(SIZE_DIR, name)),
        ...readdirSync(dir)
          .filter((name) => /\.(pt|pth|pth\.tar|ckpt)$/.test(name) && !WHOLE_MODULE.test(name))
          .map((name) => join(dir, name)),
      ];
      const spec: Array<{ original: string; compacted: string }> = [];
      for (const input of inputs) {
        const output = join(scratch, `${torch.samples}-${input.replace(/\W/g, "_")}.pt`);
        const run = await ckpt("repair", input, "-o", output, "--compact");
        // TorchScript archives and legacy files of whole modules are refused, with their code.
        if (run.code === 2) {
          expect(run.err).toMatch(/unsupported-format/);
          continue;
        }
        expect(run.code).toBe(0);
        spec.push({ original: input, compacted: output });
      }
      expect(spec.length).toBeGreaterThanOrEqual(20);
      const checks = JSON.parse(
        runPython(torch.python, "check_compact.py", [JSON.stringify(spec)]),
      ) as Check[];
      checks.forEach((check, i) => {
        const what = spec[i]?.original ?? "";
        expect(check.error, what).toBeUndefined();
        expect(check.loads, what).toBe(true);
        expect(check.samePaths, what).toBe(true);
        expect(check.unequal, what).toEqual([]);
        expect(check.sameValues, what).toBe(true);
        expect(check.sharingLost, what).toEqual([]);
        if (check.mmap !== undefined) expect(check.mmap, what).toBe(true);
        if (check.weightsOnly !== null) expect(check.weightsOnly, what).toBe(true);
        expect(check.storageBytes.compacted, what).toBeLessThanOrEqual(check.storageBytes.original);
      });
      // Against what torch writes after .clone(): the same storage bytes where every tensor has its own
      // storage (a view with gaps is gathered, as clone() gathers it); fewer where tensors share one (tied) or
      // repeat elements (expanded).
      for (const [i, check] of checks.entries()) {
        const input = spec[i]?.original ?? "";
        if (!input.startsWith(SIZE_DIR)) continue;
        const name = input.slice(SIZE_DIR.length + 1);
        const truth = cloneTruth(name);
        if (truth.storages.some((s) => s.names.length > 1) || name === "expanded.pt") {
          expect(check.storageBytes.compacted, name).toBeLessThanOrEqual(truth.clone.storageBytes);
        } else {
          expect(check.storageBytes.compacted, name).toBe(truth.clone.storageBytes);
        }
      }
    });
  }
});
