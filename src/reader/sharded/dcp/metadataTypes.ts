import type { PickleInfo } from "../../checkpoint.js";
import type { PyValue } from "../../pickle/value.js";

/**
 * DCP's `.metadata` as data: the shapes both of its decoders produce (`metadata.ts` over the pickle machine's
 * graph, `metadataLane.ts` straight from the bytes), and what a few raw field values mean to both.
 */

export interface DcpTensorProperties {
  /** torch's dtype name without `torch.` (`float32`). */
  readonly dtype: string;
  /** `strided` (deprecated field, always written). */
  readonly layout: string;
  readonly requiresGrad: boolean;
  /** `contiguous_format`, `channels_last` or `preserve_format`. */
  readonly memoryFormat: string;
  readonly pinMemory: boolean;
}

export interface DcpChunkMetadata {
  /** Where the chunk starts in the global tensor, per dimension. */
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
}

export type DcpItemMetadata =
  | {
      readonly kind: "tensor";
      readonly properties: DcpTensorProperties;
      /** The global shape. */
      readonly size: readonly number[];
      readonly chunks: readonly DcpChunkMetadata[];
    }
  | { readonly kind: "bytes" };

/** `MetadataIndex`: the key of `storage_data`. `offset` is null for bytes items; `index` is a lookup hint. */
export interface DcpMetadataIndex {
  readonly fqn: string;
  readonly offset: readonly number[] | null;
  readonly index: number | null;
}

/** `_StorageInfo`: where one item's bytes are. */
export interface DcpStorageInfo {
  /** The data file, relative to the checkpoint directory (`__0_0.distcp`). */
  readonly relativePath: string;
  readonly offset: number;
  readonly length: number;
  /** Stream extensions applied to the item, outermost last (`stream.zstd/1`); null when none (the usual). */
  readonly transformDescriptors: readonly string[] | null;
}

export interface DcpStorageMeta {
  readonly checkpointId: string | null;
  readonly saveId: string | null;
  readonly loadId: string | null;
  readonly modules: readonly string[];
}

export interface DcpMetadata {
  /** `Metadata.version` (`"1.0.0"` from torch 2.6 on), null before. */
  readonly version: string | null;
  /** `state_dict_metadata` in file order. */
  readonly items: ReadonlyMap<string, DcpItemMetadata>;
  /** `storage_data` in file order. */
  readonly storage: ReadonlyArray<{ readonly index: DcpMetadataIndex; readonly info: DcpStorageInfo }>;
  /** The default planner's flattening map, FQN -> keys into the nested state dict; null when absent. */
  readonly plannerData: ReadonlyMap<string, ReadonlyArray<string | number>> | null;
  readonly storageMeta: DcpStorageMeta | null;
  /** The module `Metadata` was named from (`torch.distributed.checkpoint.metadata`, 1.13's `..._shard...`). */
  readonly classModule: string;
  readonly pickleProtocol: number;
  /**
   * The parse itself, so that a security scan adopts it rather than running the machine over tens of
   * megabytes again: what it named, and the inert graph on demand (`root` parses the same bytes again; the
   * decoded fields above are all a checkpoint keeps, since holding a 50,000-tensor graph of hundreds of
   * megabytes slowed every later step's garbage collection). `readsAlike` says every CPython reader would
   * read these bytes as this one parse did (no FRAME disagreement, nothing after STOP), which adopting
   * requires.
   */
  readonly parse: { readonly pickle: PickleInfo; readonly root: () => PyValue; readonly readsAlike: boolean };
}

const MEMORY_FORMATS = ["contiguous_format", "channels_last", "preserve_format"];
const MEMORY_FORMAT_NAMES: Readonly<Record<string, string>> = {
  TORCH_CONTIGUOUS_FORMAT: "contiguous_format",
  TORCH_CHANNELS_LAST: "channels_last",
  TORCH_PRESERVE_FORMAT: "preserve_format",
};

/** `_MEM_FORMAT_ENCODING` member by value (`cls(0)`) or by name (`getattr(cls, "TORCH_CHANNELS_LAST")`). */
export function memoryFormatOf(index: number | undefined, name: string | undefined): string {
  return (
    (index !== undefined ? MEMORY_FORMATS[index] : undefined) ??
    (name !== undefined ? MEMORY_FORMAT_NAMES[name] : undefined) ??
    "contiguous_format"
  );
}

/** A layout as `_get_layout`'s argument (`torch.strided`) or a global's name, without `torch.`. */
export function layoutName(text: string): string {
  return text.replace(/^torch\./, "");
}

/** A `pathlib.PosixPath(*parts)`'s text, or `undefined` when a part is no str. */
export function pathText(parts: readonly unknown[]): string | undefined {
  if (!parts.every((p) => typeof p === "string")) return undefined;
  return (parts as string[]).join("/").replace(/\/{2,}/g, "/");
}

/** A default-planner path (a `planner_data` value): its keys, when every one is a str or an int. */
export function plannerPath(items: readonly unknown[]): Array<string | number> | undefined {
  const keys = items.filter((k): k is string | number => typeof k === "string" || typeof k === "number");
  return keys.length === items.length ? keys : undefined;
}
