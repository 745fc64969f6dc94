import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isReaderError, type ReaderErrorCode } from "../src/reader/errors.js";
import { FileSource } from "../src/reader/fileSource.js";
import {
  looksLikeSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_DTYPES,
  type SafetensorsFile,
} from "../src/reader/safetensors.js";
import { BufferSource, CountingSource } from "../src/reader/source.js";
import { findTruths } from "./helpers/samples.js";

interface TensorSpec {
  dtype: string;
  shape: number[];
  /** Defaults to the size the dtype and shape need. */
  bytes?: number;
}

const BITS: Record<string, number> = Object.fromEntries([...SAFETENSORS_DTYPES].map(([c, d]) => [c, d.bits]));

/**
 * A tiny safetensors writer: tensors are laid out in the order given, the header is padded to a multiple of 8 as
 * the reference writer does. `header` overrides the JSON text entirely; `dataSize` overrides the buffer length.
 */
function writeSafetensors(
  tensors: Record<string, TensorSpec>,
  options: { metadata?: unknown; header?: string; dataSize?: number; pad?: boolean; length?: bigint } = {},
): Uint8Array {
  let offset = 0;
  const entries: string[] = [];
  if (options.metadata !== undefined) entries.push(`"__metadata__":${JSON.stringify(options.metadata)}`);
  for (const [name, spec] of Object.entries(tensors)) {
    const elements = spec.shape.reduce((a, b) => a * b, 1);
    const size = spec.bytes ?? (elements * (BITS[spec.dtype] ?? 8)) / 8;
    entries.push(
      `${JSON.stringify(name)}:{"dtype":${JSON.stringify(spec.dtype)},"shape":${JSON.stringify(spec.shape)},` +
        `"data_offsets":[${offset},${offset + size}]}`,
    );
    offset += size;
  }
  return assemble(options.header ?? `{${entries.join(",")}}`, options.dataSize ?? offset, options);
}

/** Header text + `dataSize` bytes of data (0, 1, 2, ...). */
function assemble(
  header: string,
  dataSize: number,
  options: { pad?: boolean; length?: bigint } = {},
): Uint8Array {
  let json = Buffer.from(header, "utf8");
  if (options.pad !== false) json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const out = new Uint8Array(8 + json.length + dataSize);
  new DataView(out.buffer).setBigUint64(0, options.length ?? BigInt(json.length), true);
  out.set(json, 8);
  for (let i = 0; i < dataSize; i++) out[8 + json.length + i] = i & 0xff;
  return out;
}

function parse(bytes: Uint8Array): SafetensorsFile {
  return readSafetensorsHeader(new BufferSource(bytes, "test.safetensors"));
}

