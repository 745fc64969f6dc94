import { InvalidArgumentError } from "commander";

/**
 * What every `--help` ends with: a few examples and the exit codes, so a person sees how it is called and a
 * CI author sees what the exit status means without opening the README.
 */
export type CommandName =
  | "ckpt"
  | "inspect"
  | "diff"
  | "resume-plan"
  | "audit"
  | "scan"
  | "repair"
  | "convert";

interface HelpTail {
  readonly examples: readonly string[];
  readonly exitCodes: ReadonlyArray<readonly [code: number, meaning: string]>;
}

const USAGE_AND_BUG = [
  [2, "unusable input or a usage error"],
  [3, "a bug in ckpt (CKPT_DEBUG=1 shows the stack)"],
] as const;

const TAILS: Record<CommandName, HelpTail> = {
  ckpt: {
    examples: [
      "ckpt inspect model_final.pth",
      "ckpt audit outputs --fail-on warning",
      "ckpt scan downloads/ --quiet",
    ],
    exitCodes: [[0, "fine"], [1, "findings (each command's --help says which)"], ...USAGE_AND_BUG],
  },
  inspect: {
    examples: [
      "ckpt inspect model_0059999.pth",
      "ckpt inspect checkpoint.pt --filter 'model.*.weight' --stats",
      "ckpt inspect model.safetensors --json | jq '.summary'",
    ],
    exitCodes: [[0, "fine"], [1, "a finding at or above --fail-on"], ...USAGE_AND_BUG],
  },
  diff: {
    examples: [
      "ckpt diff model_0059999.pth model_final.pth",
      "ckpt diff pretrained.pth finetuned.pth --select model --values --filter 'backbone.*'",
      "ckpt diff last.pth.tar --select-a state_dict --select-b state_dict_ema --values",
    ],
    exitCodes: [
      [
        0,
        "equal: no difference in what was compared (names, dtypes, shapes, values; tensor values with --values)",
      ],
      [1, "different"],
      ...USAGE_AND_BUG,
    ],
  },
  "resume-plan": {
    examples: [
      "ckpt resume-plan outputs/my_run",
      "ckpt resume-plan outputs/my_run --write",
      "ckpt resume-plan outputs/my_run --json | jq '.choice'",
    ],
    exitCodes: [
      [0, "the framework's own resume picks up where the run stopped"],
      [1, "it does not (the plan says what to do)"],
      [2, "a checkpoint could not be read (permissions, I/O), or a usage error"],
      [3, "a bug in ckpt (CKPT_DEBUG=1 shows the stack)"],
    ],
  },
  audit: {
    examples: [
      "ckpt audit outputs",
      "ckpt audit outputs/* --fail-on warning",
      "ckpt audit outputs --html audit.html",
    ],
    exitCodes: [
      [0, "every run and file is fine"],
      [1, "a finding at or above --fail-on, or a broken loose file"],
      ...USAGE_AND_BUG,
    ],
  },
  scan: {
    examples: ["ckpt scan downloaded.pt", "ckpt scan models/ --quiet", "ckpt scan model.bin --json"],
    exitCodes: [
      [0, "clean, or framework classes only"],
      [1, "dangerous or unknown callables found"],
      [2, "unreadable or inconclusive, or a usage error"],
      [3, "a bug in ckpt (CKPT_DEBUG=1 shows the stack)"],
    ],
  },
  repair: {
    examples: [
      "ckpt repair model_0059999.pth -o model_0059999.resumable.pth --counter-from-filename",
      "ckpt repair embeddings.pt -o embeddings.compact.pt --compact",
      "ckpt repair outputs/my_run --dry-run",
    ],
    exitCodes: [
      [0, "written (or planned, with --dry-run)"],
      [1, "the run has no usable checkpoint"],
      [2, "unusable input, an edit that would change nothing, or a usage error"],
      [3, "a bug in ckpt (CKPT_DEBUG=1 shows the stack)"],
    ],
  },
  convert: {
    examples: [
      "ckpt convert pytorch_model.bin -o model.safetensors",
      "ckpt convert last.ckpt -o hf_model/ --strip-prefix model. --max-shard-size 5GB",
      "ckpt convert model.safetensors -o model.pth",
      "ckpt convert checkpoint/step-1000 -o consolidated.safetensors",
      "ckpt convert global_step500/ -o fp32/ --max-shard-size 2GB",
    ],
    exitCodes: [
      [0, "written"],
      [2, "a tensor the target cannot hold exactly, unusable input, or a usage error: nothing is written"],
      [3, "a bug in ckpt (CKPT_DEBUG=1 shows the stack)"],
    ],
  },
};

export function helpTail(command: CommandName): string {
  const { examples, exitCodes } = TAILS[command];
  return [
    "",
    "Examples:",
    ...examples.map((e) => `  $ ${e}`),
    "",
    "Exit codes:",
    ...exitCodes.map(([code, meaning]) => `  ${code}  ${meaning}`),
  ].join("\n");
}

/** `--jobs 4`: a whole number of at least 1 (commander turns the throw into a usage error, exit 2). */
export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new InvalidArgumentError("expected a whole number of 1 or more.");
  return n;
}
