import { mergeExtents, tensorExtent } from "../inspect/size.js";
import { findTensors } from "../inspect/walk.js";
import { concatBytes } from "../reader/bytes.js";
import { ReaderError } from "../reader/errors.js";
import { decodeLong } from "../reader/pickle/ints.js";
import { isBoxed, type TorchStorage, type TorchTensor } from "../reader/pickle/value.js";
import { rowMajorStrides, volume } from "../reader/sharded/assemble.js";
import { elementSize } from "../reader/torch/dtypes.js";
import { applySplices, encodeInt, encodeString, type Splice, trace, withoutFrames } from "./pickleEdit.js";

/**
 * `ckpt repair --compact`: a copy whose storages hold only the bytes their tensors reach. torch.save writes
 * every storage a tensor views whole (a 16-row slice of a 512-row tensor saves all 512 rows, pytorch/pytorch
 * #53419); here each storage is cut to the ranges its tensors' elements reach, a range becoming a storage of
 * its own, and each tensor's storage offset moves with it. A tensor whose elements leave gaps or repeat in
 * its storage (a column slice, a strided view: not "non-overlapping and dense") and that is its storage's only
 * tensor is gathered instead, as `.clone()` does: its elements in row-major order, contiguous strides, offset
 * 0. Dense views keep their strides, as `.clone()` keeps them. Tensors that shared a storage still share one.
 *
 * The pickle is spliced, not rewritten, with only opcodes torch's weights_only unpickler accepts: in each
 * storage id `('storage', class, key, location, numel)` the key and numel are replaced, and the storage
 * offset after its BINPERSID. A key string the pickler memoised now memoises the new key, so any other
 * reference to that memo entry is replaced by the old key written out.
 */
export interface StoragePiece {
  /** The record key of the new storage (`data/<key>`): the old key for the first piece. */
  readonly key: string;
  /** Byte range of the old storage it holds (for a gathered piece: 0, and the bytes it is made of). */
  readonly start: number;
  readonly length: number;
  /** A gathered tensor's view of the old storage, in elements of `elementSize` bytes. */
  readonly gather?: Gather;
}

/** Where a strided view's elements are in its storage: `offset + sum(index[d] * stride[d])` elements. */
export interface Gather {
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly elementSize: number;
}

export interface CompactPlan {
  /** Old storage key -> its pieces, for the storages that shrink. */
  readonly pieces: Map<string, StoragePiece[]>;
  /** The old storages, by key, to locate their bytes. */
  readonly storages: Map<string, TorchStorage>;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
}

export interface CompactedPickle {
  readonly bytes: Uint8Array;
  readonly plan: CompactPlan;
}

function refuse(message: string): ReaderError {
  return new ReaderError("unsupported-format", `cannot compact: ${message}`);
}

/** An integer opcode at `offset`: its value and length (BININT1, BININT2, BININT, LONG1). */
function readIntOpcode(bytes: Uint8Array, offset: number): { value: number; length: number } | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[offset]) {
    case 0x4b:
      return { value: bytes[offset + 1] as number, length: 2 };
    case 0x4d:
      return { value: view.getUint16(offset + 1, true), length: 3 };
    case 0x4a:
      return { value: view.getInt32(offset + 1, true), length: 5 };
    case 0x8a: {
      const n = bytes[offset + 1] as number;
      const value = decodeLong(bytes.subarray(offset + 2, offset + 2 + n));
      return typeof value === "number" ? { value, length: 2 + n } : undefined;
    }
    default:
      return undefined;
  }
}

/** The length of an opcode that may appear in a storage id, or undefined for any other. */
function opcodeLength(bytes: Uint8Array, at: number): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[at]) {
    case 0x28: // MARK
    case 0x74: // TUPLE
    case 0x94: // MEMOIZE
    case 0x93: // STACK_GLOBAL
    case 0x4e: // NONE
      return 1;
    case 0x71: // BINPUT
    case 0x68: // BINGET
    case 0x4b: // BININT1
      return 2;
    case 0x4d: // BININT2
      return 3;
    case 0x72: // LONG_BINPUT
    case 0x6a: // LONG_BINGET
    case 0x4a: // BININT
      return 5;
    case 0x95: // FRAME
      return 9;
    case 0x58: // BINUNICODE
      return 5 + view.getUint32(at + 1, true);
    case 0x8c: // SHORT_BINUNICODE
    case 0x8a: // LONG1
      return 2 + (bytes[at + 1] as number);
    case 0x8d: // BINUNICODE8
      return 9 + Number(view.getBigUint64(at + 1, true));
    case 0x63: {
      // GLOBAL: two lines of text
      let end = bytes.indexOf(0x0a, at + 1);
      if (end < 0) return undefined;
      end = bytes.indexOf(0x0a, end + 1);
      return end < 0 ? undefined : end + 1 - at;
    }
    default:
      return undefined;
  }
}

