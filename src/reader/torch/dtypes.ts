/**
 * torch dtypes: names, element sizes, and the storage classes that name them in pickles
 * (`pytorch-formats.md` section 3.3; `torch/storage.py` `_dtype_to_storage_type_map`, c10 ScalarType).
 */

/** Bytes per element. Sub-byte packed types count whole bytes per stored element, as torch does. */
export const ELEMENT_SIZE: Readonly<Record<string, number>> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
  complex128: 16,
  complex64: 8,
  complex32: 4,
  qint8: 1,
  quint8: 1,
  qint32: 4,
  quint4x2: 1,
  quint2x4: 1,
  float8_e5m2: 1,
  float8_e4m3fn: 1,
  float8_e5m2fnuz: 1,
  float8_e4m3fnuz: 1,
  float8_e8m0fnu: 1,
  float4_e2m1fn_x2: 1,
  bits8: 1,
  bits16: 2,
  bits1x8: 1,
  bits2x4: 1,
  bits4x2: 1,
};

/** `torch.<X>Storage` class names (legacy typed storages) to dtype. */
const LEGACY_STORAGE: Readonly<Record<string, string>> = {
  DoubleStorage: "float64",
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  ComplexDoubleStorage: "complex128",
  ComplexFloatStorage: "complex64",
  QInt8Storage: "qint8",
  QUInt8Storage: "quint8",
  QInt32Storage: "qint32",
  QUInt4x2Storage: "quint4x2",
  QUInt2x4Storage: "quint2x4",
};

/** c10 ScalarType names, which the TorchScript pickler uses as `torch <Name>Storage`. */
const SCALAR_TYPE: Readonly<Record<string, string>> = {
  Byte: "uint8",
  Char: "int8",
  Short: "int16",
  Int: "int32",
  Long: "int64",
  Half: "float16",
  Float: "float32",
  Double: "float64",
  ComplexHalf: "complex32",
  ComplexFloat: "complex64",
  ComplexDouble: "complex128",
  Bool: "bool",
  QInt8: "qint8",
  QUInt8: "quint8",
  QInt32: "qint32",
  BFloat16: "bfloat16",
  QUInt4x2: "quint4x2",
  QUInt2x4: "quint2x4",
  Bits1x8: "bits1x8",
  Bits2x4: "bits2x4",
  Bits4x2: "bits4x2",
  Bits8: "bits8",
  Bits16: "bits16",
  Float8_e5m2: "float8_e5m2",
  Float8_e4m3fn: "float8_e4m3fn",
  Float8_e5m2fnuz: "float8_e5m2fnuz",
  Float8_e4m3fnuz: "float8_e4m3fnuz",
  UInt16: "uint16",
  UInt32: "uint32",
  UInt64: "uint64",
  Float8_e8m0fnu: "float8_e8m0fnu",
  Float4_e2m1fn_x2: "float4_e2m1fn_x2",
};

/** Python's aliases for dtype objects (`torch.float` is `torch.float32`), which GLOBAL may name. */
const DTYPE_ALIASES: Readonly<Record<string, string>> = {
  float: "float32",
  double: "float64",
  half: "float16",
  long: "int64",
  int: "int32",
  short: "int16",
  cfloat: "complex64",
  cdouble: "complex128",
  chalf: "complex32",
};

/**
 * The element dtype of a storage class named `module.name` in a persistent id, or `undefined` when the name is
 * not a storage class. UntypedStorage holds raw bytes (`uint8`).
 */
export function storageClassDtype(module: string, name: string): string | undefined {
  if (module !== "torch" && module !== "torch.cuda" && module !== "torch.storage") return undefined;
  if (name === "UntypedStorage" || name === "_UntypedStorage" || name === "TypedStorage") return "uint8";
  if (!name.endsWith("Storage")) return undefined;
  const legacy = LEGACY_STORAGE[name];
  if (legacy !== undefined) return legacy;
  return SCALAR_TYPE[name.slice(0, -"Storage".length)];
}

/** The dtype named by a `torch.<dtype>` global (as `_rebuild_tensor_v3` passes it), or `undefined`. */
export function dtypeFromGlobal(module: string, name: string): string | undefined {
  if (module !== "torch") return undefined;
  const resolved = DTYPE_ALIASES[name] ?? name;
  return ELEMENT_SIZE[resolved] !== undefined ? resolved : undefined;
}

export function elementSize(dtype: string): number {
  return ELEMENT_SIZE[dtype] ?? 1;
}
