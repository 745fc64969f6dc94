import { barePickleInfo } from "../../checkpoint.js";
import { ReaderError } from "../../errors.js";
import { parsePickle } from "../../pickle/machine.js";
import { isBoxed, type PyDict, type PyValue } from "../../pickle/value.js";
import { DimsCache } from "../../torch/dims.js";
import { dtypeFromGlobal } from "../../torch/dtypes.js";
import { StorageTable } from "../../torch/idMap.js";
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
import { type LaneResult, readMetadataLane } from "./metadataLane.js";
import {
  type DcpItemMetadata,
  type DcpMetadata,
  type DcpStorageMeta,
  type DcpTensorProperties,
  layoutName,
  memoryFormatOf,
  pathText,
  plannerPath,
} from "./metadataTypes.js";

export type {
  DcpChunkMetadata,
  DcpItemMetadata,
  DcpMetadata,
  DcpMetadataIndex,
  DcpStorageInfo,
  DcpStorageMeta,
  DcpTensorProperties,
} from "./metadataTypes.js";

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

function malformed(what: string): ReaderError {
  return new ReaderError("not-a-checkpoint", `.metadata is not DCP Metadata: ${what}`);
}

/**
 * Decodes `.metadata` bytes.
 * @throws ReaderError from the pickle machine when the bytes are no pickle, `not-a-checkpoint` when the pickle
 * is not a DCP `Metadata`.
 */
export function decodeDcpMetadata(bytes: Uint8Array): DcpMetadata {
  const lane = readMetadataLane(bytes);
  return lane === undefined ? decodeDcpMetadataGraph(bytes) : fromLane(bytes, lane);
}

/** The lane's fields with the parse it saw; the graph, when a scan needs it, comes from the machine. */
function fromLane(bytes: Uint8Array, lane: LaneResult): DcpMetadata {
  const { protocol, globals, opcodes, end } = lane;
  const seen = { protocol, globals, opcodes };
  return {
    ...lane.fields,
    pickleProtocol: protocol,
    parse: {
      pickle: barePickleInfo(seen, bytes.length, []),
      root: () => parseMetadataPickle(bytes, []).value,
      // The lane declines every FRAME the bytes do not honour.
      readsAlike: end === bytes.length,
    },
  };
}

/**
 * The same decoding over the pickle machine's object graph: every `.metadata` the lane declines (anything it
 * does not model), and the reference the lane is tested against.
 */
export function decodeDcpMetadataGraph(bytes: Uint8Array): DcpMetadata {
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
  const hooks = torchPickleHooks(cachingStorageResolver(new StorageTable()), foreignPersistentIds);
  return parsePickle(bytes, { hooks });
}

function describeKind(value: PyValue): string {
  if (value === null) return "None";
  return typeof value === "object" ? `a ${value.kind}` : `a ${typeof value}`;
}

function decodeItems(dict: PyDict): Map<string, DcpItemMetadata> {
  const out = new Map<string, DcpItemMetadata>();
  // Shared between chunks and tensors of one value, as the lane shares them.
  const dims = new DimsCache();
  dict.keys.forEach((key, i) => {
    if (typeof key !== "string") throw malformed("a state_dict_metadata key is not a string");
    out.set(key, decodeItem(key, dict.values[i] as PyValue, dims));
  });
  return out;
}

function decodeItem(fqn: string, value: PyValue, dims: DimsCache): DcpItemMetadata {
  const name = classNameOf(value);
  if (name === "BytesStorageMetadata") return { kind: "bytes" };
  if (name !== "TensorStorageMetadata")
    throw malformed(`${fqn} is described by ${classOf(value) ?? "no class"}`);
  const tupleSize = asIntTuple(field(value, "size"));
  const size = tupleSize && dims.intern(tupleSize);
  const chunkItems = itemsOf(field(value, "chunks"));
  if (!size || !chunkItems) throw malformed(`${fqn} has no size or chunks`);
  const chunks = chunkItems.map((chunk) => {
    const offsets = asIntTuple(field(chunk, "offsets"));
    const sizes = asIntTuple(field(chunk, "sizes"));
    if (!offsets || !sizes) throw malformed(`a chunk of ${fqn} has no offsets or sizes`);
    return { offsets: dims.intern(offsets), sizes: dims.intern(sizes) };
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
  return {
    dtype,
    layout: layoutName(layout),
    requiresGrad: asBool(pick(2, "requires_grad")) ?? false,
    memoryFormat: memoryFormatOf(asInt(member.value), member.name),
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
    const keys = plannerPath(path);
    if (keys) out.set(key, keys);
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