function errorOf(bytes: Uint8Array): { code: ReaderErrorCode; message: string } {
  try {
    parse(bytes);
  } catch (error) {
    if (isReaderError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected a ReaderError");
}

function expectError(bytes: Uint8Array, code: ReaderErrorCode, message?: RegExp): void {
  const error = errorOf(bytes);
  expect(error.code).toBe(code);
  if (message !== undefined) expect(error.message).toMatch(message);
}

/** A header given as raw text, with the data buffer sized to `dataSize`. */
function raw(header: string, dataSize = 0): Uint8Array {
  return assemble(header, dataSize);
}

describe("readSafetensorsHeader", () => {
  it("reads tensors in header order with absolute offsets, torch dtypes and metadata", () => {
    const bytes = writeSafetensors(
      {
        "b.weight": { dtype: "F32", shape: [2, 3] },
        "a.bias": { dtype: "BF16", shape: [3] },
        scalar: { dtype: "I64", shape: [] },
      },
      { metadata: { format: "pt" } },
    );
    const file = parse(bytes);
    expect(file.headerSize % 8).toBe(0);
    expect(file.dataStart).toBe(8 + file.headerSize);
    expect(file.metadata).toEqual(new Map([["format", "pt"]]));
    expect(file.tensors).toEqual([
      {
        name: "b.weight",
        dtype: "float32",
        code: "F32",
        shape: [2, 3],
        begin: file.dataStart,
        end: file.dataStart + 24,
      },
      {
        name: "a.bias",
        dtype: "bfloat16",
        code: "BF16",
        shape: [3],
        begin: file.dataStart + 24,
        end: file.dataStart + 30,
      },
      {
        name: "scalar",
        dtype: "int64",
        code: "I64",
        shape: [],
        begin: file.dataStart + 30,
        end: file.dataStart + 38,
      },
    ]);
    expect(file.tensors.at(-1)?.end).toBe(bytes.length);
  });

  it("keeps header order even when offsets run backwards", () => {
    const header =
      '{"second":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},' +
      '"first":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}';
    const file = parse(raw(header, 6));
    expect(file.tensors.map((t) => [t.name, t.begin - file.dataStart, t.end - file.dataStart])).toEqual([
      ["second", 4, 6],
      ["first", 0, 4],
    ]);
  });

  it("keeps header order for integer-like names (a JS object would list them first)", () => {
    const header =
      '{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"10":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},' +
      '"2":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}';
    expect(parse(raw(header, 3)).tensors.map((t) => t.name)).toEqual(["z", "10", "2"]);
  });

  it("maps every dtype code to torch's name with the reference bit sizes", () => {
    const expected: Record<string, [string, number]> = {
      BOOL: ["bool", 8],
      U8: ["uint8", 8],
      I8: ["int8", 8],
      I16: ["int16", 16],
      U16: ["uint16", 16],
      F16: ["float16", 16],
      BF16: ["bfloat16", 16],
      I32: ["int32", 32],
      U32: ["uint32", 32],
      F32: ["float32", 32],
      I64: ["int64", 64],
      U64: ["uint64", 64],
      F64: ["float64", 64],
      F8_E5M2: ["float8_e5m2", 8],
      F8_E4M3: ["float8_e4m3fn", 8],
      F8_E8M0: ["float8_e8m0fnu", 8],
      F8_E4M3FNUZ: ["float8_e4m3fnuz", 8],
      F8_E5M2FNUZ: ["float8_e5m2fnuz", 8],
      C64: ["complex64", 64],
      F4: ["float4_e2m1fn_x2", 4],
      F6_E2M3: ["F6_E2M3", 6],
      F6_E3M2: ["F6_E3M2", 6],
    };
    expect(Object.fromEntries([...SAFETENSORS_DTYPES].map(([code, d]) => [code, [d.torch, d.bits]]))).toEqual(
      expected,
    );
    // Shape [8] makes every dtype a whole number of bytes; each tensor takes exactly `bits` bytes.
    const specs = Object.fromEntries(
      Object.keys(expected).map((code) => [code, { dtype: code, shape: [8] }]),
    );
    const file = parse(writeSafetensors(specs));
    for (const tensor of file.tensors) {
      const [torch, bits] = expected[tensor.code] ?? ["?", 0];
      expect(tensor.dtype).toBe(torch);
      expect(tensor.end - tensor.begin).toBe(bits);
    }
  });

  it("accepts an empty header, zero-sized tensors (several at one offset) and no padding", () => {
    expect(parse(raw("{}")).tensors).toEqual([]);
    const header =
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"e1":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]},' +
      '"e2":{"dtype":"F16","shape":[3,0],"data_offsets":[4,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}';
    const file = parse(assemble(header, 6, { pad: false }));
    expect(file.headerSize).toBe(Buffer.byteLength(header));
    expect(file.tensors.map((t) => [t.name, t.shape, t.end - t.begin])).toEqual([
      ["a", [1], 4],
      ["e1", [0, 5], 0],
      ["e2", [3, 0], 0],
      ["b", [2], 2],
    ]);
  });

  it("accepts leading and trailing JSON whitespace", () => {
    const file = parse(raw(' \n\t\r{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}  \n', 1));
    expect(file.tensors.map((t) => t.name)).toEqual(["t"]);
  });

  it("ignores unknown fields in a tensor entry, as serde does", () => {
    const header = '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":[1.5,{"x":null}]}}';
    expect(parse(raw(header, 1)).tensors).toHaveLength(1);
  });

  it("decodes escapes and UTF-8 in names and metadata", () => {
    const header =
      '{"__metadata__":{"k\\u00e9y":"tab\\there \\"q\\" \\\\ \\/ \\ud83d\\ude00","é":"ü"},' +
      '"na\\nme":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"ĉapelo":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}';
    const file = parse(raw(header, 2));
    const expected = JSON.parse(header) as Record<string, unknown>;
    expect(Object.fromEntries(file.metadata ?? [])).toEqual(expected.__metadata__);
    expect(file.tensors.map((t) => t.name)).toEqual(["na\nme", "ĉapelo"]);
  });

  it("round-trips any string JSON.stringify writes, in keys and values", () => {
    let seed = 1;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const pool = [0x00, 0x09, 0x0a, 0x1f, 0x22, 0x2f, 0x5c, 0x7f, 0xe9, 0x2028, 0xfeff, 0x1f600, 0x10ffff];
    const metadata: Record<string, string> = {};
    for (let i = 0; i < 200; i++) {
      const chars = Array.from({ length: random(12) }, () =>
        String.fromCodePoint(random(2) === 0 ? (pool[random(pool.length)] ?? 0x41) : 0x20 + random(0x5f)),
      );
      metadata[`k${i}${chars.join("")}`] = chars.reverse().join("");
    }
    const file = parse(writeSafetensors({}, { metadata }));
    expect(Object.fromEntries(file.metadata ?? [])).toEqual(metadata);
  });

  it("treats __metadata__: null as absent and a header without it as undefined", () => {
    expect(parse(raw('{"__metadata__":null}')).metadata).toBeUndefined();
    expect(parse(raw("{}")).metadata).toBeUndefined();
    expect(parse(raw('{"__metadata__":{}}')).metadata).toEqual(new Map());
  });

  it("keeps the last entry of a duplicated tensor name at its first position", () => {
    const header =
      '{"dup":{"dtype":"U8","shape":[9],"data_offsets":[0,9]},"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},' +
      '"dup":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}';
    const file = parse(raw(header, 3));
    expect(file.tensors.map((t) => [t.name, t.shape])).toEqual([
      ["dup", [2]],
      ["x", [1]],
    ]);
  });

  it("does not let __proto__ or constructor keys reach any prototype", () => {
    const header =
      '{"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"polluted":"yes"},' +
      '"__metadata__":{"__proto__":"x","constructor":"y"}}';
    const file = parse(raw(header, 1));
    expect(file.tensors.map((t) => t.name)).toEqual(["__proto__"]);
    expect(file.metadata?.get("__proto__")).toBe("x");
    expect(file.metadata?.get("constructor")).toBe("y");
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty("polluted");
    expectError(
      raw('{"t":{"dtype":"constructor","shape":[],"data_offsets":[0,0]}}'),
      "safetensors-malformed",
    );
    expectError(raw('{"t":{"dtype":"__proto__","shape":[],"data_offsets":[0,0]}}'), "safetensors-malformed");
  });

  it("reads the length and then the header, in one read each", () => {
    const bytes = writeSafetensors({ t: { dtype: "F32", shape: [1000] } });
    const source = new CountingSource(new BufferSource(bytes));
    const file = readSafetensorsHeader(source);
    expect(source.readCount).toBe(2);
    expect(source.bytesRead).toBe(8 + file.headerSize);
  });

  describe("errors", () => {
    it("refuses a header length above the 100,000,000-byte cap", () => {
      const bytes = assemble("{}", 0, { length: 100_000_001n });
      expectError(bytes, "safetensors-malformed", /100,000,000/);
      expectError(assemble("{}", 0, { length: 1n << 63n }), "safetensors-malformed", /100,000,000/);
    });

    it("reports files shorter than their header as truncated", () => {
      expectError(new Uint8Array(0), "safetensors-truncated");
      expectError(new Uint8Array(7), "safetensors-truncated");
      const whole = writeSafetensors({ t: { dtype: "F32", shape: [4] } });
      const headerEnd = whole.length - 16;
      expectError(whole.subarray(0, headerEnd - 1), "safetensors-truncated");
      expectError(assemble("{}", 0, { length: 1000n }), "safetensors-truncated");
    });

    it("reports a data buffer shorter than the tensors as truncated", () => {
      const whole = writeSafetensors({ t: { dtype: "F32", shape: [4] } });
      expectError(whole.subarray(0, whole.length - 1), "safetensors-truncated");
      expectError(whole.subarray(0, whole.length - 16), "safetensors-truncated");
    });

    it("reports tensors extending far past 2^53 as truncated, exactly", () => {
      const header = '{"t":{"dtype":"U8","shape":[10000000000000001],"data_offsets":[0,10000000000000001]}}';
      const bytes = raw(header, 4);
      const end = 10000000000000001n + BigInt(bytes.length - 4);
      expectError(bytes, "safetensors-truncated", new RegExp(`end at byte ${end} `));
      const spanOff = '{"t":{"dtype":"U8","shape":[10000000000000001],"data_offsets":[0,10000000000000000]}}';
      expectError(raw(spanOff, 4), "safetensors-malformed", /needs 10000000000000001 bytes/);
    });

    it("refuses bytes after the last tensor (MetadataIncompleteBuffer)", () => {
      const bytes = writeSafetensors({ t: { dtype: "F32", shape: [4] } }, { dataSize: 17 });
      expectError(bytes, "safetensors-malformed", /1 unexpected bytes/);
      expectError(raw("{}", 3), "safetensors-malformed");
    });

    it("refuses gaps, overlaps, a first tensor not at 0 and reversed offsets", () => {
      const gap =
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}';
      expectError(raw(gap, 5), "safetensors-malformed", /gap/);
      const overlap =
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}';
      expectError(raw(overlap, 3), "safetensors-malformed", /overlapping/);
      expectError(raw('{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', 3), "safetensors-malformed");
      expectError(raw('{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,0]}}', 2), "safetensors-malformed");
    });

    it("refuses a byte span that does not match shape x dtype", () => {
      const bytes = writeSafetensors({ t: { dtype: "F32", shape: [2, 2], bytes: 12 } });
      expectError(bytes, "safetensors-malformed", /needs 16 bytes/);
    });

    it("refuses sub-byte tensors that do not fill whole bytes", () => {
      expectError(
        writeSafetensors({ t: { dtype: "F4", shape: [3], bytes: 2 } }),
        "safetensors-malformed",
        /whole/,
      );
      expectError(
        writeSafetensors({ t: { dtype: "F6_E2M3", shape: [2], bytes: 2 } }),
        "safetensors-malformed",
      );
      expect(
        parse(writeSafetensors({ t: { dtype: "F6_E3M2", shape: [4] } })).tensors[0]?.end,
      ).toBeGreaterThan(0);
    });

    it("refuses shapes whose size overflows 64 bits", () => {
      const elements = '{"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}}';
      expectError(raw(elements), "safetensors-malformed", /overflows/);
      const bits = '{"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,0]}}';
      expectError(raw(bits), "safetensors-malformed", /overflows/);
      // The reference folds left with checked_mul: the overflow is caught before the trailing 0.
      const early = '{"t":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}';
      expectError(raw(early), "safetensors-malformed", /overflows/);
    });

    it("refuses bad metadata", () => {
      expectError(raw('{"__metadata__":{"epoch":3}}'), "safetensors-malformed", /not a string/);
      expectError(raw('{"__metadata__":{"a":null}}'), "safetensors-malformed");
      expectError(raw('{"__metadata__":["pt"]}'), "safetensors-malformed");
      expectError(raw('{"__metadata__":"pt"}'), "safetensors-malformed");
      expectError(raw('{"__metadata__":{},"__metadata__":{}}'), "safetensors-malformed", /twice/);
    });

    it("refuses unknown dtypes (codes are case-sensitive)", () => {
      expectError(
        writeSafetensors({ t: { dtype: "F128", shape: [1], bytes: 16 } }),
        "safetensors-malformed",
        /F128/,
      );
      expectError(writeSafetensors({ t: { dtype: "f32", shape: [1], bytes: 4 } }), "safetensors-malformed");
      expectError(raw('{"t":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}', 4), "safetensors-malformed");
    });

    it("refuses malformed tensor entries", () => {
      const cases = [
        '{"t":[]}',
        '{"t":"F32"}',
        '{"t":{"shape":[1],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[1]}}',
        '{"t":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[1e0],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[-0],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[18446744073709551616],"data_offsets":[0,1]}}',
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}',
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[1]}}',
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}}',
        '{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
      ];
      for (const header of cases) {
        expect(errorOf(raw(header, 1)).code, header).toBe("safetensors-malformed");
      }
    });

    it("accepts the largest u64 dimension when another dimension is 0 only up to 2^53 - 1", () => {
      const ok = '{"t":{"dtype":"U8","shape":[9007199254740991,0],"data_offsets":[0,0]}}';
      expect(parse(raw(ok)).tensors[0]?.shape).toEqual([9007199254740991, 0]);
      const big = '{"t":{"dtype":"U8","shape":[0,18446744073709551615],"data_offsets":[0,0]}}';
      expectError(raw(big), "safetensors-malformed", /2\^53/);
    });

    it("refuses headers that are not UTF-8 or not a JSON object", () => {
      const notUtf8 = assemble("{}", 0);
      notUtf8[9] = 0xff;
      expectError(notUtf8, "safetensors-malformed", /UTF-8/);
      for (const header of [
        "not json",
        "[]",
        "null",
        '"x"',
        "{",
        '{"a":1,}',
        "{'a':1}",
        '{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}} x',
        "\ufeff{}",
        '{"a":"\u0001"}',
        '{"a":"\\x"}',
        '{"a":"\\u12"}',
        '{"a":01}',
        '{"a":1e999}',
        '{"a":"\\ud800"}',
        '{"a":"\\udc00\\ud800"}',
        "{}{}",
        "",
      ]) {
        expect(errorOf(raw(header)).code, JSON.stringify(header)).toBe("safetensors-malformed");
      }
    });

    it("limits nesting like serde_json (127 levels)", () => {
      // `depth` containers in all: the root, the tensor entry, and arrays in an ignored field.
      const nest = (depth: number) =>
        `{"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}}}`;
      expect(parse(raw(nest(127))).tensors).toHaveLength(1);
      expectError(raw(nest(128)), "safetensors-malformed", /deep/);
      expectError(raw(nest(200_000)), "safetensors-malformed", /deep/);
    });
  });
});

