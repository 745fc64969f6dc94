import type { PartSummary } from "../../inspect/parts.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import type { ConvertTensor, TargetFormat } from "./tensors.js";

/**
 * What a conversion reads, whatever the input is (one checkpoint file, or a sharded directory): the chosen
 * tensors ready to stream, what was left out, and how to tell that the input changed while it was read.
 */
export interface ConvertSource {
  readonly path: string;
  /** The input's format: a file's (`torch-zip`, `safetensors`, ...) or a sharded layout (`dcp`, `deepspeed`, `hf-index`). */
  readonly format: string;
  /** Bytes of the files the checkpoint is made of. */
  readonly sizeBytes: number;
  /** The directory the checkpoint is in, when it is a directory: no output may go inside it. */
  readonly directory: string | undefined;
  readonly taken: string;
  readonly selected: string;
  /** In source order, without the dropped ones. */
  readonly tensors: ConvertTensor[];
  readonly dropped: string[];
  readonly leftOut: PartSummary[];
  /** Names of non-tensor values the checkpoint holds that were not converted (sharded sources). */
  readonly valuesLeftOut?: string[];
  readonly metadata: Map<string, string>;
  /** Throws when the input changed while it was read: then no output may be renamed into place. */
  readonly settle: () => void;
  readonly close: () => void;
  /** For a remote input: requests and bytes, final once closed (the remote source's own counter). */
  readonly transfer?: Readonly<Transfer>;
}

/** What the writer needs from the caller to prepare a source. */
export interface SourceRequest {
  readonly target: TargetFormat;
  /** Whether the target can hold a dtype exactly. */
  readonly canHold: (dtype: string) => boolean;
  /** Whether a (renamed) tensor is left out by `--drop`. */
  readonly isDropped: (name: string) => boolean;
}
