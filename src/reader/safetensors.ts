import { utf8Length } from "./bytes.js";
import { ReaderError } from "./errors.js";
import type { ByteSource } from "./source.js";

/**
 * The safetensors header: an 8-byte little-endian length N, N bytes of UTF-8 JSON, then the data buffer.
 *
 * Validation follows the reference Rust implementation (huggingface/safetensors `safetensors/src/tensor.rs`,
 * `SafeTensors::read_metadata` and `Metadata::validate`) rule for rule, so a file ckpt accepts is one
 * `safetensors.safe_open` accepts and vice versa. The header is parsed by a small strict JSON parser rather than
 * `JSON.parse`, because serde tells apart things `JSON.parse` erases: `2` vs `2.0` (a float is not a `usize`),
 * lone surrogate escapes (rejected), duplicate struct fields (rejected), nesting depth (serde_json stops at 128),
 * and key order (a JS object lists integer-like keys first). Untrusted keys only ever go into `Map`s.
 */

/** `MAX_HEADER_SIZE` of the reference implementation: a larger header is refused before it is read. */
export const SAFETENSORS_MAX_HEADER_SIZE = 100_000_000;

export interface SafetensorsDtype {
  /** The code written in the header (`"F32"`). */
  readonly code: string;
  /**
   * torch's dtype name (`"float32"`). `F6_E2M3` and `F6_E3M2` have no torch dtype and keep their code. `F4` maps
   * to `float4_e2m1fn_x2`, but safetensors counts 4-bit elements while one torch `_x2` element is a byte holding
   * two of them: the shape in the header is in 4-bit elements, so its last dimension is twice torch's.
   */
  readonly torch: string;
  /** Bits per element (`Dtype::bitsize`); the sub-byte ones are 4 and 6. */
  readonly bits: number;
}

const DTYPE_ROWS: ReadonlyArray<readonly [code: string, torch: string, bits: number]> = [
  ["BOOL", "bool", 8],
  ["U8", "uint8", 8],
  ["I8", "int8", 8],
  ["I16", "int16", 16],
  ["U16", "uint16", 16],
  ["F16", "float16", 16],
  ["BF16", "bfloat16", 16],
  ["I32", "int32", 32],
  ["U32", "uint32", 32],
  ["F32", "float32", 32],
  ["I64", "int64", 64],
  ["U64", "uint64", 64],
  ["F64", "float64", 64],
  ["F8_E5M2", "float8_e5m2", 8],
  ["F8_E4M3", "float8_e4m3fn", 8],
  ["F8_E8M0", "float8_e8m0fnu", 8],
  ["F8_E4M3FNUZ", "float8_e4m3fnuz", 8],
  ["F8_E5M2FNUZ", "float8_e5m2fnuz", 8],
  ["C64", "complex64", 64],
  ["F4", "float4_e2m1fn_x2", 4],
  ["F6_E2M3", "F6_E2M3", 6],
  ["F6_E3M2", "F6_E3M2", 6],
];

/** Every dtype code the reference implementation knows, keyed by code. Codes are case-sensitive. */
export const SAFETENSORS_DTYPES: ReadonlyMap<string, SafetensorsDtype> = new Map(
  DTYPE_ROWS.map(([code, torch, bits]) => [code, { code, torch, bits }]),
);

export interface SafetensorsTensor {
  readonly name: string;
  /** torch's dtype name (`float32`, `bfloat16`, `float8_e4m3fn`, ...); see `SafetensorsDtype.torch`. */
  readonly dtype: string;
  /** The safetensors code as written (`F32`). */
  readonly code: string;
  readonly shape: number[];
  /** Absolute file offset of the first byte (the header's `data_offsets[0]` plus `dataStart`). */
  readonly begin: number;
  /** Absolute file offset one past the last byte. */
  readonly end: number;
}

