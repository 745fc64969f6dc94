import { latin1 } from "../bytes.js";
import type { CallVia, PickleHooks } from "../pickle/machine.js";
import {
  isBoxed,
  type PyGlobal,
  type PyValue,
  pyList,
  type Quantization,
  qualifiedName,
  type TensorLayout,
  type TorchStorage,
  type TorchTensor,
} from "../pickle/value.js";
import { DimsCache } from "./dims.js";
import { dtypeFromGlobal, elementSize, storageClassDtype } from "./dtypes.js";
import type { StorageTable } from "./idMap.js";

/**
 * torch's rebuild functions (`torch/_utils.py`, `torch/_tensor.py`) modelled as data: each takes the arguments
 * the pickle passes and returns the `TorchTensor` torch would build, minus the bytes. See
 * `pytorch-formats.md` section 3.4 for the argument lists.
 */

export interface StorageRequest {
  readonly key: string;
  readonly dtype: string;
  readonly device: string;
  readonly numel: number;
  /** Byte offset of the BINPERSID opcode, for error messages. */
  readonly offset: number;
  /** Legacy `view_metadata`: this storage is `numel` elements of the root storage, from element `offset`. */
  readonly view?: { readonly key: string; readonly offset: number; readonly numel: number };
}

/** Supplied by each container layout (zip, legacy, TorchScript): turns a persistent id into a storage. */
export type StorageResolver = (request: StorageRequest) => TorchStorage;

/**
 * The usual resolver: one `TorchStorage` per key (views of one storage share the object, as in torch), its key
 * prefixed with `keyPrefix` (TorchScript's `constants/` namespace). `storages` collects them for later checks.
 */
export function cachingStorageResolver(storages: StorageTable, keyPrefix = ""): StorageResolver {
  return (request) => {
    const { view } = request;
    const id = view ? `${request.key}/${view.key}` : request.key;
    const cached = storages.get(id);
    if (cached) return cached;
    const numel = view ? view.numel : request.numel;
    // Built without spreading: a 200,000-tensor state dict names 200,000 storages.
    const storage: TorchStorage = view
      ? {
          kind: "storage",
          key: keyPrefix + view.key,
          dtype: request.dtype,
          device: request.device,
          numel,
          sizeBytes: numel * elementSize(request.dtype),
          view: { root: request.key, offset: view.offset },
        }
      : {
          kind: "storage",
          key: keyPrefix === "" ? request.key : keyPrefix + request.key,
          dtype: request.dtype,
          device: request.device,
          numel,
          sizeBytes: numel * elementSize(request.dtype),
        };
    storages.add(id, storage);
    return storage;
  };
}

/** A Python int (or bool) as a JS number, when it is one that fits exactly. */
export function asInt(value: PyValue | undefined): number | undefined {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (
    typeof value === "bigint" &&
    value <= BigInt(Number.MAX_SAFE_INTEGER) &&
    value >= -BigInt(Number.MAX_SAFE_INTEGER)
  ) {
    return Number(value);
  }
  return undefined;
}

function asFloat(value: PyValue | undefined): number | undefined {
  if (isBoxed(value, "float")) return value.value;
  return asInt(value);
}

