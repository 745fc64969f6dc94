import type { ByteSource } from "./source.js";

/**
 * Pointer files: the small text files training frameworks write next to their checkpoints to name the latest one.
 * Users pass them where a checkpoint is expected (torch.load then fails with "invalid load key"), so ckpt must
 * recognise one and say what it points at instead of calling it a broken checkpoint.
 *
 * | writer | file | content |
 * |---|---|---|
 * | fvcore / detectron2 / Trackron `Checkpointer.tag_last_checkpoint` | `last_checkpoint` | basename, no newline |
 * | mmengine `CheckpointHook` | `last_checkpoint` | absolute path (or a backend URI such as `s3://…`), no newline |
 * | DeepSpeed `save_checkpoint` | `latest`, `latest_universal` | tag naming a directory (`global_step300`), no newline |
 * | Megatron-LM `save_checkpoint` | `latest_checkpointed_iteration.txt` | the iteration (`10`, naming `iter_0000010/`) or `release` |
 *
 * All three readers open the file, `.strip()` the text, and either use it as is (mmengine) or join it to the
 * pointer's directory (fvcore, DeepSpeed).
 */

/** How paths are split and joined where the pointer lives: Node passes `node:path`'s, a page POSIX's. */
export interface PathStyle {
  readonly dirname: (path: string) => string;
  readonly basename: (path: string) => string;
  readonly sep: string;
}

/** `path.posix`'s dirname and basename, for relative paths in a dropped folder or a URL's path. */
export const POSIX_PATHS: PathStyle = {
  dirname(path) {
    const trimmed = path.replace(/\/+$/, "");
    if (trimmed === "") return path.startsWith("/") ? "/" : ".";
    const slash = trimmed.lastIndexOf("/");
    if (slash < 0) return ".";
    return slash === 0 ? "/" : trimmed.slice(0, slash).replace(/\/+$/, "") || "/";
  },
  basename(path) {
    const trimmed = path.replace(/\/+$/, "");
    return trimmed.slice(trimmed.lastIndexOf("/") + 1);
  },
  sep: "/",
};

/** Megatron-LM's pointer file. */
const MEGATRON_TRACKER = "latest_checkpointed_iteration.txt";

export type PointerStyle =
  /** A file name with an extension and no directory part (fvcore/detectron2 `model_0004999.pth`). */
  | "basename"
  /** `/…`, `C:\…`, `C:/…` or `\\server\…` (mmengine). */
  | "absolute-path"
  /** A path with a `/` or `\` that is not absolute (`checkpoints/epoch_3.pth`, `../run1/last.ckpt`). */
  | "relative-path"
  /** `scheme://…` (mmengine with a remote file backend: `s3://bucket/epoch_12.pth`). Not a local path. */
  | "uri"
  /** No separator and no extension (DeepSpeed `global_step300`): names a directory next to the pointer. */
  | "tag"
  /** Megatron-LM's tracker: an iteration number naming `iter_{N:07d}/` beside it (or `release`). */
  | "iteration";

/**
 * The names the conventions give their pointer files. Any other small text file is a pointer only when what it
 * names exists beside it: a note holding `abc` is not one.
 */
const POINTER_NAMES = new Set(["last_checkpoint", "latest", "latest_universal", MEGATRON_TRACKER]);

export function isPointerName(name: string): boolean {
  return POINTER_NAMES.has(name);
}

export interface PointerFile {
  /** The text exactly as stored. */
  readonly content: string;
  /** `content` stripped of surrounding whitespace, as the frameworks' `f.read().strip()` does. */
  readonly target: string;
  readonly style: PointerStyle;
  /** The content ends with `\n`, `\r\n` or `\r` (none of the known writers adds one; people editing by hand do). */
  readonly hasTrailingNewline: boolean;
}