describe("looksLikeSafetensors", () => {
  const head = (bytes: Uint8Array) => bytes.subarray(0, 16);

  it("recognises real headers, with or without leading whitespace", () => {
    const bytes = writeSafetensors({ t: { dtype: "F32", shape: [4] } });
    expect(looksLikeSafetensors(head(bytes), bytes.length)).toBe(true);
    const spaced = raw('  \n{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1);
    expect(looksLikeSafetensors(head(spaced), spaced.length)).toBe(true);
    expect(looksLikeSafetensors(head(raw("{}")), 16)).toBe(true);
  });

  it("rejects other formats and impossible lengths", () => {
    const bytes = writeSafetensors({ t: { dtype: "F32", shape: [4] } });
    expect(looksLikeSafetensors(head(bytes), 20)).toBe(false);
    expect(looksLikeSafetensors(head(bytes).subarray(0, 8), bytes.length)).toBe(false);
    expect(looksLikeSafetensors(new Uint8Array(0), 0)).toBe(false);
    const zip = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]);
    expect(looksLikeSafetensors(zip, 1 << 30)).toBe(false);
    const pickle = Uint8Array.from([
      0x80, 0x02, 0x7d, 0x71, 0, 0x28, 0x58, 0x01, 0, 0, 0, 0x61, 0x71, 1, 0x4b, 1,
    ]);
    expect(looksLikeSafetensors(pickle, 1 << 30)).toBe(false);
    expect(looksLikeSafetensors(head(assemble("[]", 0)), 1000)).toBe(false);
    expect(looksLikeSafetensors(head(assemble("{}", 0, { length: 100_000_001n })), 1 << 30)).toBe(false);
    expect(looksLikeSafetensors(head(assemble("{}", 0, { length: 1n << 32n })), 2 ** 40)).toBe(false);
    expect(looksLikeSafetensors(head(assemble("{}", 0, { length: 0n })), 100)).toBe(false);
    expect(looksLikeSafetensors(Buffer.from("model_0004999.pth"), 17)).toBe(false);
  });
});

