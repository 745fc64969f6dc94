import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type InspectReport, inspectCheckpoint } from "../src/inspect/report.js";
import { localFiles } from "../src/inspect/runs/node.js";
import { openCheckpoint } from "../src/reader/open.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { assemble, type Op, stateDictPickle } from "./helpers/pickleWriter.js";
import { findTruths, SAMPLES_DIR } from "./helpers/samples.js";

/** Per-file conventions and resume verdicts, on files written by the frameworks (or their logic). */

function inspectFile(file: string): InspectReport {
  const checkpoint = openCheckpoint(file);
  try {
    // As the CLI does: companion files (ZeRO optimizer shards, AllenNLP pairs) are looked for beside it.
    return inspectCheckpoint(checkpoint, file, { neighbours: { fs: localFiles(), path: resolve(file) } });
  } finally {
    checkpoint.source.close();
  }
}

const run = (...parts: string[]) => join(SAMPLES_DIR, "outputs", ...parts);

describe("convention and verdict of each framework's files", () => {
  const cases: Array<[string, string, string, number | null]> = [
    [run("fvcore_healthy", "model_0000019.pth"), "fvcore", "resumable", 20],
    [run("trackron_model_only", "model_0000019.pth"), "trackron", "weights-only", 0],
    [run("mmengine_run", "epoch_2.pth"), "mmengine", "resumable", 2],
    [
      run("lightning_run", "lightning_logs", "version_0", "checkpoints", "last.ckpt"),
      "lightning",
      "resumable",
      8,
    ],
    [run("timm_run", "last.pth.tar"), "timm", "resumable", 3],
    [
      run("pytracking_run", "checkpoints", "ltr", "dimp", "dimp18", "DiMPnet_ep0003.pth.tar"),
      "pytracking",
      "resumable",
      3,
    ],
    [run("deepspeed_run", "global_step20", "mp_rank_00_model_states.pt"), "deepspeed", "resumable", 20],
    [join(SAMPLES_DIR, "torch2", "state_dict.pt"), "state-dict", "not-a-training-checkpoint", null],
    [join(SAMPLES_DIR, "torch1", "training_checkpoint.pth"), "fvcore", "resumable", 60],
    // An optimizer saved on its own (the Trainer's optimizer.pt, Megatron's distrib_optim.pt): training
    // state without the weights, not a file of weights.
    [run("hf_trainer_run", "checkpoint-6", "optimizer.pt"), "optimizer-state", "training-state-only", 0],
    [
      run("megatron_run", "iter_0000100", "mp_rank_00", "distrib_optim.pt"),
      "optimizer-state",
      "training-state-only",
      0,
    ],
  ];
  for (const [file, convention, verdict, resumeAt] of cases) {
    it(`${file.slice(SAMPLES_DIR.length + 1)}: ${convention}, ${verdict}`, () => {
      const report = inspectFile(file);
      expect(report.convention?.id).toBe(convention);
      expect(report.convention?.evidence.length).toBeGreaterThan(0);
      expect(report.resume?.verdict).toBe(verdict);
      expect(report.resume?.resumeAt).toBe(resumeAt);
    });
  }

  it("Trackron: the counter comes from the file name only, and resuming resets optimizer and counter", () => {
    const report = inspectFile(run("trackron_model_only", "model_0000019.pth"));
    expect(report.resume?.counter).toMatchObject({ name: "iteration", value: 19, source: "file-name" });
    expect(report.resume?.resets).toEqual(["optimizer", "counter"]);
    // Trackron's timm scheduler is a pure function of the iteration: not a loss.
    expect(report.resume?.components).toContainEqual(
      expect.objectContaining({ component: "scheduler", status: "not-needed" }),
    );
    expect(report.findings.map((f) => f.code)).toContain("resume-verdict");
  });

  it("model_final.pth still carrying its counter is flagged", () => {
    const report = inspectFile(run("fvcore_finished", "model_final.pth"));
    expect(report.findings.map((f) => f.code)).toContain("final-checkpoint-has-state");
  });
});