export interface SafetensorsFile {
  /** N, the JSON header's length in bytes (including any space padding). */
  readonly headerSize: number;
  /** `8 + headerSize`: where the data buffer starts. */
  readonly dataStart: number;
  /** `__metadata__`, or undefined when the header has none (or `null`). */
  readonly metadata: Map<string, string> | undefined;
  /**
   * In header order. A name that appears twice keeps its first position and its last entry, as serde's map keeps
   * the last value (the spec disallows duplicates; the reference accepts them silently).
   */
  readonly tensors: SafetensorsTensor[];
}

const U64_MAX = (1n << 64n) - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function isJsonSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/**
 * A cheap sniff from the first bytes (16 are plenty): a plausible header length that fits in the file, and a
 * `{` as the first non-whitespace byte after it. Never throws.
 */
export function looksLikeSafetensors(head: Uint8Array, fileSize: number): boolean {
  if (head.length < 9) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(4, true) !== 0) return false;
  const n = view.getUint32(0, true);
  // "{}" is the smallest header.
  if (n < 2 || n > SAFETENSORS_MAX_HEADER_SIZE || 8 + n > fileSize) return false;
  const stop = Math.min(head.length, 8 + n);
  for (let i = 8; i < stop; i++) {
    const byte = head[i] as number;
    if (byte === 0x7b) return true;
    if (!isJsonSpace(byte)) return false;
  }
  return false;
}

const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Reads and validates the header: two reads (the length, then exactly the N header bytes), no tensor data.
 * Throws `safetensors-truncated` when the file is shorter than its header says, `safetensors-malformed` for
 * everything the reference implementation rejects otherwise.
 */
export function readSafetensorsHeader(source: ByteSource): SafetensorsFile {
  const file = source.name;
  const size = source.size;
  const malformed = (message: string, offset?: number): ReaderError =>
    new ReaderError("safetensors-malformed", message, offset === undefined ? { file } : { offset, file });

  if (size < 8) {
    throw new ReaderError(
      "safetensors-truncated",
      `the file has ${size} bytes, fewer than the 8-byte header length`,
      { offset: 0, file },
    );
  }
  const prefix = source.read(0, 8);
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(SAFETENSORS_MAX_HEADER_SIZE)) {
    throw malformed(
      `the header length ${declared} exceeds the safetensors cap of 100,000,000 bytes (HeaderTooLarge)`,
      0,
    );
  }
  const headerSize = Number(declared);
  const dataStart = 8 + headerSize;
  if (dataStart > size) {
    throw new ReaderError(
      "safetensors-truncated",
      `the ${headerSize}-byte header extends past the end of the ${size}-byte file`,
      { offset: 0, file },
    );
  }

  const bytes = source.read(8, headerSize);
  let text: string;
  try {
    text = utf8Strict.decode(bytes);
  } catch {
    throw malformed("the header is not valid UTF-8", 8);
  }

  let root: JsonValue;
  try {
    root = new JsonParser(text).parseDocument();
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    const at = 8 + utf8Length(text.slice(0, error.position));
    throw malformed(`the header is not valid JSON: ${error.message} at byte ${at}`, at);
  }
  if (!(root instanceof JsonObject)) throw malformed("the header is not a JSON object", 8);

  let metadata: Map<string, string> | undefined;
  const entries: HeaderEntry[] = [];
  for (const [name, value] of root.entries) {
    if (name === "__metadata__") {
      if (root.duplicates?.has(name)) throw malformed('"__metadata__" appears twice in the header');
      metadata = readMetadata(value, malformed);
    } else {
      entries.push(readTensorEntry(name, value, malformed));
    }
  }
  const cursor = checkLayout(entries, malformed);

  // 8 + N + last end must be the file's length exactly (MetadataIncompleteBuffer otherwise).
  const expected = add(cursor, dataStart);
  if (expected > size) {
    throw new ReaderError(
      "safetensors-truncated",
      `the tensors end at byte ${expected} but the file has only ${size} bytes`,
      { offset: size, file },
    );
  }
  if (expected < size) {
    const end = Number(expected);
    throw malformed(`${size - end} unexpected bytes after the last tensor (MetadataIncompleteBuffer)`, end);
  }

  // Everything now lies inside the file, so offsets are safe integers. A dimension can still be huge when
  // another one is 0; a JS number cannot carry it exactly.
  const tensors = entries.map((entry): SafetensorsTensor => {
    const shape = entry.shape.map((dim) => {
      if (typeof dim === "bigint") {
        throw malformed(`${tensorLabel(entry.name)}: dimension ${dim} exceeds 2^53 - 1`);
      }
      return dim;
    });
    return {
      name: entry.name,
      dtype: entry.dtype.torch,
      code: entry.dtype.code,
      shape,
      begin: dataStart + Number(entry.begin),
      end: dataStart + Number(entry.end),
    };
  });
  return { headerSize, dataStart, metadata, tensors };
}

