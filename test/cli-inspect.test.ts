import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { stateDictPickle } from "./helpers/pickleWriter.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** `ckpt inspect` as a user meets it: exit codes, one-line errors, JSON contracts, options. */

const dir = mkdtempSync(join(tmpdir(), "ckpt-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sample = (name: string) => join(SAMPLES_DIR, name);

function writeFile(name: string, bytes: Uint8Array | string): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A torch-style zip holding the given records (written with ckpt's own torch-compatible writer). */
function writeZip(name: string, records: Array<[string, Uint8Array]>): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const writer = new TorchZipWriter(fd, name.replace(/\.[^.]*$/, ""));
  for (const [record, bytes] of records) writer.addRecord(record, bytes);
  writer.addRecord("version", new TextEncoder().encode("3\n")); // as torch.save writes it
  writer.finish();
  closeSync(fd);
  return path;
}

function float32s(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

describe("unusable input: exit 2, one line naming file, problem and next step", () => {
  const cases: Array<[string, () => string, string]> = [
    ["a missing file", () => join(dir, "nope.pth"), "file-not-found"],
    ["an empty file", () => writeFile("empty.pth", ""), "empty-file"],
    [
      "a YAML config",
      () => writeFile("config.yaml", "MODEL:\n  WEIGHTS: x\nSOLVER:\n  MAX_ITER: 10\n"),
      "not-a-checkpoint",
    ],
    [
      "a zip cut in half (interrupted save)",
      () => {
        const bytes = readFileSync(sample("torch2/training_checkpoint.pth"));
        return writeFile("half.pth", bytes.subarray(0, bytes.length >> 1));
      },
      "zip-truncated",
    ],
    [
      "a data.pkl that is not a pickle",
      () => writeZip("badpickle.pt", [["data.pkl", Uint8Array.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0xff])]]),
      "pickle-unknown-opcode",
    ],
    [
      "a data.pkl cut short",
      () =>
        writeZip("shortpickle.pt", [
          ["data.pkl", Uint8Array.from([0x80, 0x02, 0x7d, 0x58, 0x10, 0, 0, 0, 0x61])],
        ]),
      "pickle-truncated",
    ],
    [
      "a zip that torch.save did not write",
      () => writeZip("other.zip", [["readme.txt", new TextEncoder().encode("hello")]]),
      "not-a-checkpoint",
    ],
    [
      "the tar format of torch <= 0.1.9",
      () => {
        const header = Buffer.alloc(1024);
        header.write("sys_info", 0);
        header.write("ustar", 257);
        return writeFile("ancient.pt", header);
      },
      "tar-unsupported",
    ],
    [
      "a truncated legacy-format file",
      () => {
        const bytes = readFileSync(sample("torch2/legacy.pt"));
        return writeFile("legacy-cut.pt", bytes.subarray(0, bytes.length - 40));
      },
      "legacy-truncated",
    ],
  ];

  for (const [what, make, code] of cases) {
    it(what, async () => {
      const file = make();
      const text = await ckpt("inspect", file);
      expect(text.code).toBe(2);
      expect(text.out).toBe("");
      const lines = text.err.trimEnd().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toContain(`[${code}]`);
      expect(lines[0]).toMatch(/Next: \S/);
      expect(text.err).not.toMatch(/\n\s+at /); // no stack trace

      const json = await ckpt("inspect", file, "--json");
      expect(json.code).toBe(2);
      const parsed = JSON.parse(json.out);
      expect(parsed).toMatchObject({ schema: "ckpt.error/1", file, code });
      expect(typeof parsed.message).toBe("string");
    });
  }

  it("a usage error exits 2", async () => {
    expect((await ckpt("inspect", sample("torch2/state_dict.pt"), "--no-such-flag")).code).toBe(2);
    expect((await ckpt("inspect")).code).toBe(2);
  });
});

describe("pointer files are reported as pointers, never as broken checkpoints", () => {
  it("names the target and says how to use it", async () => {
    const { code, out } = await ckpt("inspect", sample("torch2/last_checkpoint"), "--json");
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.format).toBe("pointer");
    expect(report.pointer).toMatchObject({ content: "training_checkpoint.pth", targetExists: true });
    expect(report.findings).toEqual([expect.objectContaining({ code: "pointer-file", severity: "info" })]);
    expect(report.findings[0].message).toMatch(/run directory/);
  });

  it("a pointer whose target is gone is an error finding (exit 1)", async () => {
    const run = join(dir, "run-dangling");
    mkdirSync(run);
    const pointer = join(run, "last_checkpoint");
    writeFileSync(pointer, "model_0004999.pth");
    const { code, out } = await ckpt("inspect", pointer);
    expect(code).toBe(1);
    expect(out).toContain("does not exist");
  });
});