interface PidItem {
  /** Where the opcode that pushed it starts (the first of STACK_GLOBAL's operands). */
  readonly start: number;
  /** Where that opcode ends (a memo PUT may follow). */
  readonly valueEnd: number;
  /** The memo index a BINPUT, LONG_BINPUT or MEMOIZE right after it stored it under. */
  memo?: number | undefined;
}

/** The items a storage id's MARK ... TUPLE pushes, in the span `[start, end)` BINPERSID consumes. */
function pidItems(
  bytes: Uint8Array,
  start: number,
  end: number,
  putAt: ReadonlyMap<number, number>,
): PidItem[] {
  if (bytes[start] !== 0x28) throw refuse("a storage id that is not built as MARK ... TUPLE");
  const items: PidItem[] = [];
  for (let at = start + 1; at < end; ) {
    const op = bytes[at] as number;
    const length = opcodeLength(bytes, at);
    if (length === undefined) throw refuse(`an unexpected opcode 0x${op.toString(16)} in a storage id`);
    const last = items[items.length - 1];
    if (op === 0x71 || op === 0x72 || op === 0x94) {
      if (last && last.valueEnd === at) last.memo = putAt.get(at);
    } else if (op === 0x93) {
      const operands = items.splice(-2, 2);
      items.push({ start: operands[0]?.start ?? at, valueEnd: at + 1 });
    } else if (op === 0x74) {
      break;
    } else if (op !== 0x95) {
      items.push({ start: at, valueEnd: at + length });
    }
    at += length;
  }
  return items;
}

interface Use {
  readonly storage: TorchStorage;
  readonly elementSize: number;
  readonly extents: Array<readonly [number, number]>;
}

/** The pieces each storage is cut into; storages every byte of which is reached are left out. */
function planPieces(uses: Map<string, Use>): Map<string, StoragePiece[]> {
  const pieces = new Map<string, StoragePiece[]>();
  const taken = new Set(uses.keys());
  for (const [key, use] of uses) {
    const ranges = mergeExtents(use.extents);
    const reached = ranges.reduce((sum, [s, e]) => sum + e - s, 0);
    if (reached === use.storage.sizeBytes) continue;
    const list: StoragePiece[] = ranges.map(([start, end], i) => {
      let name = key;
      if (i > 0) {
        for (let n = i; taken.has(name); n++) name = `${key}_${n}`;
        taken.add(name);
      }
      return { key: name, start, length: end - start };
    });
    // Only empty tensors view it: one empty storage.
    pieces.set(key, list.length > 0 ? list : [{ key, start: 0, length: 0 }]);
  }
  return pieces;
}

/** Each storage's tensors (distinct objects: a tied tensor reached by two paths is one) and their extents. */
function storageUses(tensors: ReadonlyArray<{ readonly tensor: TorchTensor }>) {
  const uses = new Map<string, Use>();
  const viewers = new Map<string, Set<TorchTensor>>();
  for (const { tensor } of tensors) {
    const storage = tensor.storage;
    if (!storage) continue;
    if (storage.view) throw refuse("a legacy storage view (torch <= 0.4)");
    let use = uses.get(storage.key);
    if (!use) {
      use = { storage, elementSize: elementSize(tensor.dtype), extents: [] };
      uses.set(storage.key, use);
      viewers.set(storage.key, new Set());
    }
    if (elementSize(tensor.dtype) !== use.elementSize)
      throw refuse(`storage ${storage.key} is viewed as dtypes of different sizes`);
    if (tensor.layout !== "strided") throw refuse(`storage ${storage.key} backs a ${tensor.layout} tensor`);
    viewers.get(storage.key)?.add(tensor);
    const extent = tensorExtent(tensor);
    if (extent) use.extents.push(extent);
  }
  return { uses, viewers };
}

/** Each persistent id: its storage key, and the storage offset after it when it is a tensor's storage. */
function storageOccurrences(bytes: Uint8Array, traced: ReturnType<typeof trace>) {
  return traced.persistentIds.map((p) => {
    const key = isBoxed(p.pid, "tuple") && typeof p.pid.items[2] === "string" ? p.pid.items[2] : undefined;
    const offset = bytes[p.end] === 0x51 ? readIntOpcode(bytes, p.end + 1) : undefined;
    return { ...p, key, offset };
  });
}

