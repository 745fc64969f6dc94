import { createHash } from "node:crypto";
import {
  closeSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import { openCheckpoint } from "../src/reader/open.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { ckpt } from "./helpers/cli.js";
import { stateDictPickle } from "./helpers/pickleWriter.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** `ckpt repair` without torch: what it writes, what it refuses, and that inputs never change. */

const scratch = mkdtempSync(join(tmpdir(), "ckpt-repair-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const sample = (...p: string[]) => join(SAMPLES_DIR, ...p);
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

function inspectFile(file: string) {
  const checkpoint = openCheckpoint(file);
  try {
    return { report: inspectCheckpoint(checkpoint, file, { hash: true }), checkpoint };
  } finally {
    checkpoint.source.close();
  }
}

describe("ckpt repair FILE -o OUT", () => {
  it("adds the counter from the file name; the output is torch-shaped: 64-aligned records, valid CRCs", async () => {
    const input = sample("outputs", "trackron_model_only", "model_0000019.pth");
    const output = join(scratch, "model_0000019.fixed.pth");
    const before = sha(input);
    const { code, out } = await ckpt("repair", input, "-o", output, "--counter-from-filename", "--json");
    expect(code).toBe(0);
    expect(JSON.parse(out).outcomes[0]).toMatchObject({ changed: 1, detail: "added iteration=19" });
    expect(sha(input)).toBe(before);

    const original = inspectFile(input).report;
    const { report, checkpoint } = inspectFile(output);
    expect(report.resume?.counter).toMatchObject({ name: "iteration", value: 19, source: "checkpoint" });
    // The same tensors, bit for bit.
    expect(report.tensors.map((t) => [t.path, t.sha256])).toEqual(
      original.tensors.map((t) => [t.path, t.sha256]),
    );
    if (checkpoint.format !== "torch-zip") throw new Error("expected a torch zip");
    expect(checkpoint.archive.prefix).toBe("model_0000019.fixed");
    const reopened = openCheckpoint(output);
    try {
      if (reopened.format !== "torch-zip") throw new Error("expected a torch zip");
      for (const entry of reopened.archive.entries) {
        expect(reopened.archive.dataOffset(entry) % 64).toBe(0);
        expect((await reopened.archive.verifyCrc(entry)).ok).toBe(true);
      }
    } finally {
      reopened.source.close();
    }
  });

  it("refuses to write over its input: same path, symlink, hard link", async () => {
    const input = join(scratch, "own.pth");
    cpSync(sample("torch2", "model_only.pth"), input);
    const before = sha(input);
    symlinkSync(input, join(scratch, "own-link.pth"));
    linkSync(input, join(scratch, "own-hard.pth"));
    for (const target of [input, join(scratch, "own-link.pth"), join(scratch, "own-hard.pth")]) {
      const { code, err } = await ckpt("repair", input, "-o", target, "--set-counter", "iteration=1");
      expect(code).toBe(2);
      expect(err).toMatch(/\[output-is-input\]. Next: .*never modifies its input/);
    }
    expect(sha(input)).toBe(before);
  });

  it("a failure leaves no partial output and no temp file", async () => {
    const dir = join(scratch, "fail");
    mkdirSync(dir);
    // Renaming onto an existing directory fails after the data is written: the temp file must go.
    mkdirSync(join(dir, "out.pth"));
    const { code } = await ckpt(
      "repair",
      sample("torch2", "model_only.pth"),
      "-o",
      join(dir, "out.pth"),
      "--set-counter",
      "iteration=1",
    );
    expect(code).toBe(2);
    expect(readdirSync(dir)).toEqual(["out.pth"]);
  });

  it("refuses renames that would merge two keys", async () => {
    // A state dict holding both "module.a" and "a": stripping "module." would silently drop one of them.
    const input = join(scratch, "both.pt");
    const fd = openSync(input, "w");
    const writer = new TorchZipWriter(fd, "both");
    const spec = (name: string, key: string) => ({
      name,
      storageClass: "FloatStorage",
      key,
      numel: 1,
      shape: [1],
      stride: [1],
    });
    writer.addRecord("data.pkl", stateDictPickle([spec("module.a", "0"), spec("a", "1")]));
    writer.addRecord("data/0", new Uint8Array(4));
    writer.addRecord("data/1", new Uint8Array(4));
    writer.finish();
    closeSync(fd);
    const { code, err } = await ckpt(
      "repair",
      input,
      "-o",
      join(scratch, "merged.pt"),
      "--strip-prefix",
      "module.",
    );
    expect(code).toBe(2);
    expect(err).toMatch(/two keys "a"/);
    expect(existsSync(join(scratch, "merged.pt"))).toBe(false);
  });

  it("refuses an edit that would change nothing, before writing (exit 2); needs -o and an edit (exit 2)", async () => {
    const input = sample("torch2", "state_dict.pt");
    const noPrefix = await ckpt("repair", input, "-o", join(scratch, "z.pt"), "--strip-prefix", "module.");
    expect(noPrefix.code).toBe(2);
    expect(noPrefix.err).toContain("[repair-no-change]");
    expect(existsSync(join(scratch, "z.pt"))).toBe(false);
    const noKey = await ckpt(
      "repair",
      sample("torch2", "training_checkpoint.pth"),
      "-o",
      join(scratch, "y.pt"),
      "--drop",
      "ema",
    );
    expect(noKey.code).toBe(2);
    expect(noKey.err).toMatch(/no top-level key ema.*nothing was written/);
    expect(existsSync(join(scratch, "y.pt"))).toBe(false);
    expect((await ckpt("repair", input, "--set-counter", "iteration=1")).code).toBe(2);
    expect((await ckpt("repair", input, "-o", join(scratch, "w.pt"))).code).toBe(2);
    expect(
      (await ckpt("repair", input, "-o", join(scratch, "v.pt"), "--set-counter", "iteration")).code,
    ).toBe(2);
  });
});

describe("ckpt repair RUN_DIR", () => {
  it("--dry-run says what it would do and writes nothing", async () => {
    const run = join(scratch, "dry");
    cpSync(sample("outputs", "trackron_model_only"), run, { recursive: true });
    const before = readdirSync(run).sort();
    const { code, out } = await ckpt("repair", run, "--dry-run");
    expect(code).toBe(0);
    expect(out).toContain("would write-checkpoint: model_0000019.resumable.pth");
    expect(out).toContain("cannot be recreated");
    expect(out).toContain("recomputed from the counter");
    expect(readdirSync(run).sort()).toEqual(before);
  });

  it("writes the resumable copy, moves the pointer with a backup, leaves every input untouched", async () => {
    const run = join(scratch, "wet");
    cpSync(sample("outputs", "trackron_model_only"), run, { recursive: true });
    const hashes = Object.fromEntries(readdirSync(run).map((n) => [n, sha(join(run, n))]));
    const { code } = await ckpt("repair", run);
    expect(code).toBe(0);
    expect(readFileSync(join(run, "last_checkpoint"), "utf8")).toBe("model_0000019.resumable.pth");
    for (const [name, hash] of Object.entries(hashes))
      if (name !== "last_checkpoint") expect(sha(join(run, name)), name).toBe(hash);
    expect(readdirSync(run).some((n) => n.startsWith("last_checkpoint.") && n.endsWith(".bak"))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(run, "resume-manifest.json"), "utf8"));
    expect(manifest).toMatchObject({
      checkpoint: { file: "model_0000019.resumable.pth" },
      resumeAt: 20,
      counter: { value: 19, source: "checkpoint" },
    });
    const plan = JSON.parse((await ckpt("resume-plan", run, "--json")).out);
    expect(plan.framework).toMatchObject({
      outcome: "resumes",
      file: "model_0000019.resumable.pth",
      startsAt: 20,
    });
    expect(existsSync(join(run, "model_0000019.pth"))).toBe(true);
  });
});