type Malformed = (message: string) => ReaderError;

/** One tensor as the header states it, before validation. */
interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: Usize[];
  begin: Usize;
  end: Usize;
}

function tensorLabel(name: string): string {
  return `tensor ${JSON.stringify(name)}`;
}

/** serde's `TensorInfo`: the three fields (once each, unknown ones ignored) with their exact types. */
function readTensorEntry(name: string, value: JsonValue, malformed: Malformed): HeaderEntry {
  const where = tensorLabel(name);
  if (!(value instanceof JsonObject)) throw malformed(`${where}: the entry is not a JSON object`);
  for (const field of ["dtype", "shape", "data_offsets"]) {
    if (value.duplicates?.has(field)) throw malformed(`${where}: field "${field}" appears twice`);
  }
  const code = value.entries.get("dtype");
  if (code === undefined) throw malformed(`${where}: missing "dtype"`);
  if (typeof code !== "string") throw malformed(`${where}: "dtype" is not a string`);
  const dtype = SAFETENSORS_DTYPES.get(code);
  if (dtype === undefined) throw malformed(`${where}: unknown dtype ${JSON.stringify(code)}`);
  const shapeValue = value.entries.get("shape");
  if (shapeValue === undefined) throw malformed(`${where}: missing "shape"`);
  if (!Array.isArray(shapeValue)) throw malformed(`${where}: "shape" is not an array`);
  const shape: Usize[] = [];
  for (const dim of shapeValue) {
    const n = asUsize(dim);
    if (n === undefined)
      throw malformed(`${where}: "shape" holds ${describe(dim)}, not a non-negative integer`);
    shape.push(n);
  }
  const offsetsValue = value.entries.get("data_offsets");
  if (offsetsValue === undefined) throw malformed(`${where}: missing "data_offsets"`);
  if (!Array.isArray(offsetsValue) || offsetsValue.length !== 2) {
    throw malformed(`${where}: "data_offsets" is not a [begin, end] pair`);
  }
  const begin = asUsize(offsetsValue[0] ?? null);
  const end = asUsize(offsetsValue[1] ?? null);
  if (begin === undefined || end === undefined) {
    throw malformed(`${where}: "data_offsets" must hold two non-negative integers`);
  }
  return { name, dtype, shape, begin, end };
}

/**
 * `Metadata::validate`: in (begin, end) order the tensors tile the buffer from 0 with no gap and no overlap, and
 * each one's byte length is exactly what its shape and dtype need. Returns where the last tensor ends.
 * Array.prototype.sort is stable, as is Rust's `sort_by`.
 */
function checkLayout(entries: readonly HeaderEntry[], malformed: Malformed): Usize {
  const sorted = [...entries].sort((a, b) =>
    a.begin !== b.begin ? (a.begin < b.begin ? -1 : 1) : a.end < b.end ? -1 : a.end > b.end ? 1 : 0,
  );
  let cursor: Usize = 0;
  for (const entry of sorted) {
    if (entry.end < entry.begin) {
      throw malformed(
        `${tensorLabel(entry.name)}: data_offsets [${entry.begin}, ${entry.end}] end before they begin`,
      );
    }
    if (entry.begin !== cursor) {
      throw malformed(
        entry.begin > cursor
          ? `${tensorLabel(entry.name)}: data begins at ${entry.begin}, leaving a gap after offset ${cursor}`
          : `${tensorLabel(entry.name)}: data begins at ${entry.begin}, overlapping the previous tensor, ` +
              `which ends at ${cursor}`,
      );
    }
    cursor = entry.end;
    const needed = byteSize(entry, malformed);
    const span = subtract(entry.end, entry.begin);
    if (span !== needed) {
      throw malformed(
        `${tensorLabel(entry.name)}: shape [${entry.shape.join(", ")}] of ${entry.dtype.code} needs ` +
          `${needed} bytes, data_offsets span ${span}`,
      );
    }
  }
  return cursor;
}

