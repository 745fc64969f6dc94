import type { Scanner } from "./scanner.js";

/**
 * `.npy` arrays (alone or inside an `.npz`): a magic string, a version, a header dict in Python literal
 * syntax, then the data. An array of dtype object (`'descr': '|O'`) stores its data as a pickle, which
 * `numpy.load(allow_pickle=True)` runs; every other dtype is raw numbers.
 */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export function looksLikeNpy(head: Uint8Array): boolean {
  return MAGIC.every((b, i) => head[i] === b);
}

interface NpyHeader {
  /** Some field's type is object: the data is a pickle. */
  readonly objects: boolean;
  /** Offset of the first data byte. */
  readonly dataOffset: number;
}

function readHeader(bytes: Uint8Array): NpyHeader | undefined {
  if (!looksLikeNpy(bytes) || bytes.length < 10) return undefined;
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Version 1 has a 2-byte header length; versions 2 and 3 a 4-byte one.
  const lengthWidth = major >= 2 ? 4 : 2;
  if (bytes.length < 8 + lengthWidth) return undefined;
  const headerLength = lengthWidth === 2 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthWidth;
  if (start + headerLength > bytes.length) return undefined;
  const text = new TextDecoder("latin1").decode(bytes.subarray(start, start + headerLength));
  // 'descr' is a type string ('<f4', '|O') or, for structured arrays, a list of (name, type) pairs.
  const descr = /['"]descr['"]\s*:\s*(\[.*\]|['"][^'"]*['"])/s.exec(text)?.[1];
  if (descr === undefined) return undefined;
  return { objects: /['"][|<>=]?O\d*['"]/.test(descr), dataOffset: start + headerLength };
}

/** Scans the pickle an object array holds; plain arrays hold none. A header it cannot read is a finding. */
export function scanNpy(bytes: Uint8Array, record: string, scanner: Scanner): void {
  const header = readHeader(bytes);
  if (!header) {
    scanner.unscanned({
      code: "archive-not-opened",
      kind: `${record}: an .npy file whose header ckpt cannot read`,
    });
    return;
  }
  if (!header.objects) return;
  scanner.scanPickles(bytes.subarray(header.dataOffset), `${record} (object array)`, {
    executedByTorch: false,
  });
}