// Samples written by real torch/safetensors installs (samples/make_samples.py), when present: every
// `X.truth.json` with `"format": "safetensors"` describes X. Runs over zero files when there are none.

interface Truth {
  format?: string;
  metadata?: Record<string, string> | null;
  tensors?: Array<{
    path: string[];
    dtype: string;
    shape: number[];
    storage?: { sizeBytes?: number };
    sha256?: string;
  }>;
}

describe("safetensors samples", () => {
  const samples = findTruths<Truth>();

  it("read back as their truth files say: order, dtypes, shapes, sizes, bytes, metadata", () => {
    for (const { path, truth } of samples.filter((s) => s.truth.format === "safetensors")) {
      const source = FileSource.open(path);
      try {
        const file = readSafetensorsHeader(source);
        const want = truth.tensors ?? [];
        expect(
          file.tensors.map((t) => [t.name, t.dtype, t.shape]),
          path,
        ).toEqual(want.map((t) => [t.path.join("."), t.dtype.replace(/^torch\./, ""), t.shape]));
        for (const [i, tensor] of file.tensors.entries()) {
          const { storage, sha256 } = want[i] ?? {};
          if (storage?.sizeBytes !== undefined) expect(tensor.end - tensor.begin).toBe(storage.sizeBytes);
          if (sha256 === undefined) continue;
          const bytes = source.read(tensor.begin, tensor.end - tensor.begin);
          expect(createHash("sha256").update(bytes).digest("hex"), `${path} ${tensor.name}`).toBe(sha256);
        }
        if (truth.metadata !== undefined) {
          expect(file.metadata && Object.fromEntries(file.metadata), path).toEqual(
            truth.metadata ?? undefined,
          );
        }
        expect(file.tensors.at(-1)?.end ?? file.dataStart, path).toBe(source.size);
      } finally {
        source.close();
      }
    }
  });

  it("are the only samples the sniff accepts", () => {
    for (const { path, truth } of samples) {
      const bytes = readFileSync(path);
      expect(looksLikeSafetensors(bytes.subarray(0, 16), bytes.length), path).toBe(
        truth.format === "safetensors",
      );
    }
  });
});
