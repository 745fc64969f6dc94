import type { Hash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import type { PartSummary } from "../../inspect/parts.js";
import { ReaderError } from "../../reader/errors.js";
import { isRemotePath } from "../../reader/location.js";
import { nodeCrypto } from "../../reader/nodeBuiltins.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { ELEMENT_SIZE } from "../../reader/torch/dtypes.js";
import { writeFileAtomic, writeFileAtomicWith } from "../atomicWrite.js";
import { archiveNameFor, assertNotInput } from "../repairFile.js";
import { TorchZipWriter } from "../zipWriter.js";
import { type AliasedSet, resolveAliases } from "./aliases.js";
import { fileSource } from "./fileInput.js";
import { pythonJsonDumps } from "./pyJson.js";
import { layoutSafetensors, safetensorsCode, writeSafetensors } from "./safetensorsWriter.js";
import type { SelectOptions } from "./select.js";
import { shardedSource } from "./shardedInput.js";
import { planShards } from "./shards.js";
import type { ConvertTensor, TargetFormat } from "./tensors.js";
import { writeTorchStateDict } from "./torchZipOut.js";

/**
 * `ckpt convert`: the chosen tensors of a checkpoint written to safetensors (one file, or shards with the
 * index transformers reads) or to a torch zip state dict, streamed tensor by tensor, every output written
 * atomically and never over an input.
 */
export interface ConvertOptions extends SelectOptions {
  /** For a directory output: the most bytes of tensor data per shard (huggingface_hub's rule). */
  readonly maxShardSize?: number;
  /** Names (after renaming) or dotted prefixes of tensors to leave out. */
  readonly drop?: readonly string[];
  /** Compute each output's sha256 while writing. */
  readonly hash?: boolean;
  readonly onProgress?: (progress: ConvertProgress) => void;
}

export interface ConvertProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly tensorsDone: number;
  readonly tensorsTotal: number;
}

export type ConvertTarget = "safetensors" | "safetensors-directory" | "torch-zip";

export interface ConvertOutput {
  readonly path: string;
  readonly sizeBytes: number;
  /** Tensors stored in it (0 for the index). */
  readonly tensors: number;
  readonly sha256?: string;
}

export interface ConvertResult {
  readonly source: {
    readonly path: string;
    readonly format: string;
    readonly sizeBytes: number;
    /** For a remote input: requests and bytes, final once the source is closed. */
    readonly transfer?: Readonly<Transfer>;
  };
  readonly target: ConvertTarget;
  /** What was converted: "model (model_state_dict)", "optimizer", "every tensor". */
  readonly taken: string;
  /** The dotted key path converted ("" for the whole file): names are relative to it. */
  readonly selected: string;
  readonly outputs: ConvertOutput[];
  readonly tensorsWritten: number;
  readonly dataBytes: number;
  /** Names not written because another written name holds the same bytes. */
  readonly aliases: Array<{ readonly name: string; readonly keptAs: string }>;
  /** Written names whose bytes overlapped in the source without being the same view: each is a copy. */
  readonly overlapping: string[][];
  /** Views of larger storages written as just their elements, and the bytes that saved. */
  readonly views: { readonly tensors: number; readonly savedBytes: number };
  readonly dropped: string[];
  readonly leftOut: PartSummary[];
  /** Sharded sources: names of the non-tensor values (DCP bytes items) not carried into `__metadata__`. */
  readonly valuesLeftOut?: string[];
  /** `__metadata__` written to each safetensors file (without the alias entries). */
  readonly metadata: Record<string, string>;
  readonly seconds: number;
}

/** The standard metadata transformers writes and requires (`{"format": "pt"}`). */
const DEFAULT_METADATA: ReadonlyArray<[string, string]> = [["format", "pt"]];

/** Where an output path says to write. */
export function convertTarget(output: string): ConvertTarget {
  if (output.endsWith("/") || output.endsWith(sep) || (existsSync(output) && statSync(output).isDirectory()))
    return "safetensors-directory";
  if (/\.safetensors$/i.test(output)) return "safetensors";
  if (/\.(pth|pt|bin|ckpt|tar)$/i.test(output)) return "torch-zip";
  throw new ReaderError(
    "convert-refused",
    `cannot tell the format to write from ${output}: end it in .safetensors, .pth/.pt/.bin, or / for a directory of shards`,
  );
}

function canHold(target: TargetFormat): (dtype: string) => boolean {
  return target === "safetensors"
    ? (dtype) => safetensorsCode(dtype) !== undefined
    : // torch rebuilds any plain dtype from an UntypedStorage (_rebuild_tensor_v3); quantized ones need more.
      (dtype) => ELEMENT_SIZE[dtype] !== undefined && !/^q|^bits/.test(dtype);
}

function isDropped(name: string, drop: readonly string[]): boolean {
  return drop.some((d) => name === d || name.startsWith(d.endsWith(".") ? d : `${d}.`));
}

