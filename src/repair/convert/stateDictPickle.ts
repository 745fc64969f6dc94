import { contiguousStride } from "../../reader/open.js";
import { encodeInt, encodeString } from "../pickleEdit.js";

/**
 * The `data.pkl` torch.save (protocol 2) writes for a state dict of tensors, each in a storage record of
 * its own: `collections.OrderedDict()` filled by SETITEMS, every tensor rebuilt by
 * `torch._utils._rebuild_tensor_v2(persistent_id, offset, size, stride, requires_grad, OrderedDict())`, or
 * `_rebuild_tensor_v3(..., dtype)` over an UntypedStorage for the dtypes that have no typed storage class
 * (float8, uint16/32/64), as torch does. Only opcodes `torch.load(weights_only=True)` implements.
 */
export interface PickledTensor {
  readonly name: string;
  /** The `data/<key>` record that holds its bytes. */
  readonly storageKey: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Elements in the storage (bytes, for an UntypedStorage). */
  readonly storageNumel: number;
}

/** dtype -> the typed storage class torch names in persistent ids (`torch/storage.py`). */
const STORAGE_CLASS: Readonly<Record<string, string>> = {
  float64: "DoubleStorage",
  float32: "FloatStorage",
  float16: "HalfStorage",
  bfloat16: "BFloat16Storage",
  int64: "LongStorage",
  int32: "IntStorage",
  int16: "ShortStorage",
  int8: "CharStorage",
  uint8: "ByteStorage",
  bool: "BoolStorage",
  complex128: "ComplexDoubleStorage",
  complex64: "ComplexFloatStorage",
};

/** Whether torch saves this dtype through a typed storage class (else UntypedStorage and `_v3`). */
export function hasTypedStorage(dtype: string): boolean {
  return STORAGE_CLASS[dtype] !== undefined;
}

const PROTO_2 = [0x80, 0x02];
const MARK = 0x28;
const TUPLE = 0x74;
const EMPTY_TUPLE = 0x29;
const REDUCE = 0x52;
const SETITEMS = 0x75;
const BINPERSID = 0x51;
const NEWFALSE = 0x89;
const STOP = 0x2e;
const BINPUT = 0x71;
const BINGET = 0x68;
const LONG_BINPUT = 0x72;
const LONG_BINGET = 0x6a;

/** Globals are pickled once and memoized, as Python's pickler does; later uses are memo reads. */
class Encoder {
  private readonly parts: Uint8Array[] = [];
  private readonly memo = new Map<string, number>();

  bytes(...values: number[]): void {
    this.parts.push(Uint8Array.from(values));
  }

  raw(bytes: Uint8Array): void {
    this.parts.push(bytes);
  }

  global(module: string, name: string): void {
    const key = `${module}\n${name}`;
    const at = this.memo.get(key);
    if (at !== undefined) {
      this.memoOp(at < 256 ? BINGET : LONG_BINGET, at);
      return;
    }
    this.raw(Buffer.from(`c${module}\n${name}\n`, "utf8"));
    const index = this.memo.size;
    this.memo.set(key, index);
    this.memoOp(index < 256 ? BINPUT : LONG_BINPUT, index);
  }

  private memoOp(op: number, index: number): void {
    if (op === BINGET || op === BINPUT) this.bytes(op, index);
    else {
      const out = Buffer.alloc(5);
      out[0] = op;
      out.writeUInt32LE(index, 1);
      this.raw(out);
    }
  }

  ints(values: readonly number[]): void {
    this.bytes(MARK);
    for (const v of values) this.raw(encodeInt(v));
    this.bytes(TUPLE);
  }

  emptyOrderedDict(): void {
    this.global("collections", "OrderedDict");
    this.bytes(EMPTY_TUPLE, REDUCE);
  }

  result(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

function tensor(e: Encoder, t: PickledTensor): void {
  const typed = STORAGE_CLASS[t.dtype];
  e.global("torch._utils", typed ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
  e.bytes(MARK);
  // The persistent id: ('storage', <storage class>, key, location, numel).
  e.bytes(MARK);
  e.raw(encodeString("storage"));
  if (typed) e.global("torch", typed);
  else e.global("torch.storage", "UntypedStorage");
  e.raw(encodeString(t.storageKey));
  e.raw(encodeString("cpu"));
  e.raw(encodeInt(t.storageNumel));
  e.bytes(TUPLE, BINPERSID);
  e.raw(encodeInt(0)); // storage offset
  e.ints(t.shape);
  e.ints(contiguousStride([...t.shape]));
  e.bytes(NEWFALSE); // requires_grad
  e.emptyOrderedDict(); // backward hooks
  if (!typed) e.global("torch", t.dtype);
  e.bytes(TUPLE, REDUCE);
}

/** The pickle of an OrderedDict mapping each name to its tensor, in order. */
export function stateDictPickle(tensors: readonly PickledTensor[]): Uint8Array {
  const e = new Encoder();
  e.bytes(...PROTO_2);
  e.emptyOrderedDict();
  // SETITEMS in batches of 1,000, as Python's pickler batches them.
  for (let i = 0; i < tensors.length; i += 1000) {
    e.bytes(MARK);
    for (const t of tensors.slice(i, i + 1000)) {
      e.raw(encodeString(t.name));
      tensor(e, t);
    }
    e.bytes(SETITEMS);
  }
  e.bytes(STOP);
  return e.result();
}
