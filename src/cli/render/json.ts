import { ItemList } from "../../inspect/itemList.js";

/**
 * JSON as every command prints it: what `JSON.stringify(value, null, 2)` prints, except that the items of
 * arrays under the keys in `oneLineItems` are written compact, one per line. A report of 200,000 tensors is
 * then 40 MB rather than 66 MB (4.4 million lines), each tensor stays one greppable line, and the text goes
 * to `write` in pieces of about 64 KB rather than as one string twice the size of the report.
 */
export function writeJson(
  value: unknown,
  write: (text: string) => void,
  oneLineItems: readonly string[] = [],
): void {
  const writer = jsonWriter(write, oneLineItems);
  writer.visit(value, "", false, 0);
  writer.emit("\n");
  writer.flush();
}

/**
 * A JSON object written field by field, and one array field item by item as its items come: what `writeJson`
 * prints for the whole object, byte for byte, without the object ever being held whole (`audit --json` of a
 * large tree writes each run as it is planned). Fields go in the order they are written; none is one-line.
 */
export class JsonObjectStream {
  private readonly writer: ReturnType<typeof jsonWriter>;
  private fields = 0;
  private items = -1;
  private closed = false;

  constructor(write: (text: string) => void) {
    this.writer = jsonWriter(write, []);
  }

  field(key: string, value: unknown): void {
    if (!isSerializable(value)) return;
    this.key(key);
    this.writer.visit(value, "  ", false, 1);
  }

  /** Starts the array field `key`; `item` adds to it until `endArray`. */
  beginArray(key: string): void {
    this.key(key);
    this.items = 0;
  }

  item(value: unknown): void {
    if (this.closed) return;
    const { writer } = this;
    if (this.items === 0) writer.emit("[");
    writer.emit(this.items === 0 ? "\n    " : ",\n    ");
    writer.visit(value ?? null, "    ", false, 2);
    this.items++;
  }

  endArray(): void {
    this.writer.emit(this.items === 0 ? "[]" : "\n  ]");
    this.items = -1;
  }

  /**
   * Hands out what is held and writes nothing more, leaving the object open: a stream cut short by an error
   * ends here, and a late item cannot land after the error.
   */
  abandon(): void {
    this.writer.flush();
    this.closed = true;
  }

  /** Closes the object and hands out what is left. */
  end(): void {
    this.writer.emit(this.fields === 0 ? "{}\n" : "\n}\n");
    this.writer.flush();
  }

  private key(key: string): void {
    this.writer.emit(`${this.fields === 0 ? "{\n" : ",\n"}  ${JSON.stringify(key)}: `);
    this.fields++;
  }
}