/** Counts bytes and tensors as they are written, hashing each output when asked. */
class Meter {
  bytesDone = 0;
  tensorsDone = 0;
  private hash: Hash | undefined;

  constructor(
    private readonly totals: { bytes: number; tensors: number },
    private readonly options: ConvertOptions,
    /** Throws when the source changed while it was read: then no output may be renamed into place. */
    readonly settle: () => void,
  ) {}

  get hashing(): boolean {
    return this.options.hash === true;
  }

  startFile(): void {
    this.hash = this.options.hash ? nodeCrypto().createHash("sha256") : undefined;
  }

  endFile(): string | undefined {
    return this.hash?.digest("hex");
  }

  bytes = (chunk: Uint8Array): void => {
    this.hash?.update(chunk);
    this.bytesDone += chunk.length;
    this.report();
  };

  tensor = (): void => {
    this.tensorsDone++;
  };

  report(): void {
    this.options.onProgress?.({
      bytesDone: this.bytesDone,
      bytesTotal: this.totals.bytes,
      tensorsDone: this.tensorsDone,
      tensorsTotal: this.totals.tensors,
    });
  }
}

/** Wraps a tensor's byte stream so the meter counts it when its last byte has been written. */
function counted(tensor: ConvertTensor, meter: Meter): () => Iterable<Uint8Array> {
  return function* () {
    yield* tensor.bytes();
    meter.tensor();
  };
}

