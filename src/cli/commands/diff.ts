import { type DiffReport, diffSides } from "../../inspect/diff/diff.js";
import type { PairComparer } from "../../inspect/diff/values.js";
import { globFilter } from "../../inspect/report.js";
import { ReaderError } from "../../reader/errors.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { writeJson } from "../render/json.js";
import { addTransfers, transferLine } from "../transfer.js";
import { type OpenedInput, openDiffInput } from "./diffInputs.js";

export interface DiffCommandOptions {
  readonly json: boolean;
  readonly values: boolean;
  readonly hash: boolean;
  readonly all: boolean;
  readonly filter: string | undefined;
  readonly select: string | undefined;
  readonly selectA: string | undefined;
  readonly selectB: string | undefined;
}

/** `ckpt diff A [B]`: 0 equal, 1 different (as diff(1)), 2 an input that cannot be used. */
export async function runDiff(
  inputA: string,
  inputB: string | undefined,
  options: DiffCommandOptions,
  io: Output,
  comparer?: PairComparer,
): Promise<number> {
  const selectA = options.selectA ?? options.select;
  const selectB = options.selectB ?? options.select;
  const opened: OpenedInput[] = [];
  let failed = inputA;
  try {
    if (inputB === undefined && selectA === selectB) {
      throw new ReaderError("diff-needs-two", "one input, and nothing to compare it with", { file: inputA });
    }
    opened.push(await openDiffInput(inputA, selectA));
    failed = inputB ?? inputA;
    opened.push(await openDiffInput(inputB ?? inputA, selectB));
    const [a, b] = opened as [OpenedInput, OpenedInput];
    const glob = options.filter;
    const report = await diffSides({ a: a.description, b: b.description }, a.side, b.side, {
      values: options.values || options.hash,
      hash: options.hash,
      ...(glob ? { filter: { glob, test: nameFilter(glob) } } : {}),
      comparer: comparer ?? (await import("../../inspect/diff/parallel.js")).compareInParallel,
    });
    // A trainer still writing either file would make the comparison one of bytes that changed underneath.
    for (const [i, input] of opened.entries()) {
      failed = i === 0 ? inputA : (inputB ?? inputA);
      input.assertUnchanged();
    }
    const transfer = addTransfers(opened.map((input) => input.transfer()));
    await print(transfer ? { ...report, transfer } : report, options, io);
    if (transfer && !options.json) io.out(transferLine(transfer));
    return report.summary.equal ? 0 : 1;
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(error instanceof ReaderError && error.file ? error.file : failed, error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return error instanceof ReaderError ? 2 : 3;
  } finally {
    for (const input of opened) input.close();
  }
}

/** `--filter` as inspect has it, matched against the names diff prints. */
function nameFilter(glob: string): (name: string) => boolean {
  const test = globFilter(glob);
  return (name) => test([name]);
}

async function print(
  report: DiffReport & { readonly transfer?: Readonly<Transfer> },
  options: DiffCommandOptions,
  io: Output,
): Promise<void> {
  if (options.json) {
    writeJson(report, io.out, ["tensors", "values"]);
    return;
  }
  const { renderDiffText } = await import("../render/diffText.js");
  io.out(renderDiffText(report, { style: io.style, all: options.all }));
}
