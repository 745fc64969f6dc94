import { detectFileConvention } from "../inspect/resume/fingerprints.js";
import { modelStateDict } from "../inspect/resume/sanity.js";
import { ReaderError } from "../reader/errors.js";
import { parsePickle } from "../reader/pickle/machine.js";
import { dictGet, isBoxed, type PyDict, type PyValue } from "../reader/pickle/value.js";
import { StorageTable } from "../reader/torch/idMap.js";
import { cachingStorageResolver, torchPickleHooks } from "../reader/torch/rebuild.js";

/**
 * Edits a checkpoint's pickle by splicing its bytes: everything not edited stays byte for byte, so what torch
 * loads is the original object graph plus exactly the requested change. Spans come from the pickle machine's
 * trace (where each dict key and value, and each persistent id, was built).
 */
export type PickleEdit =
  | { readonly kind: "set-counter"; readonly name: string; readonly value: number }
  | { readonly kind: "strip-prefix"; readonly prefix: string }
  | { readonly kind: "add-prefix"; readonly prefix: string }
  | { readonly kind: "drop"; readonly key: string };

export interface EditOutcome {
  readonly edit: PickleEdit;
  /** Keys renamed, items dropped, or 1 for a counter set. */
  readonly changed: number;
  readonly detail: string;
}

export interface Splice {
  readonly start: number;
  readonly end: number;
  readonly bytes: Uint8Array;
}

export interface Traced {
  readonly root: PyValue;
  readonly end: number;
  readonly items: Map<PyDict, Array<{ keyStart: number; valueStart: number; end: number }>>;
  readonly frames: number[];
  readonly puts: Array<{ index: number; offset: number }>;
  readonly gets: Array<{ index: number; offset: number }>;
  readonly persistentIds: Array<{ pid: PyValue; start: number; end: number }>;
}

export function trace(bytes: Uint8Array): Traced {
  const items: Traced["items"] = new Map();
  const frames: number[] = [];
  const puts: Traced["puts"] = [];
  const gets: Traced["gets"] = [];
  const persistentIds: Traced["persistentIds"] = [];
  const result = parsePickle(bytes, {
    // The same models of torch's rebuild functions as the reader: tensors must look like tensors here too.
    hooks: torchPickleHooks(cachingStorageResolver(new StorageTable())),
    trace: {
      onDictItems: (dict, spans) => {
        const list = items.get(dict) ?? [];
        list.push(...spans);
        items.set(dict, list);
      },
      onFrame: (offset) => frames.push(offset),
      onMemo: (kind, index, offset) => (kind === "put" ? puts : gets).push({ index, offset }),
      onPersistentId: (pid, start, end) => persistentIds.push({ pid, start, end }),
    },
  });
  return { root: result.value, end: result.end, items, frames, puts, gets, persistentIds };
}

/** BINUNICODE: the opcode torch's protocol-2 pickler uses for every str. */
export function encodeString(text: string): Uint8Array {
  const utf8 = Buffer.from(text, "utf8");
  const out = Buffer.alloc(5 + utf8.length);
  out[0] = 0x58;
  out.writeUInt32LE(utf8.length, 1);
  utf8.copy(out, 5);
  return out;
}

/** BININT for 32-bit values, LONG1 beyond (as Python's pickler chooses). */
export function encodeInt(value: number): Uint8Array {
  if (Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31) {
    const out = Buffer.alloc(5);
    out[0] = 0x4a;
    out.writeInt32LE(value, 1);
    return out;
  }
  const bytes: number[] = [];
  let v = BigInt(value);
  for (;;) {
    const byte = Number(v & 0xffn);
    bytes.push(byte);
    v >>= 8n;
    if ((v === 0n && byte < 0x80) || (v === -1n && byte >= 0x80)) break;
  }
  return Uint8Array.from([0x8a, bytes.length, ...bytes]);
}

/** The length of the string opcode at `offset` (BINUNICODE, SHORT_BINUNICODE, BINUNICODE8), or undefined. */
function stringOpcodeLength(bytes: Uint8Array, offset: number): number | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (bytes[offset]) {
    case 0x58:
      return 5 + view.getUint32(offset + 1, true);
    case 0x8c:
      return 2 + (bytes[offset + 1] as number);
    case 0x8d:
      return 9 + Number(view.getBigUint64(offset + 1, true));
    default:
      return undefined;
  }
}

function refuse(message: string): ReaderError {
  return new ReaderError("unsupported-format", message);
}