function safetensorsMetadata(
  base: ReadonlyMap<string, string>,
  aliases: ReadonlyArray<[string, string]>,
): Map<string, string> {
  const merged = new Map<string, string>(base);
  // save_model's rule: an alias is recorded unless the user's metadata already uses that key.
  for (const [name, kept] of aliases) if (!merged.has(name)) merged.set(name, kept);
  // Sorted, so the header does not depend on the order options were given.
  return new Map([...merged].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function writeOneSafetensors(
  path: string,
  tensors: readonly ConvertTensor[],
  metadata: ReadonlyMap<string, string>,
  meter: Meter,
): ConvertOutput {
  const entries = tensors.map((t) => ({
    name: t.name,
    dtype: t.dtype,
    shape: t.shape,
    bytes: counted(t, meter),
  }));
  const layout = layoutSafetensors(entries, metadata);
  meter.startFile();
  const sizeBytes = writeFileAtomicWith(path, (fd) => {
    const written = writeSafetensors(fd, layout, meter.bytes);
    meter.settle();
    return written;
  });
  return withHash({ path, sizeBytes, tensors: tensors.length }, meter.endFile());
}

function withHash(output: ConvertOutput, sha256: string | undefined): ConvertOutput {
  return sha256 === undefined ? output : { ...output, sha256 };
}

/** Weight files of an earlier save that the new files would not replace: a reader would mix them in. */
function staleWeightFiles(directory: string, writing: ReadonlySet<string>): string[] {
  if (!existsSync(directory)) return [];
  return readdirSync(directory).filter(
    (name) => /^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$/.test(name) && !writing.has(name),
  );
}

function writeDirectory(
  directory: string,
  set: AliasedSet,
  metadata: ReadonlyMap<string, string>,
  maxShardSize: number,
  meter: Meter,
  inputs: readonly string[],
): ConvertOutput[] {
  const plan = planShards(set.written, (t) => t.byteLength, maxShardSize);
  const names = new Set(plan.files.map((f) => f.name));
  if (plan.sharded) names.add("model.safetensors.index.json");
  const stale = staleWeightFiles(directory, names);
  if (stale.length > 0) {
    throw new ReaderError(
      "stale-shards",
      `${directory} already holds ${stale.join(", ")}, which this conversion would not replace`,
    );
  }
  mkdirSync(directory, { recursive: true });
  for (const name of names) for (const input of inputs) assertNotInput(input, join(directory, name));
  const outputs: ConvertOutput[] = [];
  const aliasesOf = new Map<string, Array<[string, string]>>();
  for (const [alias, kept] of set.aliases)
    aliasesOf.set(kept, [...(aliasesOf.get(kept) ?? []), [alias, kept]]);
  try {
    for (const file of plan.files) {
      const aliases = file.tensors.flatMap((t) => aliasesOf.get(t.name) ?? []);
      outputs.push(
        writeOneSafetensors(
          join(directory, file.name),
          file.tensors,
          safetensorsMetadata(metadata, aliases),
          meter,
        ),
      );
    }
  } catch (error) {
    // A shard that failed midway leaves no partial set behind: the shards already in place go too.
    for (const written of outputs) rmSync(written.path, { force: true });
    throw error;
  }
  if (plan.sharded) {
    const weightMap = Object.fromEntries(plan.files.flatMap((f) => f.tensors.map((t) => [t.name, f.name])));
    const text = `${pythonJsonDumps({ metadata: { total_size: plan.totalSize }, weight_map: weightMap })}\n`;
    const path = join(directory, "model.safetensors.index.json");
    // Written last: until it exists, no reader is sent to shards that are not all there.
    writeFileAtomic(path, text);
    const sha256 = meter.hashing ? nodeCrypto().createHash("sha256").update(text).digest("hex") : undefined;
    outputs.push(withHash({ path, sizeBytes: Buffer.byteLength(text), tensors: 0 }, sha256));
  }
  return outputs;
}

function writeTorchFile(
  path: string,
  all: readonly ConvertTensor[],
  set: AliasedSet,
  meter: Meter,
): ConvertOutput {
  meter.startFile();
  const sizeBytes = writeFileAtomicWith(path, (fd) => {
    const writer = new TorchZipWriter(fd, archiveNameFor(path), { onWrite: meter.bytes });
    writeTorchStateDict(writer, all, set, meter.tensor);
    meter.settle();
    return writer.bytesWritten;
  });
  return withHash({ path, sizeBytes, tensors: set.written.length }, meter.endFile());
}

/** Refuses an output inside a source directory: it would become part of the checkpoint it came from. */
export function assertOutsideSource(sourceDir: string, output: string): void {
  const real = (p: string) => {
    let at = resolve(p);
    const rest: string[] = [];
    while (!existsSync(at)) {
      rest.unshift(at.slice(at.lastIndexOf(sep) + 1));
      at = resolve(at, "..");
    }
    return join(realpathSync(at), ...rest);
  };
  const from = relative(real(sourceDir), real(output));
  if (from === "" || (!from.startsWith("..") && !from.startsWith(sep))) {
    throw new ReaderError("output-inside-source", `${output} is inside the source directory ${sourceDir}`);
  }
}

/** A sharded checkpoint: a directory (DCP, DeepSpeed, Hugging Face shards) or an `*.index.json` file. */
function isShardedInput(input: string): boolean {
  if (isRemotePath(input)) return false;
  return statSync(input, { throwIfNoEntry: false })?.isDirectory() === true || input.endsWith(".index.json");
}

export function convertCheckpoint(
  input: string,
  output: string,
  options: ConvertOptions = {},
): ConvertResult {
  const started = performance.now();
  if (isRemotePath(output)) {
    throw new ReaderError("remote-unsupported", `-o ${output}: ckpt writes local files only`);
  }
  const target = convertTarget(output);
  // A remote input cannot be the output, nor hold it: those checks compare local files.
  const inputs = isRemotePath(input) ? [] : [input];
  const format: TargetFormat = target === "torch-zip" ? "torch-zip" : "safetensors";
  if (format === "torch-zip" && (options.metadata?.length ?? 0) > 0) {
    throw new ReaderError(
      "convert-refused",
      "--metadata applies to safetensors outputs: a torch state dict has no metadata",
    );
  }
  const sharded = isShardedInput(input);
  if (sharded) assertOutsideSource(input.endsWith(".index.json") ? dirname(input) : input, output);
  const request = {
    target: format,
    canHold: canHold(format),
    isDropped: (name: string) => isDropped(name, options.drop ?? []),
  };
  const source = sharded ? shardedSource(input, options, request) : fileSource(input, options, request);
  try {
    // A DeepSpeed tag directory's save directory is its parent: stay outside that too.
    if (source.directory !== undefined) assertOutsideSource(source.directory, output);
    const tensors = source.tensors;
    const set = resolveAliases(tensors);
    const dataBytes = set.written.reduce((n, t) => n + t.byteLength, 0);
    const meter = new Meter({ bytes: dataBytes, tensors: set.written.length }, options, source.settle);
    const metadata = new Map<string, string>([...DEFAULT_METADATA, ...source.metadata]);
    const aliasPairs = [...set.aliases];
    let outputs: ConvertOutput[];
    if (target === "safetensors-directory") {
      outputs = writeDirectory(output, set, metadata, options.maxShardSize ?? 5e9, meter, inputs);
    } else {
      for (const local of inputs) assertNotInput(local, output);
      outputs =
        target === "safetensors"
          ? [writeOneSafetensors(output, set.written, safetensorsMetadata(metadata, aliasPairs), meter)]
          : [writeTorchFile(output, tensors, set, meter)];
    }
    return {
      source: {
        path: input,
        format: source.format,
        sizeBytes: source.sizeBytes,
        ...(source.transfer ? { transfer: source.transfer } : {}),
      },
      target,
      taken: source.taken,
      selected: source.selected,
      outputs,
      tensorsWritten: set.written.length,
      dataBytes,
      aliases: aliasPairs.map(([name, keptAs]) => ({ name, keptAs })),
      overlapping: set.overlapping,
      views: set.views,
      dropped: source.dropped,
      leftOut: source.leftOut,
      ...(source.valuesLeftOut ? { valuesLeftOut: source.valuesLeftOut } : {}),
      metadata: format === "safetensors" ? Object.fromEntries(metadata) : {},
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    source.close();
  }
}
