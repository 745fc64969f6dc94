import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { runPython, torchRequirement } from "./helpers/torch.js";

/**
 * Proof with real torch: every repaired file loads with torch.load, its tensors are bit-identical to the
 * original's, the counter is there, keys are renamed as asked; on torch 2.x mmap=True works and
 * weights_only=True loads it whenever it loaded the original. Inputs are hashed before and after.
 */
const scratch = mkdtempSync(join(tmpdir(), "ckpt-torch-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

interface Check {
  loads: boolean;
  samePaths: boolean;
  bitIdentical: boolean;
  counter?: number;
  droppedAbsent: boolean;
  mmap?: boolean;
  weightsOnlyOriginal: boolean;
  weightsOnlyRepaired: boolean;
}

interface Case {
  readonly name: string;
  readonly sample: string;
  readonly args: string[];
  readonly counter?: { name: string; value: number };
  readonly strip?: string;
  readonly add?: string;
  readonly dropped?: string[];
}

const CASES: Case[] = [
  {
    name: "counter added to a model-only file",
    sample: "model_only.pth",
    args: ["--set-counter", "iteration=59999"],
    counter: { name: "iteration", value: 59999 },
  },
  {
    name: "a finished run's state dropped (maskrcnn-benchmark #652)",
    sample: "training_checkpoint.pth",
    args: ["--drop", "optimizer", "--drop", "scheduler", "--drop", "iteration"],
    dropped: ["optimizer", "scheduler", "iteration"],
  },
  {
    name: "legacy format in, zip out",
    sample: "legacy.pt",
    args: ["--set-counter", "epoch=3"],
    counter: { name: "epoch", value: 3 },
  },
  {
    name: "protocol 4 pickle with FRAMEs",
    sample: "protocol4.pt",
    args: ["--set-counter", "step=7"],
    counter: { name: "step", value: 7 },
  },
  {
    name: "views sharing storages, offsets, 0-d and empty tensors",
    sample: "views.pt",
    args: ["--set-counter", "iteration=1"],
    counter: { name: "iteration", value: 1 },
  },
  {
    name: "every dtype",
    sample: "dtypes.pt",
    args: ["--set-counter", "iteration=2"],
    counter: { name: "iteration", value: 2 },
  },
  {
    name: "quantized tensors",
    sample: "quantized.pt",
    args: ["--set-counter", "iteration=3"],
    counter: { name: "iteration", value: 3 },
  },
  { name: "keys gain a prefix", sample: "state_dict.pt", args: ["--add-prefix", "module."], add: "module." },
];

describeWith(torchRequirement("any"), "repaired files load in real torch", (pythons) => {
  for (const torch of pythons) {
    describe(`torch ${torch.version}`, () => {
      for (const c of CASES) {
        it(c.name, async () => {
          const input = join(SAMPLES_DIR, torch.samples, c.sample);
          const output = join(scratch, `${torch.samples}-${c.sample.replace(/\W/g, "_")}.pth`);
          const before = sha(input);
          expect((await ckpt("repair", input, "-o", output, ...c.args)).code).toBe(0);
          expect(sha(input)).toBe(before);
          const spec = {
            original: input,
            repaired: output,
            counter: c.counter ?? null,
            strip: c.strip ?? null,
            add: c.add ?? null,
            dropped: c.dropped ?? [],
          };
          const check = JSON.parse(
            runPython(torch.python, "check_repair.py", [JSON.stringify(spec)]),
          ) as Check;
          expect(check.loads).toBe(true);
          expect(check.samePaths).toBe(true);
          expect(check.bitIdentical).toBe(true);
          if (c.counter) expect(check.counter).toBe(c.counter.value);
          expect(check.droppedAbsent).toBe(true);
          if (torch.samples === "torch2") expect(check.mmap).toBe(true);
          if (check.weightsOnlyOriginal) expect(check.weightsOnlyRepaired).toBe(true);
        });
      }

      it("a DDP state dict loses its module. prefix (and _metadata follows)", async () => {
        const input = join(scratch, `ddp-${torch.samples}.pt`);
        const output = join(scratch, `bare-${torch.samples}.pt`);
        runPython(torch.python, "make_ddp.py", [input]);
        expect((await ckpt("repair", input, "-o", output, "--strip-prefix", "module.")).code).toBe(0);
        const spec = { original: input, repaired: output, strip: "module.", dropped: [] };
        const check = JSON.parse(runPython(torch.python, "check_repair.py", [JSON.stringify(spec)])) as Check;
        expect(check).toMatchObject({ loads: true, samePaths: true, bitIdentical: true });
      });

      it("end to end: a Trackron-style run resumes at N+1 with its LR after ckpt repair RUN_DIR", async () => {
        const run = join(scratch, `trackron-${torch.samples}`);
        runPython(torch.python, "trackron_loop.py", [
          "train",
          run,
          "--max-iter",
          "30",
          "--period",
          "10",
          "--stop-at",
          "25",
        ]);
        const broken = JSON.parse(
          runPython(torch.python, "trackron_loop.py", ["resume", run, "--max-iter", "30"]),
        );
        expect(broken).toMatchObject({ loaded: "model_0000019.pth", startIter: 0 }); // the bug, reproduced

        const before = sha(join(run, "model_0000019.pth"));
        expect((await ckpt("repair", run)).code).toBe(0);
        expect(sha(join(run, "model_0000019.pth"))).toBe(before);

        const resumed = JSON.parse(
          runPython(torch.python, "trackron_loop.py", ["resume", run, "--max-iter", "30"]),
        );
        expect(resumed.loaded).toBe("model_0000019.resumable.pth");
        expect(resumed.startIter).toBe(20);
        expect(resumed.lr).toBeCloseTo(resumed.expectedLr, 12);
        expect(resumed.optimizerRestored).toBe(false); // never saved: ckpt cannot invent it, and says so
        // Three trainings in real torch: ~15 s alone, past the default 30 s on a loaded 2-core machine.
      }, 120_000);
    });
  }
});