function renameKeys(
  bytes: Uint8Array,
  traced: Traced,
  dict: PyDict,
  rename: (key: string) => string | undefined,
  allowCollisions: boolean,
): { splices: Splice[]; changed: number } {
  const splices: Splice[] = [];
  const finalKeys = new Set<string>();
  let changed = 0;
  const spans = traced.items.get(dict) ?? [];
  dict.keys.forEach((key, i) => {
    if (typeof key !== "string") return;
    const next = rename(key);
    if (!allowCollisions && finalKeys.has(next ?? key)) {
      throw refuse(`renaming would make two keys ${JSON.stringify(next ?? key)}: refusing to merge them`);
    }
    finalKeys.add(next ?? key);
    if (next === undefined || next === key) return;
    const span = spans[i];
    const length = span && stringOpcodeLength(bytes, span.keyStart);
    if (!span || length === undefined) {
      throw refuse(
        `key ${JSON.stringify(key)} is not written as a plain string in the pickle (a memo reference?)`,
      );
    }
    splices.push({ start: span.keyStart, end: span.keyStart + length, bytes: encodeString(next) });
    changed++;
  });
  return { splices, changed };
}

/** torch's consume_prefix_in_state_dict_if_present for `_metadata`: `module` -> "", `module.fc` -> `fc`. */
function metadataRename(edit: Extract<PickleEdit, { kind: "strip-prefix" | "add-prefix" }>) {
  const bare = edit.prefix.replace(/\.$/, "");
  return (key: string): string | undefined => {
    if (edit.kind === "strip-prefix") {
      if (key === bare) return "";
      return key.startsWith(edit.prefix) ? key.slice(edit.prefix.length) : undefined;
    }
    return key === "" ? bare : `${edit.prefix}${key}`;
  };
}

export interface EditedPickle {
  readonly bytes: Uint8Array;
  readonly outcomes: EditOutcome[];
}

/** Applies `edits` to a checkpoint pickle. `fileName` helps find the state dict (conventions key it by name). */
export function editPickle(bytes: Uint8Array, edits: readonly PickleEdit[], fileName: string): EditedPickle {
  const traced = trace(bytes);
  const root = traced.root;
  const splices: Splice[] = [];
  const outcomes: EditOutcome[] = [];
  const appended: Uint8Array[] = [];

  for (const edit of edits) {
    switch (edit.kind) {
      case "set-counter": {
        if (!isBoxed(root, "dict"))
          throw refuse("the checkpoint's top level is not a dict: there is nowhere to add a counter");
        const previous = dictGet(root, edit.name);
        // `key value SETITEM` before STOP: the root dict is on top of the stack there.
        appended.push(encodeString(edit.name), encodeInt(edit.value), Uint8Array.of(0x73));
        outcomes.push({
          edit,
          changed: 1,
          detail:
            previous === undefined
              ? `added ${edit.name}=${edit.value}`
              : `replaced ${edit.name} (was ${String(previous)}) with ${edit.value}`,
        });
        break;
      }
      case "strip-prefix":
      case "add-prefix": {
        const convention = detectFileConvention(root, fileName).convention;
        const model =
          modelStateDict(root, convention === "unknown" ? "state-dict" : convention) ??
          modelStateDict(root, "unknown");
        if (!model) throw refuse("no state dict of tensors found to rename");
        const rename =
          edit.kind === "strip-prefix"
            ? (key: string) => (key.startsWith(edit.prefix) ? key.slice(edit.prefix.length) : undefined)
            : (key: string) => `${edit.prefix}${key}`;
        const result = renameKeys(bytes, traced, model.dict, rename, false);
        splices.push(...result.splices);
        const metadata = isBoxed(model.dict.attributes, "dict")
          ? dictGet(model.dict.attributes, "_metadata")
          : undefined;
        if (isBoxed(metadata, "dict"))
          splices.push(...renameKeys(bytes, traced, metadata, metadataRename(edit), true).splices);
        outcomes.push({
          edit,
          changed: result.changed,
          detail: `${result.changed} of ${model.dict.keys.length} keys in ${model.key} ${edit.kind === "strip-prefix" ? "lost" : "gained"} "${edit.prefix}"`,
        });
        break;
      }
      case "drop": {
        if (!isBoxed(root, "dict")) throw refuse("the checkpoint's top level is not a dict");
        const spans = traced.items.get(root) ?? [];
        let dropped = 0;
        root.keys.forEach((key, i) => {
          const span = spans[i];
          if (key !== edit.key || !span) return;
          // Memo entries defined inside the dropped item must not be referenced after it.
          const defined = new Set(
            traced.puts.filter((p) => p.offset >= span.keyStart && p.offset < span.end).map((p) => p.index),
          );
          const usedLater = traced.gets.find((g) => g.offset >= span.end && defined.has(g.index));
          if (usedLater) {
            throw refuse(
              `${edit.key} shares objects with the rest of the checkpoint (memo ${usedLater.index}): cannot drop it by splicing`,
            );
          }
          splices.push({ start: span.keyStart, end: span.end, bytes: new Uint8Array(0) });
          dropped++;
        });
        outcomes.push({
          edit,
          changed: dropped,
          detail: dropped ? `dropped ${edit.key}` : `no top-level key ${edit.key}`,
        });
        break;
      }
    }
  }
  // An edit that would change nothing is a mistake (a prefix the keys do not have, a key that is absent):
  // say so before anything is written, rather than write a copy identical to the input.
  const idle = outcomes.filter((o) => o.changed === 0);
  if (idle.length > 0) {
    throw new ReaderError(
      "repair-no-change",
      `${idle.map((o) => o.detail).join("; ")}: that edit changes nothing, so nothing was written`,
    );
  }
  if (appended.length > 0) {
    const stop = traced.end - 1;
    splices.push({ start: stop, end: stop, bytes: Buffer.concat(appended) });
  }
  return { bytes: applySplices(bytes, withoutFrames(traced, splices)), outcomes };
}

