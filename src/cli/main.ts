import { availableParallelism } from "node:os";
import { Command, CommanderError, Option } from "commander";
import type { FailOn } from "./exitCode.js";
import { helpTail, positiveInteger } from "./help.js";
import type { Output } from "./output.js";
import { pipeSafeWriter } from "./pipe.js";
import { styleFor } from "./style.js";
import { VERSION } from "./version.js";

const FAIL_ON_CHOICES: FailOn[] = ["error", "warning", "info", "none"];

/** The process's own streams, made when the CLI runs (not when a library user imports this module). */
function processOutput(): Output {
  return {
    out: pipeSafeWriter(process.stdout),
    err: pipeSafeWriter(process.stderr),
    style: styleFor(process.stdout),
  };
}

/** Runs the CLI and resolves to its exit code; never throws and never calls process.exit. */
export async function main(argv: readonly string[], io: Output = processOutput()): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name("ckpt")
    .description(
      "Open PyTorch checkpoints without Python: inspect them, judge whether a run can resume, repair.",
    )
    .version(VERSION, "-v, --version", "print the version")
    .addHelpText("after", helpTail("ckpt"))
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command("inspect")
    .description(
      "format, structure, every tensor, and findings of a checkpoint file (or of each one in a directory)",
    )
    .addHelpText("after", helpTail("inspect"))
    .argument("<path>", "checkpoint file (.pt, .pth, .ckpt, .bin, .safetensors, pointer) or directory")
    .option("--json", "print the ckpt.inspect/1 JSON object instead of tables")
    .option("--all", "list every tensor, not only the first 25")
    .option("--filter <glob>", "only tensors whose dotted key path matches, e.g. 'model.*.weight'")
    .option("--hash", "add sha256 of each tensor's bytes (reads tensor data, streamed)")
    .option("--stats", "add min/max/mean and NaN/Inf counts per floating tensor (reads tensor data)")
    .addOption(
      new Option("--fail-on <level>", "exit 1 when a finding is at or above this level")
        .choices(FAIL_ON_CHOICES)
        .default("error"),
    )
    .action(
      async (
        path: string,
        options: {
          json?: boolean;
          all?: boolean;
          filter?: string;
          hash?: boolean;
          stats?: boolean;
          failOn: FailOn;
        },
      ) => {
        // Each command's modules load only when it runs: start-up is most of a small inspect's time.
        const { runInspect } = await import("./commands/inspect.js");
        exitCode = await runInspect(
          path,
          {
            json: options.json === true,
            all: options.all === true,
            filter: options.filter,
            hash: options.hash === true,
            stats: options.stats === true,
            failOn: options.failOn,
          },
          io,
        );
      },
    );

  program
    .command("diff")
    .description(
      "what differs between two checkpoints (files, sharded directories, runs' chosen checkpoints): keys, renames, dtypes, shapes, values",
    )
    .addHelpText("after", helpTail("diff"))
    .argument(
      "<a>",
      "a checkpoint file, a sharded checkpoint directory, or a run directory (its resume plan's choice)",
    )
    .argument(
      "[b]",
      "the same kinds; omitted: A again, with --select-a and --select-b naming two parts of it",
    )
    .option("--values", "read both sides' tensors at once and compare their values (streamed)")
    .option("--hash", "with --values, add each side's sha256 of every tensor's bytes")
    .option("--json", "print the ckpt.diff/1 JSON object")
    .option("--all", "list every tensor, identical ones too")
    .option("--filter <glob>", "only names that match, e.g. 'model.backbone.*'")
    .option("--select <key>", "compare what is under this key on both sides, e.g. model")
    .option("--select-a <key>", "the key compared in A (e.g. state_dict)")
    .option("--select-b <key>", "the key compared in B (e.g. state_dict_ema)")
    .action(
      async (
        a: string,
        b: string | undefined,
        options: {
          values?: boolean;
          hash?: boolean;
          json?: boolean;
          all?: boolean;
          filter?: string;
          select?: string;
          selectA?: string;
          selectB?: string;
        },
      ) => {
        const { runDiff } = await import("./commands/diff.js");
        exitCode = await runDiff(
          a,
          b,
          {
            values: options.values === true,
            hash: options.hash === true,
            json: options.json === true,
            all: options.all === true,
            filter: options.filter,
            select: options.select,
            selectA: options.selectA,
            selectB: options.selectB,
          },
          io,
        );
      },
    );

  program
    .command("resume-plan")
    .description(
      "will this run really resume, and from where? follows the pointer, checks every checkpoint, plans",
    )
    .addHelpText("after", helpTail("resume-plan"))
    .argument("<run-dir>", "the run's output directory (OUTPUT_DIR, work_dir, output_dir, default_root_dir)")
    .option("--json", "print the ckpt.resume-plan/1 JSON object")
    .option(
      "--config <file>",
      "the run's YAML config (detectron2/Trackron style); default: <run-dir>/config.yaml",
    )
    .option("--no-verify", "skip streaming the chosen checkpoint through its CRCs (structure checks only)")
    .option("--verify-all", "stream every candidate through its CRCs")
    .option("--write", "write resume-manifest.json and fix a missing, dangling or broken pointer")
    .action(
      async (
        runDir: string,
        options: { json?: boolean; config?: string; verify: boolean; verifyAll?: boolean; write?: boolean },
      ) => {
        const { runResumePlan } = await import("./commands/resumePlan.js");
        const { writeResumeFiles } = await import("../repair/resumeWrite.js");
        exitCode = await runResumePlan(
          runDir,
          {
            json: options.json === true,
            config: options.config,
            verify: options.verifyAll ? "all" : options.verify ? "chosen" : "none",
            write: options.write === true,
          },
          io,
          writeResumeFiles,
        );
      },
    );

  program
    .command("audit")
    .description(
      "every run in one or more outputs trees, judged at once: for people (table) and for CI (exit codes)",
    )
    .addHelpText("after", helpTail("audit"))
    .argument("<dirs...>", "outputs trees (or checkpoint files)")
    .option("--json", "print the ckpt.audit/1 JSON object")
    .option(
      "--no-verify",
      "skip streaming each run's pointer target and chosen checkpoint through their CRCs (structure checks only)",
    )
    .option("--verify-all", "stream every record of every checkpoint through its CRC")
    .addOption(
      new Option("--jobs <n>", "worker threads for verifying CRCs")
        .argParser(positiveInteger)
        .default(availableParallelism(), "the number of cores"),
    )
    .addOption(
      new Option("--fail-on <level>", "exit 1 on findings at or above this level")
        .choices(["error", "warning"])
        .default("error"),
    )
    .option("--html <file>", "also write a self-contained HTML report")
    .action(
      async (
        dirs: string[],
        options: {
          json?: boolean;
          verify: boolean;
          verifyAll?: boolean;
          jobs: number;
          failOn: "error" | "warning";
          html?: string;
        },
      ) => {
        const { runAudit } = await import("./commands/audit.js");
        // The same checks as resume-plan by default, so both commands reach the same verdict on a run.
        exitCode = await runAudit(
          dirs,
          {
            json: options.json === true,
            verify: options.verifyAll === true ? "all" : options.verify ? "chosen" : "none",
            jobs: options.jobs,
            failOn: options.failOn,
            html: options.html,
          },
          io,
        );
      },
    );

  program
    .command("scan")
    .description(
      "security: every callable the file's pickles can reach, and whether torch.load(weights_only=True) loads it",
    )
    .addHelpText("after", helpTail("scan"))
    .argument("<paths...>", "checkpoint files or trees")
    .option("--json", "print ckpt.scan/1 (an array for several files)")
    .option("-q, --quiet", "print only files with findings (and the summary)")
    .option(
      "--deep",
      "remote files too: probe every record for hidden pickles (a request per record; local files always are)",
    )
    .action(async (paths: string[], options: { json?: boolean; quiet?: boolean; deep?: boolean }) => {
      const { runScan } = await import("./commands/scan.js");
      exitCode = await runScan(
        paths,
        { json: options.json === true, quiet: options.quiet === true, deep: options.deep === true },
        io,
      );
    });

  // Repeatable options: no default, so that --help does not print "(default: [])".
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  program
    .command("repair")
    .description(
      "write a corrected checkpoint (or fix a run: counter, pointer, manifest); inputs are never modified",
    )
    .addHelpText("after", helpTail("repair"))
    .argument("<path>", "a checkpoint file (with -o and edits) or a run directory")
    .option("-o, --output <file>", "where to write the repaired checkpoint (never the input)")
    .option("--set-counter <name=value>", "add the counter, e.g. iteration=59999 (or epoch=, global_step=)")
    .option(
      "--counter-from-filename",
      "take the counter from the file name (fvcore model_0059999.pth: 59999)",
    )
    .option(
      "--strip-prefix <prefix>",
      "remove a prefix from the state dict keys (module., _orig_mod.); repeatable",
      collect,
    )
    .option("--add-prefix <prefix>", "add a prefix to the state dict keys; repeatable", collect)
    .option("--drop <key>", "remove a top-level entry (optimizer, scheduler, iteration); repeatable", collect)
    .option(
      "--compact",
      "write each storage with only the bytes its tensors reach (a saved slice keeps its whole storage otherwise)",
    )
    .option("--dry-run", "say what would be written, write nothing")
    .option("--json", "print the result as JSON")
    .action(
      async (
        path: string,
        options: {
          output?: string;
          setCounter?: string;
          counterFromFilename?: boolean;
          stripPrefix?: string[];
          addPrefix?: string[];
          drop?: string[];
          compact?: boolean;
          dryRun?: boolean;
          json?: boolean;
        },
      ) => {
        const { runRepair } = await import("./commands/repair.js");
        exitCode = await runRepair(
          path,
          {
            output: options.output,
            setCounter: options.setCounter,
            counterFromFilename: options.counterFromFilename === true,
            stripPrefix: options.stripPrefix ?? [],
            addPrefix: options.addPrefix ?? [],
            drop: options.drop ?? [],
            compact: options.compact === true,
            dryRun: options.dryRun === true,
            json: options.json === true,
          },
          io,
        );
      },
    );

  program
    .command("convert")
    .description(
      "write a checkpoint's tensors as safetensors (a file, or shards transformers reads) or as a torch state dict",
    )
    .addHelpText("after", helpTail("convert"))
    .argument(
      "<path>",
      "a checkpoint file (torch zip, legacy, TorchScript, safetensors) or a sharded one: a DCP or DeepSpeed directory, Hugging Face shards (DIR or its *.index.json)",
    )
    .option("-o, --output <out>", "OUT.safetensors, OUT.pth (or .pt/.bin), or DIR/ for shards and an index")
    .option("--max-shard-size <size>", "for DIR/: the most tensor bytes per shard (5GB = 5*10^9; 4GiB)")
    .option(
      "--select <key>",
      "convert the tensors under this key (optimizer, ema, model.backbone) instead; for DCP a top-level key",
    )
    .option("--all", "convert every tensor in the file, named by its dotted path")
    .option(
      "--strip-prefix <prefix>",
      "remove a prefix from the names (module., _orig_mod.); repeatable",
      collect,
    )
    .option("--add-prefix <prefix>", "add a prefix to the names; repeatable", collect)
    .option("--drop <name>", "leave out a tensor, or every tensor under a dotted prefix; repeatable", collect)
    .option(
      "--metadata <key>",
      "carry a top-level value (iteration, epoch; a DCP value such as train_state.step) into __metadata__; repeatable",
      collect,
    )
    .option("--json", "print ckpt.convert/1 (outputs with sizes and sha256)")
    .action(
      async (
        path: string,
        options: {
          output?: string;
          maxShardSize?: string;
          select?: string;
          all?: boolean;
          stripPrefix?: string[];
          addPrefix?: string[];
          drop?: string[];
          metadata?: string[];
          json?: boolean;
        },
      ) => {
        const { runConvert } = await import("./commands/convert.js");
        exitCode = runConvert(
          path,
          {
            output: options.output,
            maxShardSize: options.maxShardSize,
            select: options.select,
            all: options.all === true,
            stripPrefix: options.stripPrefix ?? [],
            addPrefix: options.addPrefix ?? [],
            drop: options.drop ?? [],
            metadata: options.metadata ?? [],
            json: options.json === true,
          },
          io,
        );
      },
    );

  program
    .command("view")
    .description("serve the page that shows a checkpoint or a run in your browser, on 127.0.0.1 only")
    .addHelpText("after", helpTail("view"))
    .argument("<path>", "a checkpoint file, or a directory (a run, an outputs tree, a sharded checkpoint)")
    .option("--port <port>", "the port to listen on (default: a free one)", positiveInteger)
    .option("--no-open", "print the URL, do not open a browser")
    .action(async (path: string, options: { port?: number; open: boolean }) => {
      const { runView } = await import("./commands/view.js");
      exitCode = await runView(path, { port: options.port ?? 0, open: options.open }, io);
    });

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
