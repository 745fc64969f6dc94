import { barePickleInfo, type PickleInfo } from "../../checkpoint.js";
import { ReaderError } from "../../errors.js";
import { parsePickle } from "../../pickle/machine.js";
import { isBoxed, type PyDict, type PyValue } from "../../pickle/value.js";
import { dtypeFromGlobal } from "../../torch/dtypes.js";
import { asInt, asIntTuple, cachingStorageResolver, torchPickleHooks } from "../../torch/rebuild.js";
import {
  asBool,
  asString,
  asStringList,
  classNameOf,
  classOf,
  enumMember,
  field,
  itemsOf,
} from "../pyData.js";

/**
 * DCP's `.metadata` decoded as data (never executed). The file is a bare pickle (`pickle.dump(metadata)` in
 * `FileSystemWriter.finish`, default protocol: 4 under Python 3.8 to 3.13): a `Metadata` dataclass whose fields
 * are `state_dict_metadata` (FQN -> `TensorStorageMetadata` | `BytesStorageMetadata`), `planner_data` (the
 * default planner's FQN -> path of original nested keys), `storage_data` (`MetadataIndex` -> `_StorageInfo`),
 * and since torch 2.4 `storage_meta` (`StorageMeta`), since 2.6 `version`.
 *
 * Across versions: torch 1.13 names the classes in `torch.distributed._shard.checkpoint.*` and
 * `TensorProperties` in `torch.distributed._shard.sharded_tensor.metadata` (its memory-format enum is
 * `MEM_FORMAT_ENCODING`, later `_MEM_FORMAT_ENCODING`); `_StorageInfo` gained `transform_descriptors` (2.6) and
 * a `__getstate__` that leaves out None fields, so its pickled state has 3 or 4 keys; enum members pickle as
 * `cls(value)` or, from some Python 3.11 releases, `getattr(cls, name)`. All of these decode here.
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

function malformed(what: string): ReaderError {
  return new ReaderError("not-a-checkpoint", `.metadata is not DCP Metadata: ${what}`);
}

/**
 * Decodes `.metadata` bytes.
 * @throws ReaderError from the pickle machine when the bytes are no pickle, `not-a-checkpoint` when the pickle
 * is not a DCP `Metadata`.
 */
export function decodeDcpMetadata(bytes: Uint8Array): DcpMetadata {
  const foreignPersistentIds: number[] = [];
  const result = parseMetadataPickle(bytes, foreignPersistentIds);
  const root = result.value;
  const rootClass = classOf(root);
  if (classNameOf(root) !== "Metadata" || rootClass === undefined) {
    throw malformed(`the pickle holds ${rootClass ?? describeKind(root)}`);
  }
  const itemsValue = field(root, "state_dict_metadata");
  if (!isBoxed(itemsValue, "dict")) throw malformed("state_dict_metadata is not a dict");
  return {
    version: asString(field(root, "version")) ?? null,
    items: decodeItems(itemsValue),
    storage: decodeStorage(field(root, "storage_data")),
    plannerData: decodePlannerData(field(root, "planner_data")),
    storageMeta: decodeStorageMeta(field(root, "storage_meta")),
    classModule: rootClass.slice(0, rootClass.lastIndexOf(".")),
    pickleProtocol: result.protocol,
    parse: {
      pickle: barePickleInfo(result, bytes.length, foreignPersistentIds),
      root: () => parseMetadataPickle(bytes, []).value,
      readsAlike: result.frameIssues.length === 0 && result.end === bytes.length,
    },
  };
}

/** torch's own rebuild models turn torch.Size into tuples and _get_layout into its argument; no persistent ids. */
function parseMetadataPickle(bytes: Uint8Array, foreignPersistentIds: number[]) {
  const hooks = torchPickleHooks(cachingStorageResolver(new Map()), foreignPersistentIds);
  return parsePickle(bytes, { hooks });
}

function describeKind(value: PyValue): string {
  if (value === null) return "None";
  return typeof value === "object" ? `a ${value.kind}` : `a ${typeof value}`;
}

function decodeItems(dict: PyDict): Map<string, DcpItemMetadata> {
  const out = new Map<string, DcpItemMetadata>();
  dict.keys.forEach((key, i) => {
    if (typeof key !== "string") throw malformed("a state_dict_metadata key is not a string");
    out.set(key, decodeItem(key, dict.values[i] as PyValue));
  });
  return out;
}