/** FRAME lengths no longer hold once bytes move; frames are optional, so edited pickles drop them. */
export function withoutFrames(traced: Traced, splices: Splice[]): Splice[] {
  if (splices.length === 0 || traced.frames.length === 0) return splices;
  const inside = (offset: number) => splices.some((s) => offset >= s.start && offset < s.end);
  return [
    ...splices,
    ...traced.frames
      .filter((f) => !inside(f))
      .map((f) => ({ start: f, end: f + 9, bytes: new Uint8Array(0) })),
  ];
}

export function applySplices(bytes: Uint8Array, splices: readonly Splice[]): Uint8Array {
  const ordered = [...splices].sort((a, b) => a.start - b.start || a.end - b.end);
  const parts: Uint8Array[] = [];
  let position = 0;
  for (const splice of ordered) {
    if (splice.start < position) throw new Error("overlapping pickle edits");
    parts.push(bytes.subarray(position, splice.start), splice.bytes);
    position = splice.end;
  }
  parts.push(bytes.subarray(position));
  return Buffer.concat(parts);
}

/**
 * Legacy pickles name storages with 6-tuples `("storage", cls, key, location, numel, view_metadata)`; the zip
 * loader unpacks exactly 5. Removing the trailing `None` (a NONE opcode right before TUPLE) converts one into
 * the other; keys stay as they are (the zip records are named after them).
 */
export function legacyPidsToZip(bytes: Uint8Array): Uint8Array {
  const traced = trace(bytes);
  const splices: Splice[] = [];
  for (const { pid, start, end } of traced.persistentIds) {
    if (!isBoxed(pid, "tuple") || pid.items[0] !== "storage") {
      throw refuse(
        "the legacy file pickles whole modules by source (module persistent ids): the zip format cannot hold them",
      );
    }
    if (pid.items.length === 5) continue;
    if (pid.items.length !== 6 || pid.items[5] !== null) {
      throw refuse("the legacy file uses storage views (view_metadata), which torch >= 1.6 no longer writes");
    }
    let tupleAt = end - 1;
    // The tuple may be memoised right after TUPLE: BINPUT n or LONG_BINPUT n.
    if (bytes[end - 2] === 0x71 && bytes[end - 3] === 0x74) tupleAt = end - 3;
    else if (bytes[end - 5] === 0x72 && bytes[end - 6] === 0x74) tupleAt = end - 6;
    if (bytes[tupleAt] !== 0x74 || bytes[tupleAt - 1] !== 0x4e || tupleAt - 1 < start) {
      throw refuse("a storage id is not written as MARK ... None TUPLE; cannot convert it");
    }
    splices.push({ start: tupleAt - 1, end: tupleAt, bytes: new Uint8Array(0) });
  }
  return applySplices(bytes, withoutFrames(traced, splices));
}