type Occurrence = ReturnType<typeof storageOccurrences>[number];

/** A tensor to gather: its storage's one piece, and where its stride tuple is in the pickle. */
interface GatherPlan {
  readonly piece: StoragePiece;
  readonly stride: TupleExpression;
  readonly tensor: TorchTensor;
}

/**
 * The tensors to gather: each the only tensor of its storage, pickled once, not non-overlapping and dense,
 * its gathered elements fewer than the bytes its extent keeps (an expanded view, whose elements repeat, would
 * grow), and its stride tuple where `_rebuild_tensor_v2`'s arguments put it (after the offset and the size).
 */
function gatherPlans(
  bytes: Uint8Array,
  uses: ReadonlyMap<string, Use>,
  viewers: ReadonlyMap<string, ReadonlySet<TorchTensor>>,
  occurrences: readonly Occurrence[],
  putAt: ReadonlyMap<number, number>,
): Map<string, GatherPlan> {
  const byKey = new Map<string, Occurrence[]>();
  for (const o of occurrences) {
    if (o.key === undefined) continue;
    const list = byKey.get(o.key);
    if (list) list.push(o);
    else byKey.set(o.key, [o]);
  }
  const plans = new Map<string, GatherPlan>();
  for (const [key, use] of uses) {
    const viewing = viewers.get(key);
    const found = byKey.get(key);
    if (viewing?.size !== 1 || found?.length !== 1) continue;
    const [tensor] = viewing;
    const [o] = found;
    if (!tensor || !o?.offset) continue;
    const count = volume(tensor.shape);
    const extent = tensorExtent(tensor);
    if (count === 0 || !extent || denseStrides(tensor.shape, tensor.stride)) continue;
    const length = count * use.elementSize;
    if (length >= extent[1] - extent[0]) continue;
    const size = tupleAt(bytes, o.end + 1 + o.offset.length, putAt);
    const stride = size ? tupleAt(bytes, size.end, putAt) : undefined;
    if (!stride || (stride.values && stride.values.join(",") !== tensor.stride.join(","))) continue;
    const gather = {
      offset: tensor.offset,
      shape: tensor.shape,
      stride: tensor.stride,
      elementSize: use.elementSize,
    };
    plans.set(key, { piece: { key, start: 0, length, gather }, stride, tensor });
  }
  return plans;
}

/**
 * torch's `is_non_overlapping_and_dense`: ordered by stride, each dimension of more than one element steps
 * over exactly the ones before it, so the elements fill a block of the storage without a gap or a repeat.
 */
function denseStrides(shape: readonly number[], stride: readonly number[]): boolean {
  const dims = shape.map((_, d) => d).filter((d) => (shape[d] as number) > 1);
  dims.sort((a, b) => (stride[a] as number) - (stride[b] as number));
  let expected = 1;
  for (const d of dims) {
    if (stride[d] !== expected) return false;
    expected *= shape[d] as number;
  }
  return true;
}

/** A tuple of ints in the pickle: literal (`values`) or a memo read (`get`), and the memo entry it is put in. */
interface TupleExpression {
  readonly start: number;
  /** Where the expression ends, before any PUT. */
  readonly valueEnd: number;
  /** Past the PUT, if any. */
  readonly end: number;
  readonly values: number[] | undefined;
  readonly memo: number | undefined;
}

function tupleAt(
  bytes: Uint8Array,
  start: number,
  putAt: ReadonlyMap<number, number>,
): TupleExpression | undefined {
  let at = start;
  let values: number[] | undefined;
  const op = bytes[at];
  if (op === 0x68 || op === 0x6a) {
    at += op === 0x68 ? 2 : 5; // BINGET, LONG_BINGET
  } else if (op === 0x29) {
    values = [];
    at += 1; // EMPTY_TUPLE
  } else {
    const marked = op === 0x28; // MARK ... TUPLE, else TUPLE1, TUPLE2, TUPLE3
    if (marked) at += 1;
    values = [];
    for (let n = readIntOpcode(bytes, at); n; n = readIntOpcode(bytes, at)) {
      values.push(n.value);
      at += n.length;
    }
    const close = bytes[at] as number;
    const closes = marked ? close === 0x74 : close >= 0x85 && close <= 0x87 && values.length === close - 0x84;
    if (!closes) return undefined;
    at += 1;
  }
  const valueEnd = at;
  const memo = putAt.get(at);
  if (memo !== undefined) at += opcodeLength(bytes, at) ?? 0;
  return { start, valueEnd, end: at, values, memo };
}