function decodeItem(fqn: string, value: PyValue): DcpItemMetadata {
  const name = classNameOf(value);
  if (name === "BytesStorageMetadata") return { kind: "bytes" };
  if (name !== "TensorStorageMetadata")
    throw malformed(`${fqn} is described by ${classOf(value) ?? "no class"}`);
  const size = asIntTuple(field(value, "size"));
  const chunkItems = itemsOf(field(value, "chunks"));
  if (!size || !chunkItems) throw malformed(`${fqn} has no size or chunks`);
  const chunks = chunkItems.map((chunk) => {
    const offsets = asIntTuple(field(chunk, "offsets"));
    const sizes = asIntTuple(field(chunk, "sizes"));
    if (!offsets || !sizes) throw malformed(`a chunk of ${fqn} has no offsets or sizes`);
    return { offsets, sizes };
  });
  return { kind: "tensor", properties: decodeProperties(fqn, field(value, "properties")), size, chunks };
}

/** `TensorProperties.__getstate__`: `(dtype, layout, requires_grad, memory-format enum, pin_memory)`. */
function decodeProperties(fqn: string, value: PyValue | undefined): DcpTensorProperties {
  const state = isBoxed(value, "object") ? value.state : undefined;
  const parts = isBoxed(state, "tuple") ? state.items : undefined;
  // A dict state, should a version ever pickle the dataclass's __dict__ instead.
  const pick = (i: number, key: string) => parts?.[i] ?? field(value, key);
  const dtypeValue = pick(0, "dtype");
  const dtype = isBoxed(dtypeValue, "global")
    ? dtypeFromGlobal(dtypeValue.module, dtypeValue.name)
    : undefined;
  if (dtype === undefined) throw malformed(`${fqn} has no dtype torch knows`);
  const layoutValue = pick(1, "layout");
  const layout = asString(layoutValue) ?? (isBoxed(layoutValue, "global") ? layoutValue.name : "strided");
  const member = enumMember(pick(3, "memory_format"));
  const formatIndex = asInt(member.value);
  const memoryFormat =
    (formatIndex !== undefined ? MEMORY_FORMATS[formatIndex] : undefined) ??
    (member.name !== undefined ? MEMORY_FORMAT_NAMES[member.name] : undefined) ??
    "contiguous_format";
  return {
    dtype,
    layout: layout.replace(/^torch\./, ""),
    requiresGrad: asBool(pick(2, "requires_grad")) ?? false,
    memoryFormat,
    pinMemory: asBool(pick(4, "pin_memory")) ?? false,
  };
}

function decodeStorage(value: PyValue | undefined): DcpMetadata["storage"] {
  if (value === null || value === undefined) return [];
  if (!isBoxed(value, "dict")) throw malformed("storage_data is not a dict");
  return value.keys.map((key, i) => {
    const fqn = asString(field(key, "fqn"));
    if (classNameOf(key) !== "MetadataIndex" || fqn === undefined)
      throw malformed("a storage_data key is no MetadataIndex");
    const offset = field(key, "offset");
    const info = value.values[i] as PyValue;
    const relativePath = asString(field(info, "relative_path"));
    const start = asInt(field(info, "offset"));
    const length = asInt(field(info, "length"));
    if (relativePath === undefined || start === undefined || length === undefined) {
      throw malformed(`the storage of ${fqn} has no relative_path, offset or length`);
    }
    return {
      index: {
        fqn,
        offset: offset === null || offset === undefined ? null : (asIntTuple(offset) ?? null),
        index: asInt(field(key, "index")) ?? null,
      },
      info: {
        relativePath,
        offset: start,
        length,
        transformDescriptors: asStringList(field(info, "transform_descriptors")) ?? null,
      },
    };
  });
}

function decodePlannerData(value: PyValue | undefined): DcpMetadata["plannerData"] {
  if (!isBoxed(value, "dict")) return null;
  const out = new Map<string, Array<string | number>>();
  value.keys.forEach((key, i) => {
    const path = itemsOf(value.values[i]);
    if (typeof key !== "string" || !path) return;
    const keys = path.filter((k): k is string | number => typeof k === "string" || typeof k === "number");
    if (keys.length === path.length) out.set(key, keys);
  });
  return out;
}

function decodeStorageMeta(value: PyValue | undefined): DcpStorageMeta | null {
  if (classNameOf(value) !== "StorageMeta") return null;
  const id = field(value, "checkpoint_id");
  // A pathlib.PosixPath pickles as PosixPath(*parts).
  const idText = asString(id) ?? (isBoxed(id, "object") ? pathText(id.args) : undefined);
  return {
    checkpointId: idText ?? null,
    saveId: asString(field(value, "save_id")) ?? null,
    loadId: asString(field(value, "load_id")) ?? null,
    modules: asStringList(field(value, "modules")) ?? [],
  };
}

function pathText(parts: PyValue[]): string | undefined {
  if (!parts.every((p) => typeof p === "string")) return undefined;
  return (parts as string[]).join("/").replace(/\/{2,}/g, "/");
}
