/**
 * What a global named by a pickle is, for security: allowlist first (as torch's weights_only unpickler
 * decides), then known-dangerous primitives, then known framework classes; anything else is unknown. Sources:
 * `peers-and-security.md` sections 3.1-3.4 (torch/_weights_only_unpickler.py, picklescan's and fickling's
 * lists, published bypasses).
 */
export type GlobalClass = "safe" | "framework" | "unknown" | "dangerous";

/** `torch.load(weights_only=True)` accepts exactly these (torch 2.6+ defaults, plus dtypes and storages). */
const WEIGHTS_ONLY_ALLOWED = new Set([
  "collections.OrderedDict",
  "collections.Counter",
  "torch.nn.parameter.Parameter",
  "torch.serialization._get_layout",
  "torch.Size",
  "torch.Tensor",
  "torch.device",
  "_codecs.encode",
  "builtins.bytearray",
  "builtins.set",
  "builtins.complex",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch._utils._rebuild_qtensor",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
  "torch._utils._rebuild_sparse_tensor",
  "torch._utils._rebuild_meta_tensor_no_storage",
  "torch._utils._rebuild_nested_tensor",
  "torch._utils._rebuild_wrapper_subclass",
  "torch._utils._rebuild_device_tensor_from_numpy",
  "torch._utils._rebuild_device_tensor_from_cpu_tensor",
  "torch._tensor._rebuild_from_type_v2",
  "torch.per_tensor_affine",
  "torch.per_tensor_symmetric",
  "torch.per_channel_affine",
  "torch.per_channel_symmetric",
  "torch.per_channel_affine_float_qparams",
]);

const TORCH_DTYPES = new Set([
  "float64",
  "float32",
  "float16",
  "bfloat16",
  "int64",
  "int32",
  "int16",
  "int8",
  "uint8",
  "uint16",
  "uint32",
  "uint64",
  "bool",
  "complex128",
  "complex64",
  "complex32",
  "qint8",
  "quint8",
  "qint32",
  "quint4x2",
  "quint2x4",
  "float8_e5m2",
  "float8_e4m3fn",
  "float8_e5m2fnuz",
  "float8_e4m3fnuz",
  "float8_e8m0fnu",
  "float4_e2m1fn_x2",
  "bits8",
  "bits16",
  "bits1x8",
  "bits2x4",
  "bits4x2",
  "float",
  "double",
  "half",
  "long",
  "int",
  "short",
  "cfloat",
  "cdouble",
  "chalf",
]);

/** Whether torch's weights_only unpickler would accept this global. */
export function allowedByWeightsOnly(module: string, name: string): boolean {
  const full = `${module}.${name}`;
  if (WEIGHTS_ONLY_ALLOWED.has(full)) return true;
  if (
    (module === "torch" || module === "torch.cuda") &&
    (name.endsWith("Storage") || name.endsWith("Tensor"))
  )
    return true;
  if (module === "torch.storage" && (name === "UntypedStorage" || name === "TypedStorage")) return true;
  return module === "torch" && TORCH_DTYPES.has(name);
}

/** Modules whose globals execute code, import, touch files, processes or the network, or resolve other names. */
const DANGEROUS_MODULES = [
  "os",
  "posix",
  "nt",
  "subprocess",
  "sys",
  "socket",
  "shutil",
  "importlib",
  "runpy",
  "pickle",
  "_pickle",
  "dill",
  "cloudpickle",
  "marshal",
  "ctypes",
  "code",
  "codeop",
  "pty",
  "asyncio",
  "multiprocessing",
  "webbrowser",
  "urllib",
  "http",
  "ftplib",
  "smtplib",
  "telnetlib",
  "requests",
  "httpx",
  "pip",
  "ensurepip",
  "venv",
  "pkgutil",
  "pydoc",
  "cProfile",
  "profile",
  "trace",
  "timeit",
  "doctest",
  "idlelib",
  "lib2to3",
  "_io",
  "io",
  "tempfile",
  "glob",
  "signal",
  "_posixsubprocess",
  "pdb",
  "bdb",
  "imaplib",
  "poplib",
  "xmlrpc",
  "platform",
  "_osx_support",
  "_aix_support",
  "_pyrepl",
  "numpy.f2py",
  "numpy.testing",
  "numpy.distutils",
  "distutils",
  "setuptools",
  "torch.utils.collect_env",
  "torch.utils.bottleneck",
  "torch._dynamo",
  "torch.fx.experimental.symbolic_shapes",
  "torch.utils.data.datapipes",
  "torch.jit.unsupported_tensor_ops",
  "torch._inductor",
  "mlflow",
  "pandas.io",
];