/** A tuple of ints with the opcodes torch's weights_only unpickler accepts. */
function encodeTuple(values: readonly number[]): Uint8Array {
  const ints = values.map(encodeInt);
  const parts =
    values.length === 0
      ? [Uint8Array.of(0x29)]
      : values.length <= 3
        ? [...ints, Uint8Array.of(0x84 + values.length)]
        : [Uint8Array.of(0x28), ...ints, Uint8Array.of(0x74)];
  return concatBytes(parts);
}

export function compactPickle(bytes: Uint8Array): CompactedPickle {
  const traced = trace(bytes);
  const walk = findTensors(traced.root);
  if (walk.truncated) throw refuse("the object graph is larger than ckpt walks");
  const { uses, viewers } = storageUses(walk.tensors);
  // A storage pickled on its own (not as a tensor's first argument) must keep every byte.
  const occurrences = storageOccurrences(bytes, traced);
  for (const o of occurrences) if (o.key !== undefined && !o.offset) uses.delete(o.key);
  const putAt = new Map(traced.puts.map((p) => [p.offset, p.index]));
  const gathered = gatherPlans(bytes, uses, viewers, occurrences, putAt);
  const pieces = planPieces(new Map([...uses].filter(([key]) => !gathered.has(key))));
  for (const [key, plan] of gathered) pieces.set(key, [plan.piece]);

  const splices: Splice[] = [];
  const replacedAt = new Set<number>();
  /** Memo entries whose PUT now stores another value: what each GET of them must read instead. */
  const memoChanged = new Map<number, Uint8Array>();
  for (const o of occurrences) {
    const list = o.key === undefined ? undefined : pieces.get(o.key);
    const use = o.key === undefined ? undefined : uses.get(o.key);
    if (!list || !use || !o.offset || o.key === undefined) continue;
    const at = o.offset.value * use.elementSize;
    const piece = list.find((p) => at >= p.start && at < p.start + p.length);
    const target = piece ?? (list[0] as StoragePiece);
    // A gathered tensor's elements start its new storage.
    const newOffset = piece && !piece.gather ? (at - piece.start) / use.elementSize : 0;
    const storageElement = elementSize(use.storage.dtype);
    if (target.length % storageElement !== 0) throw refuse(`storage ${o.key} would be cut inside an element`);
    const items = pidItems(bytes, o.start, o.end, putAt);
    const key = items[2];
    const numel = items[4];
    if (items.length !== 5 || !key || !numel || !readIntOpcode(bytes, numel.start))
      throw refuse("a storage id that is not ('storage', class, key, location, numel)");
    splices.push({ start: key.start, end: key.valueEnd, bytes: encodeString(target.key) });
    replacedAt.add(key.start);
    if (key.memo !== undefined) memoChanged.set(key.memo, encodeString(o.key));
    splices.push({
      start: numel.start,
      end: numel.valueEnd,
      bytes: encodeInt(target.length / storageElement),
    });
    splices.push({ start: o.end + 1, end: o.end + 1 + o.offset.length, bytes: encodeInt(newOffset) });
  }
  for (const { stride, tensor } of gathered.values()) {
    splices.push({
      start: stride.start,
      end: stride.valueEnd,
      bytes: encodeTuple(rowMajorStrides(tensor.shape)),
    });
    replacedAt.add(stride.start);
    if (stride.memo !== undefined) memoChanged.set(stride.memo, encodeTuple(tensor.stride));
  }
  for (const get of traced.gets) {
    const original = memoChanged.get(get.index);
    if (original === undefined || replacedAt.has(get.offset)) continue;
    const length = opcodeLength(bytes, get.offset);
    if (length === undefined) throw refuse(`an unexpected memo reference at byte ${get.offset}`);
    splices.push({ start: get.offset, end: get.offset + length, bytes: original });
  }

  let bytesBefore = 0;
  let bytesAfter = 0;
  const storages = new Map<string, TorchStorage>();
  for (const [key, use] of uses) {
    storages.set(key, use.storage);
    bytesBefore += use.storage.sizeBytes;
    const list = pieces.get(key);
    bytesAfter += list ? list.reduce((sum, p) => sum + p.length, 0) : use.storage.sizeBytes;
  }
  return {
    bytes: applySplices(bytes, withoutFrames(traced, splices)),
    plan: { pieces, storages, bytesBefore, bytesAfter },
  };
}