/** The writer behind both: text collected into pieces of about 64 KB, and the walk that writes a value. */
function jsonWriter(write: (text: string) => void, oneLineItems: readonly string[]) {
  const pending: string[] = [];
  let pendingLength = 0;
  const emit = (text: string): void => {
    pending.push(text);
    pendingLength += text.length;
    if (pendingLength >= CHUNK_CHARS) flush();
  };
  const flush = (): void => {
    if (pending.length === 0) return;
    write(pending.join(""));
    pending.length = 0;
    pendingLength = 0;
  };
  const oneLine = new Set(oneLineItems);
  const intsTexts = new IntsTexts();

  const visit = (node: unknown, indent: string, compactItems: boolean, depth: number): void => {
    // Below the first levels, a subtree that holds none of the one-line arrays is what V8's own serializer
    // prints, re-indented: several times faster than emitting it piece by piece (an audit of 1,000
    // checkpoints is 3.5 MB of JSON). The first levels stay here, so the text still goes out in pieces.
    if (depth >= NATIVE_DEPTH && !compactItems && typeof node === "object" && node !== null) {
      if (!holdsKey(node, oneLine, 0)) {
        emit(nativeText(node, indent));
        return;
      }
    }
    if (compactItems && (node instanceof ItemList || Array.isArray(node))) {
      writeItems(node instanceof ItemList ? node : ItemList.of(node), indent);
      return;
    }
    if (Array.isArray(node)) {
      if (node.length === 0) {
        emit("[]");
        return;
      }
      const inner = `${indent}  `;
      emit("[");
      node.forEach((item, i) => {
        emit(i === 0 ? `\n${inner}` : `,\n${inner}`);
        visit(item ?? null, inner, false, depth + 1);
      });
      emit(`\n${indent}]`);
      return;
    }
    if (node !== null && typeof node === "object" && !("toJSON" in node)) {
      const entries = Object.entries(node).filter(([, v]) => isSerializable(v));
      if (entries.length === 0) {
        emit("{}");
        return;
      }
      const inner = `${indent}  `;
      emit("{");
      entries.forEach(([key, v], i) => {
        emit(`${i === 0 ? "\n" : ",\n"}${inner}${JSON.stringify(key)}: `);
        visit(v, inner, oneLine.has(key), depth + 1);
      });
      emit(`\n${indent}}`);
      return;
    }
    emit(nativeText(node, indent));
  };

  /** A one-line array made item by item: each item is written, then dropped, before the next is made. */
  const writeItems = (list: ItemList<unknown>, indent: string): void => {
    if (list.length === 0) {
      emit("[]");
      return;
    }
    const inner = `${indent}  `;
    emit("[");
    for (let i = 0; i < list.length; i++) {
      emit(i === 0 ? `\n${inner}` : `,\n${inner}`);
      emit(compactText(list.item(i), intsTexts));
    }
    emit(`\n${indent}]`);
  };

  return { emit, flush, visit };
}

/**
 * 64 KB pieces stay in V8's young generation and die in the next scavenge; 1 MB pieces went to its
 * large-object space and stayed until a full collection: a streamed `audit --json` of 1,000 checkpoints
 * peaked at 127 MB with them and at 92 MB with these.
 */
const CHUNK_CHARS = 1 << 16;
/** Levels written piece by piece; deeper subtrees are serialized whole (see `visit`). */
const NATIVE_DEPTH = 2;

/** `JSON.stringify(item)`. */
function compactText(item: unknown, intsTexts: IntsTexts): string {
  return tensorLine(item, intsTexts) ?? JSON.stringify(item) ?? "null";
}

/** The fields of an inspect report's tensor, in the order the report builds them, when it has no others. */
const TENSOR_KEYS = [
  "path",
  "dtype",
  "shape",
  "stride",
  "offset",
  "storage",
  "requiresGrad",
  "parameter",
  "layout",
] as const;
const STORAGE_KEYS = ["key", "device", "sizeBytes"] as const;
/** Strings JSON writes as they are, between quotes. */
const PLAIN = /^[\w .:/+-]*$/;

/**
 * What `JSON.stringify` writes for a tensor of an inspect report, written from its fields: several times
 * faster for the 200,000 lines of a large state dict. Anything else (other fields, another key order,
 * numbers that are not safe integers, strings that need escaping) is left to `JSON.stringify`: undefined.
 */
function tensorLine(item: unknown, intsTexts: IntsTexts): string | undefined {
  if (typeof item !== "object" || item === null || !hasKeys(item, TENSOR_KEYS)) return undefined;
  const t = item as Record<(typeof TENSOR_KEYS)[number], unknown>;
  const { storage } = t;
  let storageText: string | undefined;
  if (storage === null) storageText = "null";
  else if (typeof storage === "object" && hasKeys(storage, STORAGE_KEYS)) {
    const { key, device, sizeBytes } = storage as Record<(typeof STORAGE_KEYS)[number], unknown>;
    if (plain(key) && plain(device) && Number.isSafeInteger(sizeBytes))
      storageText = `{"key":"${key}","device":"${device}","sizeBytes":${sizeBytes}}`;
  }
  const path = pathText(t.path);
  const shape = intsTexts.of(t.shape);
  const stride = intsTexts.of(t.stride);
  if (
    storageText === undefined ||
    path === undefined ||
    shape === undefined ||
    stride === undefined ||
    !plain(t.dtype) ||
    !plain(t.layout) ||
    !Number.isSafeInteger(t.offset) ||
    typeof t.requiresGrad !== "boolean" ||
    typeof t.parameter !== "boolean" ||
    Object.is(t.offset, -0)
  )
    return undefined;
  return (
    `{"path":${path},"dtype":"${t.dtype}","shape":${shape},"stride":${stride},"offset":${t.offset},` +
    `"storage":${storageText},"requiresGrad":${t.requiresGrad},"parameter":${t.parameter},"layout":"${t.layout}"}`
  );
}