/** product(shape) * bits / 8 with the reference's checks: 64-bit overflow at any step, whole bytes only. */
function byteSize(entry: HeaderEntry, malformed: Malformed): Usize {
  // try_fold(1, checked_mul): an intermediate product above 2^64 - 1 fails even if a later dimension is 0.
  let elements: Usize = 1;
  for (const dim of entry.shape) {
    elements = multiply(elements, dim);
    if (elements > U64_MAX) {
      throw malformed(`${tensorLabel(entry.name)}: the element count of shape overflows 64 bits`);
    }
  }
  const bits = multiply(elements, entry.dtype.bits);
  if (bits > U64_MAX)
    throw malformed(`${tensorLabel(entry.name)}: the bit size of the tensor overflows 64 bits`);
  const whole = typeof bits === "number" ? bits % 8 === 0 : bits % 8n === 0n;
  if (!whole) {
    throw malformed(
      `${tensorLabel(entry.name)}: ${elements} ${entry.dtype.code} elements do not fill a whole number of bytes`,
    );
  }
  return typeof bits === "number" ? bits / 8 : usize(bits / 8n);
}

function readMetadata(value: JsonValue, malformed: Malformed): Map<string, string> | undefined {
  // serde's Option: null means absent.
  if (value === null) return undefined;
  if (!(value instanceof JsonObject)) throw malformed('"__metadata__" is not a JSON object');
  const metadata = new Map<string, string>();
  for (const [key, item] of value.entries) {
    if (typeof item !== "string") {
      throw malformed(`"__metadata__" value for ${JSON.stringify(key)} is ${describe(item)}, not a string`);
    }
    metadata.set(key, item);
  }
  return metadata;
}

/**
 * A value up to 2^64 - 1: a number while it is at most 2^53 - 1, a bigint above. Each value has one
 * representation, so `===` compares values; `<` and `>` compare numbers with bigints exactly.
 */
type Usize = number | bigint;

function usize(value: bigint): Usize {
  return value <= MAX_SAFE ? Number(value) : value;
}

function multiply(a: Usize, b: Usize): Usize {
  if (typeof a === "number" && typeof b === "number") {
    const product = a * b;
    if (product <= Number.MAX_SAFE_INTEGER) return product;
  }
  return usize(BigInt(a) * BigInt(b));
}

function add(a: Usize, b: Usize): Usize {
  if (typeof a === "number" && typeof b === "number") {
    const sum = a + b;
    if (sum <= Number.MAX_SAFE_INTEGER) return sum;
  }
  return usize(BigInt(a) + BigInt(b));
}

function subtract(a: Usize, b: Usize): Usize {
  return typeof a === "number" && typeof b === "number" ? a - b : usize(BigInt(a) - BigInt(b));
}

/** A serde `usize` (64-bit): a JSON integer literal, no sign, no fraction or exponent, at most 2^64 - 1. */
function asUsize(value: JsonValue): Usize | undefined {
  if (!(value instanceof JsonNumber) || !/^(?:0|[1-9][0-9]*)$/.test(value.raw)) return undefined;
  // Fifteen digits stay below 2^53.
  if (value.raw.length <= 15) return Number(value.raw);
  const n = BigInt(value.raw);
  return n <= U64_MAX ? usize(n) : undefined;
}

function describe(value: JsonValue): string {
  if (value === null) return "null";
  if (value instanceof JsonNumber) return value.raw;
  if (value instanceof JsonObject) return "an object";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return String(value);
}

// ---------------------------------------------------------------------------------------------------------
// Strict JSON (RFC 8259, as serde_json reads it).

/** A number kept as its source text. */
class JsonNumber {
  constructor(readonly raw: string) {}
}

