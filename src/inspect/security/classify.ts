/**
 * What a global named by a pickle is, for security, with the reason: allowlist first (as torch's weights_only
 * unpickler decides), then known-dangerous primitives, then harmless standard names and known framework
 * classes; anything else is unknown. Sources: `peers-and-security.md` sections 3.1-3.4
 * (torch/_weights_only_unpickler.py, picklescan's and fickling's lists, published bypasses).
 */
export type GlobalClass = "safe" | "framework" | "unknown" | "dangerous";

export interface GlobalClassification {
  readonly class: GlobalClass;
  /** Why, for people: "runs shell commands", "on torch's weights_only allowlist". */
  readonly reason: string;
}

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

/** Why a dangerous module or name is dangerous: what calling into it can do. */
const RUNS_CODE = "executes Python code";
const RUNS_PROCESSES = "runs commands or processes";
const IMPORTS = "imports modules by name, reaching any callable";
const REACHES_ANYTHING = "looks attributes up by name, reaching any callable";
const FILES = "opens, reads or writes files";
const NETWORK = "opens network connections";
const LOADS_PICKLE = "loads another pickle, which can run anything";
const NATIVE = "calls native code";
const TORCH_INTERNAL = "a torch internal that evaluates code or runs commands";

const DANGEROUS_MODULES: ReadonlyArray<readonly [string, string]> = [
  ["os", RUNS_PROCESSES],
  ["posix", RUNS_PROCESSES],
  ["nt", RUNS_PROCESSES],
  ["subprocess", RUNS_PROCESSES],
  ["_posixsubprocess", RUNS_PROCESSES],
  ["pty", RUNS_PROCESSES],
  ["multiprocessing", RUNS_PROCESSES],
  ["asyncio", RUNS_PROCESSES],
  ["signal", RUNS_PROCESSES],
  ["platform", RUNS_PROCESSES],
  ["pip", "installs packages"],
  ["ensurepip", "installs packages"],
  ["venv", RUNS_PROCESSES],
  ["setuptools", RUNS_PROCESSES],
  ["distutils", RUNS_PROCESSES],
  ["_osx_support", RUNS_PROCESSES],
  ["_aix_support", RUNS_PROCESSES],
  ["sys", "changes the interpreter itself (sys.modules, exit, ...)"],
  ["socket", NETWORK],
  ["urllib", NETWORK],
  ["http", NETWORK],
  ["ftplib", NETWORK],
  ["smtplib", NETWORK],
  ["telnetlib", NETWORK],
  ["requests", NETWORK],
  ["httpx", NETWORK],
  ["imaplib", NETWORK],
  ["poplib", NETWORK],
  ["xmlrpc", NETWORK],
  ["webbrowser", NETWORK],
  ["ssl", NETWORK],
  ["nntplib", NETWORK],
  ["aiohttp", NETWORK],
  ["mailcap", `${RUNS_PROCESSES} (findmatch runs a mailcap entry's test command)`],
  // CPython's own test package: test.support helpers start interpreters and run code.
  ["test", RUNS_CODE],
  ["mlflow", NETWORK],
  ["pandas.io", FILES],
  ["shutil", FILES],
  ["_io", FILES],
  ["io", FILES],
  ["tempfile", FILES],
  ["glob", FILES],
  ["importlib", IMPORTS],
  ["pkgutil", IMPORTS],
  ["pydoc", IMPORTS],
  ["runpy", RUNS_CODE],
  ["code", RUNS_CODE],
  ["codeop", RUNS_CODE],
  ["cProfile", RUNS_CODE],
  ["profile", RUNS_CODE],
  ["trace", RUNS_CODE],
  ["timeit", RUNS_CODE],
  ["doctest", RUNS_CODE],
  ["pdb", RUNS_CODE],
  ["bdb", RUNS_CODE],
  ["idlelib", RUNS_CODE],
  ["lib2to3", RUNS_CODE],
  ["_pyrepl", RUNS_CODE],
  ["numpy.f2py", RUNS_CODE],
  ["numpy.testing", RUNS_CODE],
  ["numpy.distutils", RUNS_CODE],
  ["pickle", LOADS_PICKLE],
  ["_pickle", LOADS_PICKLE],
  ["dill", LOADS_PICKLE],
  ["cloudpickle", LOADS_PICKLE],
  ["marshal", "builds code objects from bytes"],
  ["ctypes", NATIVE],
  ["torch.utils.collect_env", TORCH_INTERNAL],
  ["torch.utils.bottleneck", TORCH_INTERNAL],
  ["torch._dynamo", TORCH_INTERNAL],
  ["torch.fx.experimental.symbolic_shapes", TORCH_INTERNAL],
  ["torch.utils.data.datapipes", TORCH_INTERNAL],
  ["torch.jit.unsupported_tensor_ops", TORCH_INTERNAL],
  ["torch._inductor", TORCH_INTERNAL],
];

