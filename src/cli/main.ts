import { Command, CommanderError, Option } from "commander";
import { runInspect } from "./commands/inspect.js";
import type { FailOn } from "./exitCode.js";
import type { Output } from "./output.js";
import { styleFor } from "./style.js";
import { VERSION } from "./version.js";

const FAIL_ON_CHOICES: FailOn[] = ["error", "warning", "info", "none"];

const processOutput: Output = {
  out: (text: string) => {
    process.stdout.write(text);
  },
  err: (text: string) => {
    process.stderr.write(text);
  },
  style: styleFor(process.stdout),
};

/** Runs the CLI and resolves to its exit code; never throws and never calls process.exit. */
export async function main(argv: readonly string[], io: Output = processOutput): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name("ckpt")
    .description(
      "Open PyTorch checkpoints without Python: inspect them, judge whether a run can resume, repair.",
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command("inspect")
    .description(
      "format, structure, every tensor, and findings of a checkpoint file (or of each one in a directory)",
    )
    .argument("<path>", "checkpoint file (.pt, .pth, .ckpt, .bin, .safetensors, pointer) or directory")
    .option("--json", "print the ckpt.inspect/1 JSON object instead of tables", false)
    .option("--all", "list every tensor, not only the first 25", false)
    .option("--filter <glob>", "only tensors whose dotted key path matches, e.g. 'model.*.weight'")
    .option("--hash", "add sha256 of each tensor's bytes (reads tensor data, streamed)", false)
    .option("--stats", "add min/max/mean and NaN/Inf counts per floating tensor (reads tensor data)", false)
    .addOption(
      new Option("--fail-on <level>", "exit 1 when a finding is at or above this level")
        .choices(FAIL_ON_CHOICES)
        .default("error"),
    )
    .action(
      (
        path: string,
        options: {
          json: boolean;
          all: boolean;
          filter?: string;
          hash: boolean;
          stats: boolean;
          failOn: FailOn;
        },
      ) => {
        exitCode = runInspect(
          path,
          {
            json: options.json,
            all: options.all,
            filter: options.filter,
            hash: options.hash,
            stats: options.stats,
            failOn: options.failOn,
          },
          io,
        );
      },
    );

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are successes; every other commander error is a usage error.
      return error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
        ? 0
        : 2;
    }
    io.err(`ckpt: internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 3;
  }
  return exitCode;
}