/** An object in key order. A repeated key keeps its first position and its last value, as `JSON.parse` does. */
class JsonObject {
  readonly entries = new Map<string, JsonValue>();
  /** Keys seen more than once; allocated only when there is one. */
  duplicates: Set<string> | undefined;
}

type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

/** serde_json's recursion limit: the 128th nested array or object is refused. */
const MAX_DEPTH = 127;

/** `\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t` (as char codes); `\u` is checked apart. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class JsonParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): JsonValue {
    this.skipSpace();
    const value = this.parseValue(0);
    this.skipSpace();
    if (this.pos < this.text.length) this.fail("trailing characters");
    return value;
  }

  private fail(message: string): never {
    throw new JsonSyntaxError(message, this.pos);
  }

  private skipSpace(): void {
    const text = this.text;
    let pos = this.pos;
    while (pos < text.length && isJsonSpace(text.charCodeAt(pos))) pos++;
    this.pos = pos;
  }

  private parseValue(depth: number): JsonValue {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b:
        return this.parseObject(depth + 1);
      case 0x5b:
        return this.parseArray(depth + 1);
      case 0x22:
        return this.parseString();
      case 0x74:
        return this.parseLiteral("true", true);
      case 0x66:
        return this.parseLiteral("false", false);
      case 0x6e:
        return this.parseLiteral("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
        return this.fail(Number.isNaN(c) ? "unexpected end of input" : "expected a value");
    }
  }

  private parseLiteral<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail("expected a value");
    this.pos += word.length;
    return value;
  }

  private parseNumber(): JsonNumber {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) return this.fail("invalid number");
    const raw = match[0];
    // serde_json refuses a number whose value overflows a double ("number out of range").
    if (!Number.isFinite(Number(raw))) this.fail("number out of range");
    this.pos += raw.length;
    return new JsonNumber(raw);
  }

  private parseString(): string {
    const text = this.text;
    const start = this.pos + 1;
    let pos = start;
    let escaped = false;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (Number.isNaN(c)) {
        this.pos = pos;
        this.fail("unterminated string");
      }
      if (c === 0x22) break;
      if (c < 0x20) {
        this.pos = pos;
        this.fail("control character in a string");
      }
      if (c === 0x5c) {
        escaped = true;
        const e = text.charCodeAt(pos + 1);
        if (e === 0x75) {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) {
            this.pos = pos;
            this.fail("invalid \\u escape");
          }
          pos += 6;
          continue;
        }
        if (!SIMPLE_ESCAPES.has(e)) {
          this.pos = pos;
          this.fail("invalid escape");
        }
        pos += 2;
        continue;
      }
      pos++;
    }
    this.pos = pos + 1;
    if (!escaped) return text.slice(start, pos);
    // The token is valid JSON by now, so the native parser only does the unescaping.
    const value = JSON.parse(text.slice(start - 1, pos + 1)) as string;
    if (hasLoneSurrogate(value)) {
      this.pos = start - 1;
      this.fail("lone surrogate in a \\u escape");
    }
    return value;
  }

  private parseArray(depth: number): JsonValue[] {
    if (depth > MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const items: JsonValue[] = [];
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return items;
    }
    for (;;) {
      this.skipSpace();
      items.push(this.parseValue(depth));
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x5d) return items;
      if (c !== 0x2c) {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
    }
  }

  private parseObject(depth: number): JsonObject {
    if (depth > MAX_DEPTH) this.fail("nesting too deep");
    this.pos++;
    const object = new JsonObject();
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return object;
    }
    for (;;) {
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail("expected a string key");
      const key = this.parseString();
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipSpace();
      const value = this.parseValue(depth);
      if (object.entries.has(key)) {
        object.duplicates ??= new Set();
        object.duplicates.add(key);
      }
      object.entries.set(key, value);
      this.skipSpace();
      const c = this.text.charCodeAt(this.pos);
      this.pos++;
      if (c === 0x7d) return object;
      if (c !== 0x2c) {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
    }
  }
}

function hasLoneSurrogate(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return true;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}
