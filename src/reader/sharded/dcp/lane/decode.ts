import type { DimsCache } from "../../../torch/dims.js";
import { dtypeFromGlobal } from "../../../torch/dtypes.js";
import { asInt } from "../../../torch/rebuild.js";
import {
  type DcpChunkMetadata,
  type DcpItemMetadata,
  type DcpMetadata,
  type DcpMetadataIndex,
  type DcpStorageInfo,
  type DcpStorageMeta,
  type DcpTensorProperties,
  layoutName,
  memoryFormatOf,
  pathText,
  plannerPath,
} from "../metadataTypes.js";
import {
  Call,
  DECLINE,
  Dict,
  Global,
  Instance,
  List,
  type StorageIndex,
  type Tuple,
  type Value,
} from "./values.js";

// ---- decoding, as `metadata.ts` decodes the graph (each function names the one it mirrors)

/**
 * The hot classes' meaning, taken at their BUILD so that their state can go. Safe because the lane never
 * hands out a container or an object twice (the memo refuses them), so nothing changes a state after its
 * BUILD. A state the graph decoder would reject declines here, wherever the object ends up.
 */
export function decodeAtBuild(className: string, state: Value, dims: DimsCache): Instance["decoded"] {
  switch (className) {
    case "ChunkStorageMetadata": {
      const offsets = intTuple(stateField(state, "offsets"));
      const sizes = intTuple(stateField(state, "sizes"));
      if (!offsets || !sizes) throw DECLINE;
      // Ranks' chunks repeat a few offsets and sizes: 400,000 arrays for 50,000 tensors on 4 ranks, shared.
      return { offsets: dims.intern(offsets), sizes: dims.intern(sizes) };
    }
    case "TensorProperties":
      return propertiesOf(state);
    case "TensorStorageMetadata":
      return tensorOf(state, dims);
    case "MetadataIndex":
      return storageIndexOf(state);
    case "_StorageInfo":
      return storageInfoOf(state);
    default:
      return undefined;
  }
}

/** `decodeItem` for a TensorStorageMetadata's state. */
function tensorOf(state: Value, dims: DimsCache): DcpItemMetadata {
  const tupleSize = intTuple(stateField(state, "size"));
  const size = tupleSize && dims.intern(tupleSize);
  const chunkItems = sequenceItems(stateField(state, "chunks"));
  if (!size || !chunkItems) throw DECLINE;
  const chunks = chunkItems.map((chunk) => decodedAs(chunk, "ChunkStorageMetadata") as DcpChunkMetadata);
  const properties = decodedAs(stateField(state, "properties"), "TensorProperties") as DcpTensorProperties;
  return { kind: "tensor", properties, size, chunks };
}

/** What BUILD decoded for an object of class `className`; anything else declines. */
function decodedAs(value: Value | undefined, className: string): NonNullable<Instance["decoded"]> {
  if (!(value instanceof Instance) || value.cls.name !== className || value.decoded === undefined)
    throw DECLINE;
  return value.decoded;
}

/** `decodeProperties`: a 5-tuple from `TensorProperties.__getstate__`, or a dict. */
function propertiesOf(state: Value): DcpTensorProperties {
  const parts = Array.isArray(state) ? (state as Tuple) : undefined;
  const pick = (i: number, key: string) => parts?.[i] ?? stateField(state, key);
  const dtypeValue = pick(0, "dtype");
  const dtype =
    dtypeValue instanceof Global ? dtypeFromGlobal(dtypeValue.module, dtypeValue.name) : undefined;
  if (dtype === undefined) throw DECLINE;
  const layoutValue = pick(1, "layout");
  const layout =
    typeof layoutValue === "string"
      ? layoutValue
      : layoutValue instanceof Global
        ? layoutValue.name
        : "strided";
  const member = enumMember(pick(3, "memory_format"));
  return {
    dtype,
    layout: layoutName(layout),
    requiresGrad: boolOf(pick(2, "requires_grad")) ?? false,
    memoryFormat: memoryFormatOf(intOf(member.value), member.name),
    pinMemory: boolOf(pick(4, "pin_memory")) ?? false,
  };
}

/** `enumMember`: the graph's objects are the lane's instances (no arguments) and calls. */
function enumMember(value: Value | undefined): { readonly name?: string; readonly value?: Value } {
  if (!(value instanceof Call)) return {};
  if (value.callable.qualified === "builtins.getattr") {
    const name = value.args[1];
    return typeof name === "string" ? { name } : {};
  }
  return value.args.length === 1 ? { value: value.args[0] as Value } : {};
}

/** `decodeStorage`'s key. */
function storageIndexOf(state: Value): StorageIndex {
  const fqn = stateField(state, "fqn");
  if (typeof fqn !== "string") throw DECLINE;
  const offset = stateField(state, "offset");
  return {
    fqn,
    offset: offset === null || offset === undefined ? null : (intTuple(offset) ?? null),
    index: intOf(stateField(state, "index")) ?? null,
  };
}