describe("sanity checks on synthetic checkpoints", () => {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-sanity-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, pickle: Uint8Array, storages: number): string {
    const path = join(dir, name);
    const fd = openSync(path, "w");
    const writer = new TorchZipWriter(fd, name.replace(/\..*$/, ""));
    writer.addRecord("data.pkl", pickle);
    for (let i = 0; i < storages; i++) writer.addRecord(`data/${i}`, new Uint8Array(16));
    writer.finish();
    closeSync(fd);
    return path;
  }

  const tensor = (name: string, key: string) => ({
    name,
    storageClass: "FloatStorage",
    key,
    numel: 4,
    shape: [4],
    stride: [1],
  });

  it("every key prefixed with module. (saved from DDP) is a warning naming the prefix", () => {
    const file = write(
      "ddp.pt",
      stateDictPickle([tensor("module.fc.weight", "0"), tensor("module.fc.bias", "1")]),
      2,
    );
    const report = inspectFile(file);
    expect(report.findings).toContainEqual(
      expect.objectContaining({ code: "state-dict-key-prefix", severity: "warning" }),
    );
    expect(report.findings.find((f) => f.code === "state-dict-key-prefix")?.message).toContain('"module."');
  });

  it("an optimizer naming more parameters than the model has is an error", () => {
    // {"model": OrderedDict(fc.weight, fc.bias), "optimizer": {"state": {}, "param_groups": [{"params": [0..4]}]}, "iteration": 5}
    const model = stateDictPickle([tensor("fc.weight", "0"), tensor("fc.bias", "1")]);
    const modelOps = model.subarray(2, model.length - 1); // the state dict's opcodes without PROTO and STOP
    const pickle = Uint8Array.from([
      0x80,
      0x02,
      ...assemble([{ op: "emptyDict" }, { op: "mark" }, { op: "str", value: "model" }]).subarray(2, -1),
      ...modelOps,
      ...assemble([
        { op: "str", value: "optimizer" },
        { op: "emptyDict" },
        { op: "mark" },
        { op: "str", value: "state" },
        { op: "emptyDict" },
        { op: "str", value: "param_groups" },
        { op: "emptyList" },
        { op: "mark" },
        { op: "emptyDict" },
        { op: "mark" },
        { op: "str", value: "params" },
        { op: "emptyList" },
        { op: "mark" },
        ...[0, 1, 2, 3, 4].map((value): Op => ({ op: "int", value })),
        { op: "appends" },
        { op: "setitems" },
        { op: "appends" },
        { op: "setitems" },
        { op: "str", value: "iteration" },
        { op: "int", value: 5 },
        { op: "setitems" },
      ]).subarray(2),
    ]);
    const report = inspectFile(write("foreign-optimizer.pth", pickle, 2));
    expect(report.resume?.verdict).toBe("incomplete"); // no scheduler saved
    expect(report.findings).toContainEqual(
      expect.objectContaining({ code: "optimizer-param-mismatch", severity: "error" }),
    );
  });
});

/** What `samples/make_samples_extra.py` recorded from the canonical scripts' save and resume code. */
interface TrainingTruth {
  file: string;
  training?: {
    framework: string;
    keys: Record<"model" | "optimizer" | "scheduler" | "scaler" | "ema", string | null>;
    counter: { key: string; value: number } | null;
    resume: { startsAt: number | null } | null;
  };
  parameters?: {
    modelParameters: number;
    optimizerStateBytes: number;
  };
}

/** The ckpt convention each script's layout is: the canonical examples by name, hand-written loops otherwise. */
const CONVENTION_OF: Record<string, string[]> = {
  "pytorch-tutorial": ["training-loop"],
  "pytorch-examples-imagenet": ["imagenet-example"],
  allennlp: ["allennlp"],
  lightning: ["lightning"],
  torchtune: ["torchtune"],
  // {model, optimizer, iteration, ...} is also fvcore's layout, with the same restart arithmetic.
  custom: ["training-loop", "fvcore"],
};

describe("training checkpoints as the canonical scripts and everyday loops save them", () => {
  const samples = findTruths<TrainingTruth>().filter((s) => s.truth.training);
  it("has them from both torch versions", () => expect(samples.length).toBeGreaterThan(15));
  for (const { path, truth } of samples) {
    const training = truth.training as NonNullable<TrainingTruth["training"]>;
    it(`${path.slice(SAMPLES_DIR.length + 1)} (${training.framework})`, () => {
      const report = inspectFile(path);
      expect(CONVENTION_OF[training.framework], "convention").toContain(report.convention?.id);
      const state = (component: string) => report.resume?.components.find((c) => c.component === component);
      for (const [component, key] of Object.entries(training.keys)) {
        const found = state(component);
        if (key === null) expect(found?.status, component).not.toBe("present");
        // torch 1.13's GradScaler, disabled without CUDA, saves {}: the key is there, the feature was off.
        else if (found?.status === "unused") expect(found.why, component).toContain(`${key} is saved empty`);
        else expect(found, component).toMatchObject({ status: "present", key });
      }
      // Training state alone (AllenNLP's training_state) is not weights-only: it is half of a checkpoint.
      expect(report.resume?.verdict).toBe(training.keys.model === null ? "training-state-only" : "resumable");
      if (training.counter) {
        expect(report.resume?.counter).toMatchObject({
          from: training.counter.key,
          value: training.counter.value,
          source: "checkpoint",
        });
      }
      if (training.resume?.startsAt !== null && training.resume?.startsAt !== undefined)
        expect(report.resume?.resumeAt).toBe(training.resume.startsAt);
      // "Parameters" are the model's, not every number in the file; the optimizer's state is its own figure.
      const parts = report.summary.parts;
      if (training.keys.model !== null && truth.parameters) {
        expect(report.summary.parameters).toBe(truth.parameters.modelParameters);
        expect(parts.find((p) => p.part === "optimizer")?.bytes).toBe(truth.parameters.optimizerStateBytes);
      }
    });
  }
});
