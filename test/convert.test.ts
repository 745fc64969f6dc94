import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findTensors, formatKeyPath } from "../src/inspect/walk.js";
import { hasTensors, type TensorCheckpoint } from "../src/reader/checkpoint.js";
import { openCheckpoint } from "../src/reader/open.js";
import { dictGet, isBoxed } from "../src/reader/pickle/value.js";
import { tensorBytes } from "../src/reader/tensorData.js";
import { pythonJsonDumps } from "../src/repair/convert/pyJson.js";
import { parseShardSize, planShards } from "../src/repair/convert/shards.js";
import { writeBigEndianCopy } from "./helpers/bigEndian.js";
import { ckpt } from "./helpers/cli.js";
import { findTruths, SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `ckpt convert` without Python: what it writes is read back by ckpt's own readers and compared with the
 * source's bytes tensor by tensor; the file layout rules (shards, index, aliases, refusals, never over an
 * input) are checked on the bundled samples. The torch suite proves the same files load in the real libraries.
 */
const scratch = mkdtempSync(join(tmpdir(), "ckpt-convert-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const sample = (name: string) => join(SAMPLES_DIR, "torch2", name);
const out = (name: string) => join(scratch, name);
const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function tensorDigests(path: string): Map<string, { dtype: string; shape: readonly number[]; sha: string }> {
  const checkpoint = openCheckpoint(path);
  try {
    if (!hasTensors(checkpoint)) throw new Error(`${path} holds no tensors`);
    const digests = new Map<string, { dtype: string; shape: readonly number[]; sha: string }>();
    for (const { path: at, tensor } of findTensors(checkpoint.root).tensors) {
      const hash = createHash("sha256");
      for (const chunk of tensorBytes(checkpoint, tensor)) hash.update(chunk);
      const name = at.filter((s) => !["_modules", "_parameters", "_buffers"].includes(String(s))).join(".");
      digests.set(name, { dtype: tensor.dtype, shape: tensor.shape, sha: hash.digest("hex") });
    }
    return digests;
  } finally {
    checkpoint.source.close();
  }
}

async function convert(...args: string[]) {
  const run = await ckpt("convert", ...args, "--json");
  return { ...run, json: JSON.parse(run.out) };
}

describe("ckpt convert writes what it read", () => {
  const convertible = findTruths<{ format: string; tensors?: unknown[] }>().filter(
    ({ path, truth }) =>
      path.includes("/torch2/") && truth.format !== "pointer" && (truth.tensors?.length ?? 0) > 0,
  );

  for (const { path } of convertible) {
    const name = path.slice(path.lastIndexOf("/") + 1);
    it(`${name}: every written tensor has the source's dtype, shape and bytes`, async () => {
      const target = out(`${name}.safetensors`);
      const run = await convert(path, "-o", target, "--all");
      if (run.code !== 0) {
        // Refusals name the tensor and write nothing.
        expect(run.json.code).toBe("convert-refused");
        expect(run.json.message).toMatch(/tensor "/);
        expect(existsSync(target)).toBe(false);
        return;
      }
      const source = tensorDigests(path);
      const written = tensorDigests(target);
      const aliases = new Map<string, string>(
        run.json.aliases.map((a: { name: string; keptAs: string }) => [a.name, a.keptAs]),
      );
      expect(written.size + aliases.size).toBe(source.size);
      for (const [tensorName, digest] of source) {
        expect(written.get(aliases.get(tensorName) ?? tensorName), tensorName).toEqual(digest);
      }
    });
  }

  it("safetensors -> pth -> safetensors gives back the same bytes", async () => {
    const first = out("rt1.safetensors");
    expect((await convert(sample("model_only.pth"), "-o", first)).code).toBe(0);
    expect((await convert(first, "-o", out("rt.pth"))).code).toBe(0);
    expect((await convert(out("rt.pth"), "-o", out("rt2.safetensors"))).code).toBe(0);
    expect(sha(readFileSync(out("rt2.safetensors")))).toBe(sha(readFileSync(first)));
  });

  it("a big-endian file is byte-swapped to little-endian elements", async () => {
    const big = out("big.pth");
    writeBigEndianCopy(sample("dtypes.pt"), big);
    const run = await convert(big, "-o", out("big.pth.out.pth"), "--all");
    expect(run.code, run.out).toBe(0);
    const source = tensorDigests(sample("dtypes.pt"));
    const written = tensorDigests(out("big.pth.out.pth"));
    for (const [name, digest] of source) expect(written.get(name), name).toEqual(digest);
  });
});

describe("what goes in", () => {
  it("by default the model part, keyed as load_state_dict expects, with the rest named as left out", async () => {
    const run = await convert(sample("training_checkpoint.pth"), "-o", out("default.safetensors"));
    expect(run.code).toBe(0);
    expect(run.json.selected).toBe("model");
    expect(run.json.leftOut.map((p: { part: string }) => p.part)).toContain("optimizer");
    const names = [...tensorDigests(out("default.safetensors")).keys()];
    expect(names.every((n) => !n.startsWith("model.") && !n.startsWith("optimizer"))).toBe(true);
  });

  it("a pickled whole module gives state-dict keys", async () => {
    expect((await convert(sample("whole_module.pt"), "-o", out("whole.safetensors"))).code).toBe(0);
    const names = [...tensorDigests(out("whole.safetensors")).keys()];
    expect(names.length).toBeGreaterThan(0);
    expect(names.some((n) => /_modules|_parameters|_buffers/.test(n))).toBe(false);
  });

  it("--select, --strip-prefix, --add-prefix and --drop", async () => {
    const optimizer = await convert(
      sample("training_checkpoint.pth"),
      "-o",
      out("opt.safetensors"),
      "--select",
      "optimizer",
    );
    expect(optimizer.code).toBe(0);
    expect([...tensorDigests(out("opt.safetensors")).keys()].every((n) => n.startsWith("state."))).toBe(true);

    const base = [...tensorDigests(out("default.safetensors")).keys()];
    const renamed = await convert(
      sample("training_checkpoint.pth"),
      "-o",
      out("renamed.safetensors"),
      "--add-prefix",
      "module.",
      "--drop",
      `module.${base[0]}`,
    );
    expect(renamed.code).toBe(0);
    const names = [...tensorDigests(out("renamed.safetensors")).keys()].sort();
    expect(names).toEqual(
      base
        .slice(1)
        .map((n) => `module.${n}`)
        .sort(),
    );
    const stripped = await convert(
      out("renamed.safetensors"),
      "-o",
      out("stripped.safetensors"),
      "--strip-prefix",
      "module.",
    );
    expect([...tensorDigests(out("stripped.safetensors")).keys()].sort()).toEqual(base.slice(1).sort());
    expect(stripped.code).toBe(0);
  });

  it("--metadata carries scalars as strings, and refuses what is not one", async () => {
    const run = await convert(
      sample("iteration_amp.pth"),
      "-o",
      out("meta.safetensors"),
      "--metadata",
      "iteration",
    );
    expect(run.code).toBe(0);
    const checkpoint = openCheckpoint(sample("iteration_amp.pth")) as TensorCheckpoint;
    const iteration = isBoxed(checkpoint.root, "dict") ? dictGet(checkpoint.root, "iteration") : undefined;
    checkpoint.source.close();
    expect(run.json.metadata).toEqual({ format: "pt", iteration: String(iteration) });
    const written = openCheckpoint(out("meta.safetensors"));
    expect(written.format === "safetensors" && Object.fromEntries(written.header.metadata ?? [])).toEqual({
      format: "pt",
      iteration: String(iteration),
    });
    written.source.close();
    const refused = await convert(
      sample("iteration_amp.pth"),
      "-o",
      out("meta2.safetensors"),
      "--metadata",
      "optimizer",
    );
    expect(refused.json.code).toBe("convert-refused");
    const toTorch = await convert(
      sample("iteration_amp.pth"),
      "-o",
      out("meta.pth"),
      "--metadata",
      "iteration",
    );
    expect(toTorch.json.code).toBe("convert-refused");
  });
});

describe("shared bytes", () => {
  it("tied tensors are written once and listed as aliases; views become their own elements", async () => {
    const run = await convert(sample("views.pt"), "-o", out("views.safetensors"), "--all");
    expect(run.code).toBe(0);
    expect(run.json.aliases.length).toBeGreaterThan(0);
    const written = openCheckpoint(out("views.safetensors"));
    if (written.format !== "safetensors") throw new Error("not safetensors");
    for (const { name, keptAs } of run.json.aliases) {
      expect(written.header.metadata?.get(name)).toBe(keptAs);
      expect(written.header.tensors.some((t) => t.name === name)).toBe(false);
    }
    written.source.close();
    expect(run.json.views.tensors).toBeGreaterThan(0);
    expect(run.json.views.savedBytes).toBeGreaterThan(0);
  });

  it("in a torch file, aliases share one storage record as tied weights do", async () => {
    const run = await convert(sample("views.pt"), "-o", out("views.pth"), "--all");
    expect(run.code).toBe(0);
    const written = openCheckpoint(out("views.pth"));
    if (!hasTensors(written)) throw new Error("no tensors");
    const keys = new Map(
      findTensors(written.root).tensors.map((t) => [formatKeyPath(t.path), t.tensor.storage?.key]),
    );
    for (const { name, keptAs } of run.json.aliases) expect(keys.get(name)).toBe(keys.get(keptAs));
    written.source.close();
  });
});

describe("refusals write nothing", () => {
  for (const [file, reason] of [
    ["sparse.pt", /sparse_coo/],
    ["quantized.pt", /quantized/],
    ["dtypes.pt", /complex/],
  ] as const) {
    it(`${file}: ${reason.source}`, async () => {
      const directory = join(scratch, `refused-${file}`);
      mkdirSync(directory);
      const run = await convert(sample(file), "-o", join(directory, "x.safetensors"), "--all");
      expect(run.code).toBe(2);
      expect(run.json.code).toBe("convert-refused");
      expect(run.json.message).toMatch(reason);
      expect(run.json.next).toMatch(/--drop/);
      expect(readdirSync(directory)).toEqual([]);
    });
  }

  it("never writes over its input, by name or through a symlink", async () => {
    const copy = out("input.safetensors");
    writeFileSync(copy, readFileSync(sample("model.safetensors")));
    const before = sha(readFileSync(copy));
    expect((await convert(copy, "-o", copy)).json.code).toBe("output-is-input");
    symlinkSync(copy, out("link.safetensors"));
    expect((await convert(copy, "-o", out("link.safetensors"))).json.code).toBe("output-is-input");
    expect(sha(readFileSync(copy))).toBe(before);
  });

  it("says what it cannot tell: no -o, an unknown extension, a pointer file", async () => {
    expect((await convert(sample("model_only.pth"))).json.code).toBe("output-required");
    expect((await convert(sample("model_only.pth"), "-o", out("x.onnx"))).json.message).toMatch(
      /\.safetensors/,
    );
    const pointer = await convert(sample("last_checkpoint"), "-o", out("p.safetensors"));
    expect(pointer.json.code).toBe("convert-refused");
    expect(pointer.json.message).toMatch(/pointer/);
  });
});

describe("shards", () => {
  it("splits as huggingface_hub does and writes the index transformers reads", async () => {
    const directory = join(scratch, "shards/");
    const run = await convert(sample("training_checkpoint.pth"), "-o", directory, "--max-shard-size", "300B");
    expect(run.code, run.out).toBe(0);
    const files = readdirSync(directory).sort();
    const shards = files.filter((f) => f.endsWith(".safetensors"));
    expect(shards.length).toBeGreaterThan(1);
    const digits = (n: number) => String(n).padStart(5, "0");
    expect(shards).toEqual(
      shards.map((_, i) => `model-${digits(i + 1)}-of-${digits(shards.length)}.safetensors`),
    );
    const indexText = readFileSync(join(directory, "model.safetensors.index.json"), "utf8");
    const index = JSON.parse(indexText);
    expect(indexText.endsWith("}\n")).toBe(true);
    expect(indexText).toBe(`${pythonJsonDumps(index)}\n`);
    const names = [...tensorDigests(out("default.safetensors")).keys()];
    expect(Object.keys(index.weight_map).sort()).toEqual([...names].sort());
    let total = 0;
    for (const shard of shards) {
      const digests = tensorDigests(join(directory, shard));
      for (const name of digests.keys()) expect(index.weight_map[name]).toBe(shard);
      const file = openCheckpoint(join(directory, shard));
      if (file.format === "safetensors")
        total += file.header.tensors.reduce((n, t) => n + t.end - t.begin, 0);
      file.source.close();
    }
    expect(index.metadata.total_size).toBe(total);
  });

  it("one shard is model.safetensors with no index", async () => {
    const directory = join(scratch, "one/");
    expect((await convert(sample("model_only.pth"), "-o", directory)).code).toBe(0);
    expect(readdirSync(directory)).toEqual(["model.safetensors"]);
  });

  it("refuses to leave an earlier save's shards beside new ones", async () => {
    const directory = join(scratch, "stale/");
    mkdirSync(directory);
    writeFileSync(join(directory, "model-00001-of-00009.safetensors"), "old");
    const run = await convert(sample("model_only.pth"), "-o", directory);
    expect(run.json.code).toBe("stale-shards");
    expect(readdirSync(directory)).toEqual(["model-00001-of-00009.safetensors"]);
  });

  it("the split rule: a tensor over the limit alone, otherwise fill until the next would not fit", () => {
    // As huggingface_hub does it, the oversized tensor's shard is listed at once, before the open one closes.
    const plan = planShards([5, 3, 12, 4, 4, 1], (n) => n, 8);
    expect(plan.files.map((f) => f.tensors)).toEqual([[12], [5, 3], [4, 4], [1]]);
    expect(plan.totalSize).toBe(29);
    expect(planShards([1, 2], (n) => n, 8).files).toEqual([{ name: "model.safetensors", tensors: [1, 2] }]);
  });

  it("sizes are read as the Hub reads them", () => {
    expect(parseShardSize("5GB")).toBe(5_000_000_000);
    expect(parseShardSize("1.5MB")).toBe(1_500_000);
    expect(parseShardSize("2GiB")).toBe(2 * 2 ** 30);
    expect(parseShardSize("100")).toBe(100);
    expect(() => parseShardSize("five")).toThrow(/--max-shard-size/);
  });
});

describe("Python's json.dumps(indent=2, sort_keys=True)", () => {
  it("sorts keys by code point, escapes non-ASCII and indents by two", () => {
    expect(pythonJsonDumps({ b: 1, a: { é: "ü", z: [] }, "10": true })).toBe(
      '{\n  "10": true,\n  "a": {\n    "z": [],\n    "\\u00e9": "\\u00fc"\n  },\n  "b": 1\n}',
    );
  });
});
