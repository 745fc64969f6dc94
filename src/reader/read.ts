import { hex, latin1 } from "./bytes.js";
import {
  barePickleInfo,
  type Checkpoint,
  type PlainPickle,
  type SafetensorsCheckpoint,
} from "./checkpoint.js";
import { ReaderError } from "./errors.js";
import { parsePickle } from "./pickle/machine.js";
import { dictSet, pyDict, type TorchStorage, type TorchTensor } from "./pickle/value.js";
import { isPointerName, type PathStyle, POSIX_PATHS, readPointer, resolvePointerTarget } from "./pointer.js";
import { looksLikeSafetensors, readSafetensorsHeader, type SafetensorsTensor } from "./safetensors.js";
import type { ByteSource } from "./source.js";
import { DimsCache } from "./torch/dims.js";
import { loadLegacy, looksLikeLegacy } from "./torch/legacyLoader.js";
import { namesStorage } from "./torch/rebuild.js";
import { loadTorchArchive } from "./torch/zipLoader.js";
import { looksLikeZip, openZip, type ZipArchive } from "./zip.js";

const HEAD_BYTES = 512;
const MAX_PLAIN_PICKLE = 256 * 1024 * 1024;

/**
 * What the reader asks of the place a file lives in, and only for pointer files (`last_checkpoint`, ...): does
 * the path a pointer names exist, and how paths are joined there. Node passes its file system (`open.ts`); a
 * page passes the dropped folder, or nothing for a single file (then a pointer is known by its name alone).
 */
export interface ReadContext {
  readonly exists: (path: string) => boolean;
  readonly paths: PathStyle;
}

const NOWHERE: ReadContext = { exists: () => false, paths: POSIX_PATHS };

/**
 * Format sniffing in a fixed order, cheapest and most specific first; then the matching reader. Portable: the
 * bytes come through `source`, and `path` (with `context`) only serves to recognise pointer files.
 */
export function readCheckpoint(
  source: ByteSource,
  path?: string,
  context: ReadContext = NOWHERE,
): Checkpoint {
  if (source.size === 0) throw new ReaderError("empty-file", "the file is empty (0 bytes)");
  const head = source.read(0, Math.min(HEAD_BYTES, source.size));

  if (looksLikeZip(head)) return readZipCheckpoint(source, openZip(source));
  if (startsWith(head, "PYTORCH1")) {
    throw new ReaderError(
      "unsupported-format",
      "a 2019 preview container (PYTORCH1), which no released torch reads",
    );
  }
  if (looksLikeLegacy(head)) return loadLegacy(source);
  if (looksLikeTar(head)) {
    throw new ReaderError(
      "tar-unsupported",
      "a tar archive: the checkpoint format of torch 0.1.9 and earlier",
    );
  }
  if (looksLikeSafetensors(head, source.size)) return readSafetensors(source);
  const pointer = path === undefined ? undefined : readPointerFile(source, path, context);
  if (pointer) return pointer;
  // Protocols 0 and 1 have no PROTO opcode: whether the bytes are a pickle is for the machine to say.
  const pickle = readPlainPickle(source);
  if (pickle) return pickle;
  throw new ReaderError(
    "not-a-checkpoint",
    `not a checkpoint: the first bytes (${hex(head.subarray(0, 8))}) match no torch, TorchScript, safetensors or pointer format, and are no pickle`,
  );
}

/**
 * A small text file is a pointer when it is named as the conventions name theirs (`last_checkpoint`,
 * `latest`, ...) or when what it names exists beside it; any other note is not a checkpoint of any kind.
 */
function readPointerFile(source: ByteSource, path: string, context: ReadContext): Checkpoint | undefined {
  const name = context.paths.basename(path);
  const pointer = readPointer(source, name);
  if (!pointer) return undefined;
  const target = resolvePointerTarget(path, pointer, context.paths);
  const targetExists = context.exists(target);
  if (!targetExists && !isPointerName(name)) return undefined;
  return { format: "pointer", source, notes: [], pointer, target, targetExists };
}

function startsWith(head: Uint8Array, text: string): boolean {
  return latin1(head, 0, text.length) === text;
}

function looksLikeTar(head: Uint8Array): boolean {
  return head.length >= 262 && latin1(head, 257, 262) === "ustar";
}