/** `decodeStorage`'s value. */
function storageInfoOf(state: Value): DcpStorageInfo {
  const relativePath = stateField(state, "relative_path");
  const offset = intOf(stateField(state, "offset"));
  const length = intOf(stateField(state, "length"));
  if (typeof relativePath !== "string" || offset === undefined || length === undefined) throw DECLINE;
  return {
    relativePath,
    offset,
    length,
    transformDescriptors: stringList(stateField(state, "transform_descriptors")) ?? null,
  };
}

/** `decodeItems`. */
export function itemsOf(dict: Dict): Map<string, DcpItemMetadata> {
  const out = new Map<string, DcpItemMetadata>();
  const { entries } = dict;
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    const value = entries[i + 1];
    if (typeof key !== "string" || !(value instanceof Instance)) throw DECLINE;
    const name = value.cls.shortName;
    if (name === "BytesStorageMetadata") out.set(key, { kind: "bytes" });
    else if (name === "TensorStorageMetadata")
      out.set(key, decodedAs(value, "TensorStorageMetadata") as DcpItemMetadata);
    else throw DECLINE;
  }
  return out;
}

/** `decodeStorage`. */
export function storageOf(value: Value | undefined): DcpMetadata["storage"] {
  if (value === null || value === undefined) return [];
  if (!(value instanceof Dict)) throw DECLINE;
  const { entries } = value;
  const out: Array<{ index: DcpMetadataIndex; info: DcpStorageInfo }> = new Array(entries.length / 2);
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    if (!(key instanceof Instance) || key.cls.shortName !== "MetadataIndex") throw DECLINE;
    out[i / 2] = {
      index: decodedAs(key, "MetadataIndex") as DcpMetadataIndex,
      info: decodedAs(entries[i + 1], "_StorageInfo") as DcpStorageInfo,
    };
  }
  return out;
}

/** `decodePlannerData`. */
export function plannerDataOf(value: Value | undefined): DcpMetadata["plannerData"] {
  if (!(value instanceof Dict)) return null;
  const out = new Map<string, Array<string | number>>();
  const { entries } = value;
  for (let i = 0; i < entries.length; i += 2) {
    const key = entries[i];
    const path = sequenceItems(entries[i + 1]);
    if (typeof key !== "string" || !path) continue;
    const keys = plannerPath(path);
    if (keys) out.set(key, keys);
  }
  return out;
}

/** `decodeStorageMeta`: only a StorageMeta object counts; a path pickles as `PosixPath(*parts)`. */
export function storageMetaOf(value: Value | undefined): DcpStorageMeta | null {
  if (!(value instanceof Instance) || value.cls.shortName !== "StorageMeta") return null;
  const id = stateField(value.state, "checkpoint_id");
  const idText =
    typeof id === "string"
      ? id
      : id instanceof Call
        ? pathText(id.args)
        : id instanceof Instance
          ? pathText([])
          : undefined;
  const saveId = stateField(value.state, "save_id");
  const loadId = stateField(value.state, "load_id");
  return {
    checkpointId: idText ?? null,
    saveId: typeof saveId === "string" ? saveId : null,
    loadId: typeof loadId === "string" ? loadId : null,
    modules: stringList(stateField(value.state, "modules")) ?? [],
  };
}

// ---- field readers, as `pyData.ts` and `rebuild.ts` read the graph

/** `field`: an attribute from a dict state, or from the slot state of `(state, slotstate)`. */
export function stateField(state: Value | undefined, name: string): Value | undefined {
  if (state instanceof Dict) return state.get(name);
  if (Array.isArray(state)) {
    const slots = (state as Tuple)[1];
    if (slots instanceof Dict) return slots.get(name);
  }
  return undefined;
}

/** `itemsOf`: a list's or tuple's items. */
function sequenceItems(value: Value | undefined): readonly Value[] | undefined {
  if (Array.isArray(value)) return value as Tuple;
  return value instanceof List ? value.items : undefined;
}

/** `asIntTuple`: the items themselves when all are ints, else each converted by `asInt`. */
function intTuple(value: Value | undefined): number[] | undefined {
  const items = sequenceItems(value);
  if (items === undefined) return undefined;
  if (allIntegers(items)) return items as number[];
  const out: number[] = [];
  for (const item of items) {
    const n = intOf(item);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function allIntegers(items: readonly Value[]): boolean {
  for (let i = 0; i < items.length; i++) if (!Number.isInteger(items[i])) return false;
  return true;
}

function intOf(value: Value | undefined): number | undefined {
  return typeof value === "object" ? undefined : asInt(value);
}

function boolOf(value: Value | undefined): boolean | undefined {
  return typeof value === "boolean" ? value : undefined;
}

/** `asStringList`. */
function stringList(value: Value | undefined): string[] | undefined {
  const items = sequenceItems(value);
  if (!items?.every((item) => typeof item === "string")) return undefined;
  return items as string[];
}