const DANGEROUS_NAMES = new Set([
  "builtins.eval",
  "builtins.exec",
  "builtins.compile",
  "builtins.open",
  "builtins.__import__",
  "builtins.getattr",
  "builtins.setattr",
  "builtins.delattr",
  "builtins.globals",
  "builtins.locals",
  "builtins.vars",
  "builtins.breakpoint",
  "builtins.input",
  "builtins.help",
  "builtins.exit",
  "builtins.quit",
  "builtins.memoryview",
  "builtins.type",
  "operator.attrgetter",
  "operator.itemgetter",
  "operator.methodcaller",
  "functools.partial",
  "functools.reduce",
  "types.CodeType",
  "types.FunctionType",
  "types.MethodType",
  "torch.load",
  "torch.serialization.load",
  "torch.storage._load_from_bytes",
  "torch.hub.load",
  "torch.jit.load",
  "numpy.load",
  "numpy.loadtxt",
  "numpy.fromfile",
  "logging.FileHandler",
  "uuid._get_command_stdout",
  "transformers.AutoModel.from_pretrained",
]);

/** Training frameworks and libraries whose classes appear in honest checkpoints: not code execution. */
const FRAMEWORK_MODULES = [
  "numpy",
  "argparse",
  "pathlib",
  "collections",
  "datetime",
  "decimal",
  "fractions",
  "enum",
  "uuid",
  "re",
  "torch.nn",
  "torch.optim",
  "torch.amp",
  "torch.cuda.amp",
  "torch.distributed.checkpoint",
  "torch.jit._pickle",
  "torch.utils.data",
  "torch.ao",
  "torch.quantization",
  "__torch__",
  "lightning",
  "pytorch_lightning",
  "lightning_fabric",
  "transformers",
  "accelerate",
  "peft",
  "diffusers",
  "mmengine",
  "mmcv",
  "mmdet",
  "timm",
  "ultralytics",
  "detectron2",
  "fvcore",
  "yacs",
  "omegaconf",
  "deepspeed",
  "ltr",
  "pytracking",
  "trackron",
  "torchvision",
  "torchaudio",
  "torchmetrics",
  "sklearn",
  "scipy",
  "pandas",
  "hydra",
  "wandb",
];

function underModule(module: string, roots: readonly string[]): boolean {
  return roots.some((root) => module === root || module.startsWith(`${root}.`));
}

export function classifyGlobal(
  module: string,
  name: string,
  options: { dynamic?: boolean } = {},
): GlobalClass {
  if (options.dynamic) return "dangerous"; // the name is computed at load time: anything at all
  const full = `${module}.${name}`;
  // Dotted names (protocol 4+ resolves `print.__self__.exec`) are attribute walks: never trust them.
  const inMemoryBuffer = (module === "io" || module === "_io") && (name === "BytesIO" || name === "StringIO");
  if (
    !inMemoryBuffer &&
    (name.includes(".") ||
      name.startsWith("__") ||
      DANGEROUS_NAMES.has(full) ||
      underModule(module, DANGEROUS_MODULES))
  ) {
    return allowedByWeightsOnly(module, name) ? "safe" : "dangerous";
  }
  if (module === "copyreg._extension_registry") return "unknown";
  // In-memory buffers are data; only file and process I/O is dangerous.
  if ((module === "io" || module === "_io") && (name === "BytesIO" || name === "StringIO"))
    return "framework";
  if (allowedByWeightsOnly(module, name)) return "safe";
  if (
    module === "builtins" &&
    [
      "set",
      "frozenset",
      "bytearray",
      "bytes",
      "complex",
      "slice",
      "range",
      "list",
      "dict",
      "tuple",
      "int",
      "float",
      "str",
      "bool",
      "object",
    ].includes(name)
  ) {
    return "safe";
  }
  if (full === "torch._utils._rebuild_sparse_csr_tensor" || full === "torch._tensor._rebuild_from_type")
    return "safe";
  if (underModule(module, FRAMEWORK_MODULES)) return "framework";
  return "unknown";
}