/** Whether `object`'s own enumerable keys are exactly `keys`, in that order. */
function hasKeys(object: object, keys: readonly string[]): boolean {
  if (Array.isArray(object) || "toJSON" in object) return false;
  let i = 0;
  for (const key in object) {
    if (!Object.hasOwn(object, key)) return false;
    if (key !== keys[i++]) return false;
  }
  return i === keys.length;
}

function plain(value: unknown): value is string {
  return typeof value === "string" && PLAIN.test(value);
}

function intsText(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  for (const n of value) if (!Number.isSafeInteger(n) || Object.is(n, -0)) return undefined;
  return `[${value.join(",")}]`;
}

/**
 * `intsText` of each array once per write: the readers share size and stride arrays between tensors of one
 * shape (`DimsCache`), so a 200,000-tensor report has a few dozen to write. Kept by one `writeJson` call
 * only, during which nothing changes the report. Arrays that are not shared (a report built by hand) would
 * only pay for the lookups: once `TRIAL` arrays were new to it and fewer than half as many were found
 * again, it stops keeping texts.
 */
class IntsTexts {
  private texts: WeakMap<object, string | undefined> | undefined = new WeakMap();
  private asked = 0;
  private found = 0;

  of(value: unknown): string | undefined {
    const { texts } = this;
    if (texts === undefined || !Array.isArray(value)) return intsText(value);
    if (texts.has(value)) {
      this.found++;
      return texts.get(value);
    }
    if (++this.asked === TRIAL && this.found < TRIAL / 2) this.texts = undefined;
    const text = intsText(value);
    texts.set(value, text);
    return text;
  }
}

/** New arrays `IntsTexts` meets before it judges whether keeping their texts pays. */
const TRIAL = 1024;

function pathText(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  let text = "[";
  for (let i = 0; i < value.length; i++) {
    const segment: unknown = value[i];
    if (i > 0) text += ",";
    if (typeof segment === "string") text += PLAIN.test(segment) ? `"${segment}"` : JSON.stringify(segment);
    else if (Number.isSafeInteger(segment) && !Object.is(segment, -0)) text += String(segment);
    else return undefined;
  }
  return `${text}]`;
}

/** `JSON.stringify(node, null, 2)`, its lines indented by `indent`. */
function nativeText(node: unknown, indent: string): string {
  const text = JSON.stringify(node, null, 2) ?? "null";
  return indent === "" ? text : text.replaceAll("\n", `\n${indent}`);
}

/**
 * Whether an array under one of `keys` lies anywhere below `node` (where `writeJson` must write it itself).
 * Deeper than any report nests, it answers yes, and the writer then walks it as before.
 */
function holdsKey(node: object, keys: ReadonlySet<string>, depth: number): boolean {
  if (keys.size === 0) return false;
  if (depth > 64) return true;
  if (Array.isArray(node)) {
    for (const item of node)
      if (typeof item === "object" && item !== null && holdsKey(item, keys, depth + 1)) return true;
    return false;
  }
  if ("toJSON" in node) return false;
  for (const [key, value] of Object.entries(node)) {
    if (keys.has(key) && (Array.isArray(value) || value instanceof ItemList)) return true;
    if (typeof value === "object" && value !== null && holdsKey(value, keys, depth + 1)) return true;
  }
  return false;
}

/** What `JSON.stringify` keeps as an object property. */
function isSerializable(value: unknown): boolean {
  return value !== undefined && typeof value !== "function" && typeof value !== "symbol";
}
