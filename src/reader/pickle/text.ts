import { isAscii, latin1 } from "../bytes.js";
import { ReaderError } from "../errors.js";

/**
 * Byte-to-text decoders with Python's semantics. Pickles store `str` as UTF-8 with `surrogatepass`, so a lone
 * surrogate must survive (TextDecoder would replace it); protocol 0 uses escape codecs.
 */

const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/**
 * `bytes[start, end)` as a Python str; ASCII (nearly every key and class name) takes a shortcut past the
 * UTF-8 decoder, several times faster. Errors name byte `errorOffset + i`.
 */
export function decodeUtf8Range(bytes: Uint8Array, start: number, end: number, errorOffset = start): string {
  if (isAscii(bytes, start, end)) {
    // Past a few characters the native decoder is faster (a key of 30: 220 ns against 430).
    return end - start <= 16 ? latin1(bytes, start, end) : utf8Strict.decode(bytes.subarray(start, end));
  }
  const range = bytes.subarray(start, end);
  try {
    return utf8Strict.decode(range);
  } catch {
    return decodeUtf8SurrogatePass(range, errorOffset);
  }
}

/** `bytes` as a Python str; errors name byte `offset + i`. */
export function decodeUtf8(bytes: Uint8Array, offset: number): string {
  return decodeUtf8Range(bytes, 0, bytes.length, offset);
}

/** UTF-8 that also accepts encoded surrogates (ED A0..BF xx), as Python's `surrogatepass` does. */
function decodeUtf8SurrogatePass(bytes: Uint8Array, offset: number): string {
  let out = "";
  let i = 0;
  const fail = (): never => {
    throw new ReaderError("pickle-malformed", `invalid UTF-8 in a string at byte ${offset + i}`, {
      offset: offset + i,
    });
  };
  const cont = (k: number): number => {
    const b = bytes[i + k];
    if (b === undefined || (b & 0xc0) !== 0x80) fail();
    return (b as number) & 0x3f;
  };
  while (i < bytes.length) {
    const b0 = bytes[i] as number;
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i += 1;
    } else if (b0 >= 0xc2 && b0 < 0xe0) {
      out += String.fromCharCode(((b0 & 0x1f) << 6) | cont(1));
      i += 2;
    } else if (b0 >= 0xe0 && b0 < 0xf0) {
      const code = ((b0 & 0x0f) << 12) | (cont(1) << 6) | cont(2);
      if (code < 0x800) fail();
      out += String.fromCharCode(code);
      i += 3;
    } else if (b0 >= 0xf0 && b0 < 0xf5) {
      const code = ((b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
      if (code < 0x10000 || code > 0x10ffff) fail();
      out += String.fromCodePoint(code);
      i += 4;
    } else {
      fail();
    }
  }
  return out;
}

export function decodeLatin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/** Python's `raw-unicode-escape` decoding (protocol 0 UNICODE): `\uXXXX` and `\UXXXXXXXX`, else latin-1. */
export function decodeRawUnicodeEscape(bytes: Uint8Array, offset: number): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b === 0x5c && (bytes[i + 1] === 0x75 || bytes[i + 1] === 0x55)) {
      // An escape only counts when preceded by an even number of backslashes.
      let backslashes = 0;
      for (let j = i - 1; j >= 0 && bytes[j] === 0x5c; j--) backslashes++;
      if (backslashes % 2 === 0) {
        const width = bytes[i + 1] === 0x75 ? 4 : 8;
        const hex = decodeLatin1(bytes.subarray(i + 2, i + 2 + width));
        if (hex.length !== width || !/^[0-9a-fA-F]+$/.test(hex)) {
          throw new ReaderError("pickle-malformed", `truncated \\u escape in UNICODE at byte ${offset + i}`, {
            offset: offset + i,
          });
        }
        const code = Number.parseInt(hex, 16);
        if (code > 0x10ffff) {
          throw new ReaderError("pickle-malformed", `\\U escape out of range at byte ${offset + i}`, {
            offset: offset + i,
          });
        }
        out += String.fromCodePoint(code);
        i += 2 + width;
        continue;
      }
    }
    out += String.fromCharCode(b);
    i += 1;
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, number> = {
  "\\": 0x5c,
  "'": 0x27,
  '"': 0x22,
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
};

/** Python's `codecs.escape_decode` (protocol 0 STRING bodies): backslash escapes to raw bytes. */
export function escapeDecode(bytes: Uint8Array, offset: number): Uint8Array {
  const out: number[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b !== 0x5c) {
      out.push(b);
      i += 1;
      continue;
    }
    const next = bytes[i + 1];
    if (next === undefined) {
      throw new ReaderError("pickle-malformed", `trailing backslash in STRING at byte ${offset + i}`, {
        offset: offset + i,
      });
    }
    const ch = String.fromCharCode(next);
    const simple = SIMPLE_ESCAPES[ch];
    if (simple !== undefined) {
      out.push(simple);
      i += 2;
    } else if (next === 0x0a) {
      i += 2; // backslash-newline is a line continuation
    } else if (ch === "x") {
      const hex = decodeLatin1(bytes.subarray(i + 2, i + 4));
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        throw new ReaderError("pickle-malformed", `invalid \\x escape in STRING at byte ${offset + i}`, {
          offset: offset + i,
        });
      }
      out.push(Number.parseInt(hex, 16));
      i += 4;
    } else if (next >= 0x30 && next <= 0x37) {
      let j = i + 1;
      let value = 0;
      while (j < bytes.length && j < i + 4 && (bytes[j] as number) >= 0x30 && (bytes[j] as number) <= 0x37) {
        value = value * 8 + ((bytes[j] as number) - 0x30);
        j++;
      }
      out.push(value & 0xff);
      i = j;
    } else {
      out.push(0x5c, next); // unknown escapes are kept verbatim, as Python does
      i += 2;
    }
  }
  return Uint8Array.from(out);
}