const DANGEROUS_NAMES = new Map<string, string>([
  ["builtins.eval", RUNS_CODE],
  ["builtins.exec", RUNS_CODE],
  ["builtins.compile", RUNS_CODE],
  ["builtins.open", FILES],
  ["builtins.__import__", IMPORTS],
  ["builtins.getattr", REACHES_ANYTHING],
  ["builtins.setattr", "sets attributes by name on any object"],
  ["builtins.delattr", "deletes attributes by name on any object"],
  ["builtins.globals", REACHES_ANYTHING],
  ["builtins.locals", REACHES_ANYTHING],
  ["builtins.vars", REACHES_ANYTHING],
  ["builtins.type", "creates classes at load time"],
  ["builtins.breakpoint", "stops in a debugger"],
  ["builtins.input", "reads the terminal"],
  ["builtins.help", "starts the interactive help (a pager process)"],
  ["builtins.exit", "stops the process"],
  ["builtins.quit", "stops the process"],
  ["builtins.memoryview", "exposes raw memory"],
  ["operator.attrgetter", REACHES_ANYTHING],
  ["operator.itemgetter", REACHES_ANYTHING],
  ["operator.methodcaller", "calls methods by name"],
  ["functools.partial", "calls any callable it is given, later"],
  ["functools.reduce", "calls any callable it is given"],
  ["types.CodeType", RUNS_CODE],
  ["types.FunctionType", RUNS_CODE],
  ["types.MethodType", RUNS_CODE],
  ["torch.load", LOADS_PICKLE],
  ["torch.serialization.load", LOADS_PICKLE],
  ["torch.storage._load_from_bytes", LOADS_PICKLE],
  ["torch.hub.load", "downloads and runs code"],
  ["torch.jit.load", LOADS_PICKLE],
  ["numpy.load", LOADS_PICKLE],
  ["numpy.loadtxt", FILES],
  ["numpy.fromfile", FILES],
  ["joblib.load", LOADS_PICKLE],
  ["logging.FileHandler", FILES],
  ["uuid._get_command_stdout", RUNS_PROCESSES],
  ["transformers.AutoModel.from_pretrained", "downloads and loads a model, which can run code"],
]);

/** Builtins that only compute a value from their arguments: calling them touches nothing. */
const PURE_BUILTINS = new Set([
  "abs",
  "all",
  "any",
  "ascii",
  "bin",
  "bool",
  "bytes",
  "callable",
  "chr",
  "divmod",
  "enumerate",
  "filter",
  "float",
  "format",
  "frozenset",
  "hash",
  "hex",
  "id",
  "int",
  "isinstance",
  "issubclass",
  "iter",
  "len",
  "list",
  "map",
  "max",
  "min",
  "next",
  "oct",
  "ord",
  "pow",
  "range",
  "repr",
  "reversed",
  "round",
  "slice",
  "sorted",
  "str",
  "sum",
  "tuple",
  "zip",
  "dict",
  "object",
  "Ellipsis",
  "NotImplemented",
  "property",
  "staticmethod",
  "classmethod",
]);

