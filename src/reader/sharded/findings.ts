import type { ReaderErrorCode } from "../errors.js";

/**
 * What the completeness checks find, as data: one variant per problem, with the names, ranks and numbers that
 * locate it. No prose: whoever presents a finding words it. `severity` says whether the checkpoint can still
 * be loaded whole (`error`: it cannot, as torch would fail or build a wrong tensor; `warning`: it loads but
 * something is off; `info`: worth knowing).
 */
export type ShardedFinding =
  // --- DCP ---
  /** `.distcp` files without `.metadata`: a save cut before the coordinator wrote it (it is written last). */
  | {
      readonly code: "metadata-missing";
      readonly severity: "error";
      readonly dataFiles: readonly string[];
      readonly ranks: readonly number[];
      /** `.metadata.tmp` (killed during the write) or rank-local `__<rank>.metadata` files that are there. */
      readonly partial: readonly string[];
    }
  /** A bytes item whose archive cannot be opened: `dcp.load`'s torch.load of it fails. */
  | {
      readonly code: "item-unreadable";
      readonly severity: "error";
      readonly fqn: string;
      readonly file: string;
      readonly detail: string;
    }
  /** A data file `.metadata` names is absent; `rank` from its `__<rank>_<n>` name. */
  | {
      readonly code: "file-missing";
      readonly severity: "error";
      readonly file: string;
      readonly rank: number | null;
      readonly items: readonly string[];
    }
  /** A data file is shorter than the byte ranges `.metadata` gives in it. */
  | {
      readonly code: "file-too-short";
      readonly severity: "error";
      readonly file: string;
      readonly rank: number | null;
      readonly size: number;
      readonly needed: number;
      readonly items: readonly string[];
    }
  /** A `relative_path` that is no plain file name in the checkpoint's directory (never opened). */
  | {
      readonly code: "path-outside";
      readonly severity: "error";
      readonly file: string;
      readonly items: readonly string[];
    }
  /** A declared chunk (or bytes item) with no `storage_data` entry: nothing says where its bytes are. */
  | {
      readonly code: "chunk-storage-missing";
      readonly severity: "error";
      readonly fqn: string;
      /** Index into the tensor's chunks; null for a bytes item. */
      readonly chunk: number | null;
      readonly offsets: readonly number[] | null;
    }
  /** A chunk reaching outside the global shape (or of another rank). */
  | {
      readonly code: "chunk-out-of-bounds";
      readonly severity: "error";
      readonly fqn: string;
      readonly chunk: number;
      readonly offsets: readonly number[];
      readonly sizes: readonly number[];
      readonly shape: readonly number[];
    }
  /** Two chunks claiming the same elements. */
  | {
      readonly code: "chunk-overlap";
      readonly severity: "error";
      readonly fqn: string;
      readonly chunks: readonly [number, number];
    }
  /** Elements no chunk covers: torch's consolidation leaves them as uninitialised memory. */
  | {
      readonly code: "chunk-gap";
      readonly severity: "error";
      readonly fqn: string;
      readonly missingElements: number;
      readonly totalElements: number;
    }
  /** A `storage_data` entry that no declared chunk or item uses. */
  | {
      readonly code: "storage-undeclared";
      readonly severity: "warning";
      readonly fqn: string;
      readonly offsets: readonly number[] | null;
    }
  /** Items written through stream extensions (compression, ...): ckpt reads their structure, not their values. */
  | {
      readonly code: "transform-unsupported";
      readonly severity: "warning";
      readonly fqn: string;
      readonly descriptors: readonly string[];
    }
  /** A `__<rank>_<n>.distcp` file `.metadata` never mentions (an empty rank's file, or a leftover). */
  | {
      readonly code: "file-unreferenced";
      readonly severity: "info";
      readonly file: string;
      readonly rank: number | null;
    }
  // --- DeepSpeed ---
  /** No `latest` file: `load_checkpoint(dir)` returns (None, None) and training starts over unless a tag is given. */
  | { readonly code: "latest-missing"; readonly severity: "warning"; readonly tags: readonly string[] }
  /** `latest` names a tag directory that is not there. */
  | { readonly code: "latest-target-missing"; readonly severity: "error"; readonly tag: string }
  /** A rank's model-states or optimizer-states file is absent. */
  | {
      readonly code: "rank-file-missing";
      readonly severity: "error";
      readonly file: string;
      readonly rank: number;
      readonly role: "model-states" | "optim-states";
    }
  /**
   * Model-states files of more than one model-parallel rank (`mp_rank_01_model_states.pt`): each holds its own
   * slice of the tensor-parallel layers; ckpt shows rank 0's, and merging them needs the model's split rules.
   */
  | {
      readonly code: "model-parallel-ranks";
      readonly severity: "warning";
      readonly files: readonly string[];
    }
  /** zero_to_fp32's check: `partition_count` optimizer files expected, another number found. */
  | {
      readonly code: "world-size-mismatch";
      readonly severity: "error";
      readonly expected: number;
      readonly found: number;
    }
  /** The flat fp32 groups do not hold what `param_shapes` needs (zero_to_fp32's "consumed N numels out of M"). */
  | {
      readonly code: "zero-layout-mismatch";
      readonly severity: "error";
      readonly group: number;
      readonly consumed: number;
      readonly available: number;
    }
  /** A DeepSpeed file that does not read as the engine writes it (missing keys, unknown stage). */
  | {
      readonly code: "zero-state-unreadable";
      readonly severity: "error";
      readonly file: string;
      readonly reason: string;
    }
  // --- Hugging Face index ---
  /** A shard the index names is absent. */
  | {
      readonly code: "shard-missing";
      readonly severity: "error";
      readonly file: string;
      readonly tensors: readonly string[];
    }
  /** The index names a tensor that its shard does not hold. */
  | {
      readonly code: "tensor-missing";
      readonly severity: "error";
      readonly name: string;
      readonly shard: string;
    }
  /** A shard holds a tensor the index does not list (loaders that follow the index never see it). */
  | {
      readonly code: "tensor-unlisted";
      readonly severity: "warning";
      readonly name: string;
      readonly shard: string;
    }
  /** `metadata.total_size` differs from the bytes of the tensors the shards hold. */
  | {
      readonly code: "total-size-mismatch";
      readonly severity: "warning";
      readonly declared: number;
      readonly actual: number;
    }
  /** A shard name not of the form `<stem>-NNNNN-of-NNNNN.<ext>` (5 or 6 digits), or numbered inconsistently. */
  | { readonly code: "shard-name-irregular"; readonly severity: "info"; readonly file: string }
  /** A shard that is there but does not open as its format. */
  | {
      readonly code: "shard-unreadable";
      readonly severity: "error";
      readonly file: string;
      readonly error: ReaderErrorCode;
      readonly message: string;
    }
  /** A file named like a shard of this index that the index never mentions. */
  | { readonly code: "shard-unreferenced"; readonly severity: "info"; readonly file: string };

export type ShardedFindingCode = ShardedFinding["code"];