function readZipCheckpoint(source: ByteSource, archive: ZipArchive): Checkpoint {
  if (archive.get("data.pkl")) return loadTorchArchive(source, archive);
  const names = new Set(archive.entries.map((e) => archive.recordName(e)));
  // A PT2 archive (torch.export.save, AOTInductor's package) has `.data/version` too: `archive_format` first.
  const kind =
    names.has("archive_format") || names.has("serialized_exported_program.json")
      ? "a torch.export program (PT2 archive: torch.export.save or an AOTInductor package)"
      : names.has(".data/version")
        ? "a torch.package archive"
        : names.has("model.json")
          ? "a TorchScript archive from torch <= 1.2"
          : names.has("bytecode.pkl")
            ? "a mobile (lite interpreter) archive"
            : undefined;
  if (kind) throw new ReaderError("unsupported-format", `${kind}, which ckpt does not read yet`);
  throw new ReaderError(
    "not-a-checkpoint",
    `a zip archive without a data.pkl record (${archive.entries.length} entries, prefix "${archive.prefix}"): not written by torch.save`,
  );
}

/**
 * The shape torch gives a tensor: safetensors counts F4 in 4-bit elements, torch's `float4_e2m1fn_x2` packs two
 * per element, so `load_file` halves the last dimension (an odd one cannot be loaded at all).
 */
function torchShape(entry: SafetensorsTensor): number[] {
  const last = entry.shape[entry.shape.length - 1];
  if (entry.code !== "F4" || last === undefined || last % 2 !== 0) return entry.shape;
  return [...entry.shape.slice(0, -1), last / 2];
}

/** safetensors has no object graph; ckpt presents it as the dict `safetensors.torch.load_file` returns. */
function readSafetensors(source: ByteSource): SafetensorsCheckpoint {
  const header = readSafetensorsHeader(source);
  const root = pyDict();
  const ranges = new Map<TorchStorage, { offset: number; length: number }>();
  // Shared between tensors of one shape, as the torch reader shares them (`DimsCache`).
  const dims = new DimsCache();
  for (const entry of header.tensors) {
    const storage: TorchStorage = {
      kind: "storage",
      key: entry.name,
      dtype: entry.dtype,
      device: "cpu",
      numel: entry.end - entry.begin,
      sizeBytes: entry.end - entry.begin,
    };
    ranges.set(storage, { offset: entry.begin, length: entry.end - entry.begin });
    const shape = dims.intern(torchShape(entry));
    const stride = dims.intern(contiguousStride(shape));
    const tensor: TorchTensor = {
      kind: "tensor",
      dtype: entry.dtype,
      shape,
      stride,
      offset: 0,
      storage,
      requiresGrad: false,
      parameter: false,
      layout: "strided",
      quantization: undefined,
      sparse: undefined,
      rebuild: "safetensors",
      pythonState: undefined,
      subclass: undefined,
    };
    dictSet(root, entry.name, tensor);
  }
  return {
    format: "safetensors",
    source,
    notes: [],
    header,
    root,
    byteOrder: "little",
    locate: (storage) => {
      const range = ranges.get(storage);
      return range ? { kind: "range", ...range } : undefined;
    },
  };
}

export function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = step;
    step *= Math.max(shape[i] as number, 1);
  }
  return stride;
}

/** Whether the machine names a global in the bytes before it stops: then they are a pickle, however broken. */
function namesAGlobal(bytes: Uint8Array): boolean {
  let named = false;
  try {
    parsePickle(bytes, { scan: true, trace: { onGlobal: () => (named = true) } });
  } catch {
    // The question is only whether a global was named before the break.
  }
  return named;
}

/** PROTO first: the bytes are certainly meant as a pickle (protocols 2 to 5 always begin so). */
function startsWithProto(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && (bytes[1] as number) <= 5;
}

/**
 * The bytes as a bare pickle, or undefined when they are none: the machine breaks before naming anything
 * and they do not begin with PROTO (text, images, random data). A pickle that breaks later is an error.
 */
function readPlainPickle(source: ByteSource): PlainPickle | undefined {
  const bytes = source.read(0, Math.min(source.size, MAX_PLAIN_PICKLE));
  const foreignPersistentIds: number[] = [];
  let result: ReturnType<typeof parsePickle>;
  try {
    result = parsePickle(bytes, {
      hooks: {
        persistentLoad(pid, offset) {
          if (!namesStorage(pid)) foreignPersistentIds.push(offset);
          return { kind: "persistent", id: pid };
        },
      },
    });
  } catch (error) {
    if (!(error instanceof ReaderError)) throw error;
    if (!startsWithProto(bytes) && !namesAGlobal(bytes)) return undefined;
    if (source.size > MAX_PLAIN_PICKLE && error.code === "pickle-truncated") {
      throw new ReaderError(
        "unsupported-format",
        `a bare pickle of ${source.size} bytes, larger than ckpt reads whole`,
      );
    }
    throw error;
  }
  const notes: PlainPickle["notes"] = [];
  if (result.end < bytes.length)
    notes.push({ code: "pickle-trailing-bytes", record: "pickle", count: bytes.length - result.end });
  return {
    format: "pickle",
    source,
    notes,
    root: result.value,
    pickle: barePickleInfo(result, bytes.length, foreignPersistentIds),
  };
}