/** Standard-library names that build plain values (protocol 0/1 objects, dates, numbers). */
const STANDARD_VALUES = new Map<string, string>([
  ["copyreg._reconstructor", "rebuilds a plain object of another class (protocol 0/1 pickles)"],
  ["copyreg.__newobj__", "rebuilds a plain object of another class (protocol 2 pickles)"],
  ["_codecs.encode", "encodes text to bytes"],
  ["io.BytesIO", "an in-memory buffer"],
  ["io.StringIO", "an in-memory buffer"],
  ["_io.BytesIO", "an in-memory buffer"],
  ["_io.StringIO", "an in-memory buffer"],
  ["torch.ScriptObject", "a TorchScript custom-class object (quantized packed parameters)"],
  ["torch._utils._rebuild_sparse_csr_tensor", "rebuilds a sparse tensor"],
  ["torch._tensor._rebuild_from_type", "rebuilds a tensor subclass"],
  ...["posixpath", "ntpath"].flatMap((module) =>
    ["join", "basename", "dirname", "split", "splitext", "normpath", "normcase", "isabs"].map(
      (name): [string, string] => [`${module}.${name}`, "pure path arithmetic on strings"],
    ),
  ),
]);

/** Modules of pure values and constants: nothing in them has side effects. */
const STANDARD_VALUE_MODULES = new Map<string, string>([
  ["__future__", "a compiler feature flag, an inert constant"],
  ["math", "pure arithmetic"],
  ["cmath", "pure arithmetic"],
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
  // torch 1.13's DCP (`save_state_dict`) pickled its metadata from these modules.
  "torch.distributed._shard.checkpoint",
  "torch.distributed._shard.sharded_tensor.metadata",
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
  "megatron",
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
  "allennlp",
];

function rootOf(module: string, roots: readonly string[]): string | undefined {
  return roots.find((root) => module === root || module.startsWith(`${root}.`));
}

const found = (cls: GlobalClass, reason: string): GlobalClassification => ({ class: cls, reason });

/** Why a name is dangerous, when it is (the weights_only allowlist is checked first). */
function dangerReason(module: string, name: string): string | undefined {
  // Dotted names (protocol 4+ resolves `print.__self__.exec`) are attribute walks: never trust them.
  if (name.includes(".")) return "a dotted name: an attribute walk that can reach any callable";
  if (name.startsWith("__")) return "a dunder name: reaches interpreter internals";
  const named = DANGEROUS_NAMES.get(`${module}.${name}`);
  if (named) return named;
  const root = DANGEROUS_MODULES.find(([m]) => module === m || module.startsWith(`${m}.`));
  return root ? `${root[0]}: ${root[1]}` : undefined;
}

export function classifyGlobal(
  module: string,
  name: string,
  options: { dynamic?: boolean; unresolvable?: string } = {},
): GlobalClassification {
  // The name is computed when the pickle runs: it can be anything at all.
  if (options.dynamic) return found("dangerous", "a name computed at load time: it can be any callable");
  // find_class fails on it, so it never runs; the stream stops there in every reader.
  if (options.unresolvable)
    return found("unknown", `cannot be resolved (${options.unresolvable}): nothing it names runs`);
  const full = `${module}.${name}`;
  const standard = STANDARD_VALUES.get(full);
  if (standard) return found(full.startsWith("torch.ScriptObject") ? "framework" : "safe", standard);
  if (allowedByWeightsOnly(module, name)) return found("safe", "on torch's weights_only allowlist");
  const danger = dangerReason(module, name);
  if (danger) return found("dangerous", danger);
  if (module === "copyreg._extension_registry")
    return found("unknown", "an extension code: what it names depends on the loading process");
  if (module === "builtins" && PURE_BUILTINS.has(name))
    return found("safe", "a pure builtin: it computes a value and touches nothing");
  const valueModule = STANDARD_VALUE_MODULES.get(module);
  if (valueModule) return found("safe", valueModule);
  const framework = rootOf(module, FRAMEWORK_MODULES);
  if (framework) return found("framework", `a class or function of ${framework}`);
  return found("unknown", "not torch's, not a known framework's: it runs whatever its module defines");
}