/** A tuple or list of ints (a `torch.Size`, a stride), or `undefined` when it is not one. */
export function asIntTuple(value: PyValue | undefined): number[] | undefined {
  if (!isBoxed(value, "tuple") && !isBoxed(value, "list")) return undefined;
  // Sizes and strides are small ints: share the tuple's items rather than copy them (one array per tensor
  // fewer, which a 200,000-tensor state dict notices). A list is copied: a later APPEND could still grow it.
  if (value.items.every(Number.isInteger))
    return value.kind === "tuple" ? (value.items as number[]) : [...(value.items as number[])];
  const out: number[] = [];
  for (const item of value.items) {
    const n = asInt(item);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}

function asTensor(value: PyValue | undefined): TorchTensor | undefined {
  return isBoxed(value, "tensor") ? value : undefined;
}

function dtypeArg(value: PyValue | undefined): string | undefined {
  return isBoxed(value, "global") ? dtypeFromGlobal(value.module, value.name) : undefined;
}

/**
 * Whether a persistent id names a torch storage, as torch's `persistent_load` checks it (`pid[0] ==
 * "storage"`): anything else makes torch.load fail.
 */
export function namesStorage(pid: PyValue): boolean {
  return isStorageTag(isBoxed(pid, "tuple") ? pid.items[0] : pid);
}

/**
 * Whether a persistent id is a legacy whole-module save's `("module", cls, source_file, source)`: torch's
 * legacy `persistent_load` returns `cls` for it (the zip format's rejects it).
 */
export function namesModule(pid: PyValue): boolean {
  return moduleClassOf(pid) !== undefined;
}

/** The class a legacy module id carries (what torch's legacy persistent_load returns for it). */
export function moduleClassOf(pid: PyValue): PyValue | undefined {
  return isBoxed(pid, "tuple") && isTag(pid.items[0], "module") ? pid.items[1] : undefined;
}

/** Whether `torch.load` accepts the persistent id: storages always, module classes in the legacy format. */
export function torchAcceptsPersistentId(pid: PyValue, legacy: boolean): boolean {
  return namesStorage(pid) || (legacy && namesModule(pid));
}

/** Python's `pid[0] == tag`, where protocol-2 pickles written with `encoding='bytes'` may carry bytes. */
function isTag(value: PyValue | undefined, tag: string): boolean {
  if (value === tag) return true;
  return isBoxed(value, "bytes") && latin1(value.value) === tag;
}

function isStorageTag(value: PyValue | undefined): boolean {
  return isTag(value, "storage");
}

interface TensorParts {
  dtype: string;
  shape: number[];
  stride: number[];
  offset: number;
  storage: TorchStorage | null;
  requiresGrad: boolean;
  rebuild: string;
  layout?: TensorLayout;
  quantization?: Quantization;
  sparse?: { indices: TorchTensor; values: TorchTensor };
}

function tensor(parts: TensorParts): TorchTensor {
  return {
    kind: "tensor",
    dtype: parts.dtype,
    shape: parts.shape,
    stride: parts.stride,
    offset: parts.offset,
    storage: parts.storage,
    requiresGrad: parts.requiresGrad,
    parameter: false,
    layout: parts.layout ?? "strided",
    quantization: parts.quantization,
    sparse: parts.sparse,
    rebuild: parts.rebuild,
    pythonState: undefined,
    subclass: undefined,
  };
}

/** `_rebuild_tensor` / `_v2` / `_v3` / `_rebuild_qtensor` share (storage, offset, size, stride, ...). */
function stridedTensor(
  dims: DimsCache,
  name: string,
  args: PyValue[],
  dtypeOverride?: string,
  quantization?: Quantization,
  requiresGradAt = 4,
): TorchTensor | undefined {
  const storage = args[0];
  const offset = asInt(args[1]);
  const shape = asIntTuple(args[2]);
  const stride = asIntTuple(args[3]);
  if (!isBoxed(storage, "storage") || offset === undefined || shape === undefined || stride === undefined) {
    return undefined;
  }
  // The common case of every state dict, built directly (no parts object): one object per tensor, with none
  // of the fields rare tensors add (a quantized tensor's are added below, the Python state's by the callers).
  const tensor: TorchTensor = {
    kind: "tensor",
    dtype: dtypeOverride ?? storage.dtype,
    shape: dims.intern(shape),
    stride: dims.intern(stride),
    offset,
    storage,
    requiresGrad: args[requiresGradAt] === true,
    parameter: false,
    layout: "strided",
    rebuild: name,
  };
  return quantization ? { ...tensor, quantization } : tensor;
}

function quantizationOf(params: PyValue | undefined): Quantization | undefined {
  if (!isBoxed(params, "tuple")) return undefined;
  const [scheme, a, b, c] = params.items;
  if (!isBoxed(scheme, "global") || scheme.module !== "torch") return undefined;
  switch (scheme.name) {
    case "per_tensor_affine":
    case "per_tensor_symmetric": {
      const scale = asFloat(a);
      const zeroPoint = asInt(b);
      if (scale === undefined || zeroPoint === undefined) return undefined;
      return { scheme: scheme.name, scale, zeroPoint };
    }
    case "per_channel_affine":
    case "per_channel_symmetric":
    case "per_channel_affine_float_qparams": {
      const scales = asTensor(a);
      const zeroPoints = asTensor(b);
      const axis = asInt(c);
      if (!scales || !zeroPoints || axis === undefined) return undefined;
      return { scheme: scheme.name, scales, zeroPoints, axis };
    }
    default:
      return undefined;
  }
}

const SPARSE_LAYOUTS: Record<string, TensorLayout> = {
  "torch.sparse_coo": "sparse_coo",
  "torch.sparse_csr": "sparse_csr",
  "torch.sparse_csc": "sparse_csc",
  "torch.sparse_bsr": "sparse_bsr",
  "torch.sparse_bsc": "sparse_bsc",
};

function sparseTensor(
  name: string,
  layoutArg: PyValue | undefined,
  data: PyValue | undefined,
): TorchTensor | undefined {
  const layout = typeof layoutArg === "string" ? SPARSE_LAYOUTS[layoutArg] : undefined;
  if (!layout || !isBoxed(data, "tuple")) return undefined;
  // COO: (indices, values, size); compressed layouts: (compressed_indices, plain_indices, values, size).
  const coo = layout === "sparse_coo";
  const [first, second, third, fourth] = data.items;
  const indices = coo ? asTensor(first) : undefined;
  const values = asTensor(coo ? second : third);
  const shape = asIntTuple(coo ? third : fourth);
  if (!values || !shape || (coo && !indices)) return undefined;
  return tensor({
    dtype: values.dtype,
    shape,
    stride: [],
    offset: 0,
    storage: null,
    requiresGrad: false,
    rebuild: name,
    layout,
    ...(indices ? { sparse: { indices, values } } : {}),
  });
}

/** Models one call; `undefined` means "not a torch function we model": the caller keeps an inert object. */
function callTorch(
  dims: DimsCache,
  callable: PyGlobal,
  args: PyValue[],
  via: CallVia,
  offset: number,
): PyValue | undefined {
  const name = qualifiedName(callable);
  switch (name) {
    case "torch._utils._rebuild_tensor":
      return stridedTensor(dims, name, args, undefined, undefined, 99);
    case "torch._utils._rebuild_tensor_v2":
      return stridedTensor(dims, name, args);
    case "torch._utils._rebuild_tensor_v3": {
      const dtype = dtypeArg(args[6]);
      return dtype === undefined ? undefined : stridedTensor(dims, name, args, dtype);
    }
    case "torch._utils._rebuild_qtensor": {
      const quantization = quantizationOf(args[4]);
      return quantization === undefined
        ? undefined
        : stridedTensor(dims, name, args, undefined, quantization, 5);
    }
    case "torch._utils._rebuild_parameter":
    case "torch._utils._rebuild_parameter_with_state": {
      const data = asTensor(args[0]);
      if (!data) return undefined;
      data.parameter = true;
      data.requiresGrad = args[1] === true;
      if (name.endsWith("_with_state") && args[3] !== undefined && !isEmptyState(args[3]))
        data.pythonState = args[3];
      return data;
    }
    case "torch.nn.parameter.Parameter": {
      // torch <= 0.3 pickled a Parameter as Parameter(data) (REDUCE), then BUILD (requires_grad, volatile, hooks).
      const data = asTensor(args[0]);
      if (!data) return undefined;
      data.parameter = true;
      data.requiresGrad = args[1] === undefined || args[1] === true;
      return data;
    }
    case "torch.autograd.variable.Variable": {
      const data = asTensor(args[0]);
      if (!data) return undefined;
      data.requiresGrad = args[1] === true;
      return data;
    }
    case "torch._utils._rebuild_sparse_tensor":
    case "torch._utils._rebuild_sparse_csr_tensor":
      return sparseTensor(name, args[0], args[1]);
    case "torch._utils._rebuild_meta_tensor_no_storage": {
      const dtype = dtypeArg(args[0]);
      const shape = asIntTuple(args[1]);
      const stride = asIntTuple(args[2]);
      if (!dtype || !shape || !stride) return undefined;
      return tensor({
        dtype,
        shape,
        stride,
        offset: 0,
        storage: null,
        requiresGrad: args[3] === true,
        rebuild: name,
      });
    }
    case "torch._utils._rebuild_wrapper_subclass": {
      const dtype = dtypeArg(args[1]);
      const shape = asIntTuple(args[2]);
      const stride = asIntTuple(args[3]);
      const storageOffset = asInt(args[4]);
      if (!dtype || !shape || !stride || storageOffset === undefined) return undefined;
      const result = tensor({
        dtype,
        shape,
        stride,
        offset: storageOffset,
        storage: null,
        requiresGrad: args[7] === true,
        rebuild: name,
      });
      if (isBoxed(args[0], "global")) result.subclass = qualifiedName(args[0]);
      return result;
    }
    case "torch._utils._rebuild_device_tensor_from_cpu_tensor": {
      const data = asTensor(args[0]);
      if (!data) return undefined;
      data.requiresGrad = args[3] === true;
      return data;
    }
    case "torch._tensor._rebuild_from_type_v2":
    case "torch._tensor._rebuild_from_type": {
      // (func, new_type, args, state): the tensor is func(*args); new_type says which Python class wraps it.
      const [func, newType, innerArgs, state] = args;
      if (!isBoxed(func, "global") || !isBoxed(innerArgs, "tuple")) return undefined;
      const inner = callTorch(dims, func, innerArgs.items, via, offset);
      if (!isBoxed(inner, "tensor")) return undefined;
      if (isBoxed(newType, "global")) {
        const typeName = qualifiedName(newType);
        if (typeName === "torch.nn.parameter.Parameter") inner.parameter = true;
        else if (typeName !== "torch.Tensor") inner.subclass = typeName;
      }
      if (state !== undefined && !isEmptyState(state)) inner.pythonState = state;
      return inner;
    }
    case "torch.Size":
      // A Size is a tuple subclass equal to its argument: the argument itself stands for it (tuples are
      // immutable), one allocation fewer for each of a DCP `.metadata`'s 400,000 chunk offsets and sizes.
      return isBoxed(args[0], "tuple") ? args[0] : undefined;
    case "torch.serialization._get_layout":
      return typeof args[0] === "string" ? args[0] : undefined;
    case "torch.jit._pickle.restore_type_tag":
      return args[0];
    case "torch.jit._pickle.build_intlist":
    case "torch.jit._pickle.build_doublelist":
    case "torch.jit._pickle.build_boollist":
    case "torch.jit._pickle.build_tensorlist":
      return isBoxed(args[0], "list") ? args[0] : pyList([]);
    default:
      return undefined;
  }
}

/** A legacy storage id's `view_metadata`: `(view_key, offset, size)`, or None for a whole storage. */
function storageView(value: PyValue | undefined): StorageRequest["view"] {
  if (!isBoxed(value, "tuple")) return undefined;
  const [key, offset, size] = value.items;
  const at = asInt(offset);
  const numel = asInt(size);
  if (typeof key !== "string" || at === undefined || numel === undefined) return undefined;
  return { key, offset: at, numel };
}

function isEmptyState(state: PyValue): boolean {
  if (state === null) return true;
  if (isBoxed(state, "dict")) return state.keys.length === 0;
  if (isBoxed(state, "tuple")) return state.items.every(isEmptyState);
  return false;
}

/**
 * Pickle hooks for one torch pickle: persistent ids become storages via `resolveStorage`, rebuild calls become
 * tensors. Legacy whole-module saves also persist `("module", cls, file, source)`: torch returns the class.
 * The offsets of persistent ids that name no storage are added to `foreignIds`.
 */
export function torchPickleHooks(
  resolveStorage: StorageResolver,
  foreignIds: number[] = [],
  options: { readonly legacy?: boolean } = {},
): PickleHooks {
  const dims = new DimsCache();
  return {
    persistentLoad(pid: PyValue, offset: number): PyValue {
      if (isBoxed(pid, "tuple")) {
        const { items } = pid;
        const tag = items[0];
        // torch's own ids: ('storage', <Storage class>, key, location, numel), by far the most common.
        if (tag === "storage") {
          const storageType = items[1];
          const key = items[2];
          const numel = items[4];
          const location = items[3];
          if (
            items.length === 5 &&
            typeof key === "string" &&
            typeof numel === "number" &&
            Number.isInteger(numel) &&
            isBoxed(storageType, "global")
          ) {
            const dtype = storageClassDtype(storageType.module, storageType.name);
            if (dtype !== undefined)
              return resolveStorage({
                key,
                dtype,
                device: typeof location === "string" ? location : "cpu",
                numel,
                offset,
              });
          }
        }
      }
      return slowPersistentLoad(pid, offset);
    },
    call: (callable, args, via, offset) => callTorch(dims, callable, args, via, offset),
  };

  function slowPersistentLoad(pid: PyValue, offset: number): PyValue {
    if (!torchAcceptsPersistentId(pid, options.legacy === true)) foreignIds.push(offset);
    if (isBoxed(pid, "tuple")) {
      const [tag, storageType, key, location, numel, viewMetadata] = pid.items;
      if (isStorageTag(tag)) {
        const dtype = isBoxed(storageType, "global")
          ? storageClassDtype(storageType.module, storageType.name)
          : undefined;
        const count = asInt(numel);
        const keyText = typeof key === "string" ? key : typeof key === "number" ? String(key) : undefined;
        if (dtype !== undefined && count !== undefined && keyText !== undefined) {
          const view = storageView(viewMetadata);
          return resolveStorage({
            key: keyText,
            dtype,
            device: typeof location === "string" ? location : "cpu",
            numel: count,
            offset,
            ...(view ? { view } : {}),
          });
        }
      }
      const moduleClass = moduleClassOf(pid);
      if (moduleClass !== undefined) return moduleClass;
    }
    return { kind: "persistent", id: pid };
  }
}