describe("options", () => {
  it("--json follows the ckpt.inspect/1 contract", async () => {
    const { code, out } = await ckpt("inspect", sample("torch1/training_checkpoint.pth"), "--json");
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(Object.keys(report)).toEqual(
      expect.arrayContaining([
        "schema",
        "file",
        "sizeBytes",
        "format",
        "tensors",
        "summary",
        "tree",
        "findings",
      ]),
    );
    expect(report.schema).toBe("ckpt.inspect/1");
    expect(report.format).toBe("torch-zip");
    const first = report.tensors[0];
    expect(first).toMatchObject({
      path: ["model", "conv.weight"],
      dtype: "float32",
      offset: 0,
      requiresGrad: false,
    });
    expect(first.storage).toEqual({ key: "0", device: "cpu", sizeBytes: 144 });
    expect(first.sha256).toBeUndefined();
    expect(report.summary.tensorCount).toBe(report.tensors.length);
  });

  it("--filter selects by dotted key path, --hash adds sha256", async () => {
    const { out } = await ckpt(
      "inspect",
      sample("torch2/training_checkpoint.pth"),
      "--json",
      "--filter",
      "model.*.weight",
      "--hash",
    );
    const report = JSON.parse(out);
    expect(report.tensors.map((t: { path: string[] }) => t.path.join("."))).toEqual([
      "model.conv.weight",
      "model.bn.weight",
      "model.fc.weight",
    ]);
    for (const t of report.tensors) expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.summary.tensorCount).toBe(27); // the summary always covers the whole file
  });

  it("--stats gives min, max, mean of finite values and counts NaN and Inf", async () => {
    const file = writeZip("stats.pt", [
      [
        "data.pkl",
        stateDictPickle([
          { name: "w", storageClass: "FloatStorage", key: "0", numel: 6, shape: [6], stride: [1] },
        ]),
      ],
      ["data/0", float32s([1, 2, Number.NaN, Number.POSITIVE_INFINITY, -3, 0.5])],
    ]);
    const { out } = await ckpt("inspect", file, "--json", "--stats");
    const [tensor] = JSON.parse(out).tensors;
    expect(tensor.stats).toEqual({ min: -3, max: 2, mean: 0.125, nan: 1, inf: 1 });
  });

  it("reports the device a tensor was saved from, without needing that device", async () => {
    const file = writeZip("gpu.pt", [
      [
        "data.pkl",
        stateDictPickle([
          {
            name: "w",
            storageClass: "HalfStorage",
            key: "0",
            numel: 2,
            shape: [2],
            stride: [1],
            device: "cuda:0",
          },
        ]),
      ],
      ["data/0", Uint8Array.from([0x00, 0x3c, 0x00, 0xc0])], // float16 1.0, -2.0
    ]);
    const { code, out } = await ckpt("inspect", file, "--json", "--stats");
    expect(code).toBe(0);
    const [tensor] = JSON.parse(out).tensors;
    expect(tensor.storage).toEqual({ key: "0", device: "cuda:0", sizeBytes: 4 });
    expect(tensor.stats).toMatchObject({ min: -2, max: 1 });
  });

  it("tables for people: a dtype summary, a tree with a state-dict line, 25 rows unless --all", async () => {
    const { code, out } = await ckpt("inspect", sample("torch2/training_checkpoint.pth"));
    expect(code).toBe(0);
    expect(out).toContain("Format     torch-zip");
    expect(out).toMatch(/model: OrderedDict of 9 tensors, 252 elements, float32\/int64/);
    // "parameters" are the model's: its weights, not BatchNorm statistics, not the optimizer's moments.
    expect(out).toMatch(/^Model +243 parameters \+ 9 buffer elements/m);
    expect(out).toMatch(/^Optimizer +state 1\.92 KiB in 18 tensors, 1\.9x the weights \(optimizer\)/m);
    expect(out).toContain("iteration: int 59");
    expect(out).toContain("first 25 of 27");
    const all = await ckpt("inspect", sample("torch2/training_checkpoint.pth"), "--all");
    expect(all.out).toContain("Tensors (27)");
    expect(all.out).toContain("optimizer.state[5].exp_avg_sq");
  });

  it("--fail-on info turns informational findings into exit 1", async () => {
    const file = sample("torch2/whole_module.pt");
    expect((await ckpt("inspect", file)).code).toBe(0);
    expect((await ckpt("inspect", file, "--fail-on", "info")).code).toBe(1);
  });

  it("a directory: every checkpoint in it, other files skipped", async () => {
    const { code, out } = await ckpt("inspect", join(SAMPLES_DIR, "torch2"), "--json");
    expect(code).toBe(0);
    const reports = JSON.parse(out) as Array<{ file: string; format: string }>;
    expect(reports.some((r) => r.file.endsWith(".json"))).toBe(false);
    expect(new Set(reports.map((r) => r.format))).toEqual(
      new Set(["torch-zip", "torch-legacy", "torchscript", "safetensors", "pointer"]),
    );
  });

  it("a directory of run directories points to audit and resume-plan", async () => {
    const outputs = join(SAMPLES_DIR, "outputs");
    const { code, err } = await ckpt("inspect", outputs);
    expect(code).toBe(2);
    expect(err).toContain("holds no checkpoint file");
    expect(err).toContain(`ckpt audit ${outputs}`);
  });
});

describe("the installed binary", () => {
  it("runs from bin/ckpt.js with real exit codes and no stack traces", () => {
    const ok = ckptBinary(["inspect", sample("torch1/state_dict.pt")]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain("state_dict.pt");
    const bad = ckptBinary(["inspect", join(dir, "missing.pt")]);
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });
});