/** Larger than any path a pointer could hold (PATH_MAX is 4096 on Linux). */
export const MAX_POINTER_SIZE = 4096;

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Characters that never occur in a single line of path text: C0 controls, DEL, C1 controls, the Unicode line and
 * paragraph separators, and the byte-order mark. Binary formats fail here or in UTF-8 decoding: zip (`PK\x03\x04`),
 * pickles and legacy torch files (`\x80` is not valid UTF-8 on its own), safetensors (NUL bytes in the length).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const NOT_LINE_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff]/;

/**
 * Characters no framework's checkpoint path contains but structured text does (JSON, HTML, shell globs):
 * `{ } " < > | *`, plus a leading `[`.
 */
const NOT_PATH_TEXT = /[{}"<>|*]|^\[/;

/**
 * The pointer a small file holds, or undefined when it is not one. A pointer is at most `MAX_POINTER_SIZE`
 * bytes of UTF-8 holding exactly one non-blank line (one trailing newline allowed) with no control characters,
 * that reads as a path or tag (see `PointerStyle`). Reads the file once; never throws for content reasons.
 */
export function readPointer(source: ByteSource, fileName?: string): PointerFile | undefined {
  if (source.size === 0 || source.size > MAX_POINTER_SIZE) return undefined;
  let content: string;
  try {
    content = utf8Strict.decode(source.read(0, source.size));
  } catch {
    return undefined;
  }
  const newline = /(?:\r\n|\n|\r)$/.exec(content);
  const line = newline === null ? content : content.slice(0, newline.index);
  if (NOT_LINE_TEXT.test(line)) return undefined;
  const target = line.trim();
  if (target === "" || NOT_PATH_TEXT.test(target)) return undefined;
  // A path never ends in "." (protocol-0 pickles end with the STOP opcode "."); "." and ".." name directories.
  if (target.endsWith(".")) return undefined;
  const megatron = fileName === MEGATRON_TRACKER && /^(?:\d+|release)$/.test(target);
  const style = megatron ? "iteration" : classifyPointerTarget(target);
  return { content, target, style, hasTrailingNewline: newline !== null };
}

/**
 * The style, from the target's shape alone, checked in this order: `scheme://` is a URI; a leading `/`, `\\` or
 * drive letter (`C:\`, `C:/`) is absolute; any other `/` or `\` makes a relative path; a final `.ext` whose
 * extension holds a letter (`.pth`, `.pt`, `.ckpt`, `.tar`) makes a basename; anything else is a tag
 * (`global_step300`, `v1.0`). Basename and tag resolve the same way, so a tag with a dot is harmless.
 */
export function classifyPointerTarget(target: string): PointerStyle {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) return "uri";
  if (target.startsWith("/") || target.startsWith("\\\\") || /^[A-Za-z]:[\\/]/.test(target)) {
    return "absolute-path";
  }
  if (/[\\/]/.test(target)) return "relative-path";
  if (/.\.[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*$/.test(target)) return "basename";
  return "tag";
}

/**
 * The path the framework would open: absolute paths and URIs as they are (mmengine); anything else joined to the
 * pointer's directory (fvcore `os.path.join(save_dir, basename)`, DeepSpeed `os.path.join(load_dir, tag)`, which
 * names a directory). The join is textual like Python's, without normalising `..`, so symlinks resolve as they
 * would for the framework.
 */
export function resolvePointerTarget(
  pointerPath: string,
  pointer: PointerFile,
  paths: PathStyle = POSIX_PATHS,
): string {
  if (pointer.style === "absolute-path" || pointer.style === "uri") return pointer.target;
  const { dirname, sep } = paths;
  const directory = dirname(pointerPath);
  // Megatron's get_checkpoint_name: os.path.join(checkpoints_path, "iter_{:07d}" or "release").
  const name =
    pointer.style === "iteration" && pointer.target !== "release"
      ? `iter_${pointer.target.padStart(7, "0")}`
      : pointer.target;
  return directory.endsWith(sep) ? directory + name : directory + sep + name;
}
