import { elementSize } from "../../reader/torch/dtypes.js";
import { type Decoder, numericDecoder } from "./decode.js";

/**
 * How two tensors of the same shape differ, element by element, accumulated chunk by chunk in constant
 * memory. Numbers are compared in float64 after decoding each side from its own dtype. Where torch would say
 * NaN (`(a - b).abs().max()` over a NaN), the figures leave the elements that are not finite on both sides
 * out and count them instead:
 * - `differing`: elements where `a != b`, except that a NaN on both sides is no difference;
 * - `maxAbsDiff`: `max |a - b|` over the elements finite on both sides;
 * - `relL2`: `||a - b|| / ||a||` over the same elements (null when A's norm is 0 and the values differ);
 * - `nanAppeared`, `infAppeared`: NaNs and infinities in B where A had none.
 */
export interface ValueDifference {
  /** The two sides have the same dtype and the same bytes (what sha256 equality would say). */
  readonly identicalBytes: boolean;
  readonly elements: number;
  readonly differing: number;
  /** null for the dtypes compared byte by byte (quantized, packed, raw bits). */
  readonly maxAbsDiff: number | null;
  readonly relL2: number | null;
  readonly nanAppeared: number;
  readonly infAppeared: number;
}

/** Elements decoded per step: 64K float64s per side stay in L2. */
const BLOCK = 8192;

interface Sums {
  differing: number;
  maxAbs: number;
  sumSquaresDiff: number;
  sumSquaresA: number;
  nanAppeared: number;
  infAppeared: number;
}

/**
 * The inner loop over `n` decoded elements, branch-free for speed: when A, B and their differences are all
 * finite (the block's sums are then finite too), that is the answer; otherwise the block is counted again by
 * `accumulateCareful`. Kept to Float64Arrays so that V8 compiles one loop for every dtype (a loop that sees
 * two array types runs at half the speed).
 */
function accumulateReal(a: Float64Array, b: Float64Array, n: number, s: Sums): void {
  let maxAbs = 0;
  let diff2 = 0;
  let a2 = 0;
  let same = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const d = x - (b[i] as number);
    a2 += x * x;
    diff2 += d * d;
    same += d === 0 ? 1 : 0;
    const abs = Math.abs(d);
    maxAbs = Math.max(abs, maxAbs);
  }
  if (!addFiniteBlock(s, n, { same, maxAbs, diff2, a2 })) accumulateCareful(a, b, n, s);
}

/**
 * Adds one block's sums when they are finite (then every element was); returns false, adding nothing, when a
 * NaN or an infinity made them not. The loops that compute the sums stay one per array type on purpose: a
 * loop V8 sees with two array types runs at half the speed.
 */
function addFiniteBlock(
  s: Sums,
  n: number,
  block: { readonly same: number; readonly maxAbs: number; readonly diff2: number; readonly a2: number },
): boolean {
  if (block.a2 - block.a2 !== 0 || block.diff2 - block.diff2 !== 0) return false;
  s.differing += n - block.same;
  if (block.maxAbs > s.maxAbs) s.maxAbs = block.maxAbs;
  s.sumSquaresDiff += block.diff2;
  s.sumSquaresA += block.a2;
  return true;
}

/**
 * `accumulateReal` for float32 against float32, read straight from the element bytes: no copy into float64
 * blocks, which cost as much as the sums (most checkpoints are float32 on both sides). Returns false, having
 * added nothing, when the block holds a NaN or an infinity: the caller then counts it the careful way.
 */
function accumulateFloat32(a: Float32Array, b: Float32Array, n: number, s: Sums): boolean {
  let maxAbs = 0;
  let diff2 = 0;
  let a2 = 0;
  let same = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const d = x - (b[i] as number);
    a2 += x * x;
    diff2 += d * d;
    same += d === 0 ? 1 : 0;
    const abs = Math.abs(d);
    maxAbs = Math.max(abs, maxAbs);
  }
  return addFiniteBlock(s, n, { same, maxAbs, diff2, a2 });
}

/** Float32 elements of `bytes` (a view when aligned, else an aligned copy). */
function float32s(bytes: Uint8Array, n: number): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  return new Float32Array(bytes.slice(0, n * 4).buffer, 0, n);
}

/** The same with NaNs and infinities: counted, and left out of the sums. */
function accumulateCareful(a: Float64Array, b: Float64Array, n: number, s: Sums): void {
  for (let i = 0; i < n; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    const d = x - y;
    if (d - d === 0) {
      s.sumSquaresA += x * x;
      if (d !== 0) {
        s.differing++;
        s.sumSquaresDiff += d * d;
        if (Math.abs(d) > s.maxAbs) s.maxAbs = Math.abs(d);
      }
      continue;
    }
    const xNaN = Number.isNaN(x);
    const yNaN = Number.isNaN(y);
    if (x !== y && !(xNaN && yNaN)) s.differing++;
    if (yNaN && !xNaN) s.nanAppeared++;
    else if (!yNaN && y - y !== 0 && (xNaN || x - x === 0)) s.infAppeared++;
  }
}

/** Complex elements: the modulus of the difference, as torch's `abs()` of a complex tensor. */
function accumulateComplex(a: Float64Array, b: Float64Array, n: number, s: Sums): void {
  for (let i = 0; i < n; i++) {
    const ar = a[2 * i] as number;
    const ai = a[2 * i + 1] as number;
    const br = b[2 * i] as number;
    const bi = b[2 * i + 1] as number;
    const aNaN = Number.isNaN(ar) || Number.isNaN(ai);
    const bNaN = Number.isNaN(br) || Number.isNaN(bi);
    const aFinite = Number.isFinite(ar) && Number.isFinite(ai);
    const bFinite = Number.isFinite(br) && Number.isFinite(bi);
    if ((ar !== br || ai !== bi) && !(aNaN && bNaN)) s.differing++;
    if (bNaN && !aNaN) s.nanAppeared++;
    else if (!bNaN && !bFinite && (aNaN || aFinite)) s.infAppeared++;
    if (aFinite && bFinite) {
      const d2 = (ar - br) ** 2 + (ai - bi) ** 2;
      s.sumSquaresA += ar * ar + ai * ai;
      s.sumSquaresDiff += d2;
      const abs = Math.sqrt(d2);
      if (abs > s.maxAbs) s.maxAbs = abs;
    }
  }
}

/** Node's native memcmp where there is one (no import: the module stays portable), else a word loop. */
const nativeEquals = (globalThis as { Buffer?: { compare(a: Uint8Array, b: Uint8Array): number } }).Buffer
  ?.compare;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (nativeEquals) return nativeEquals(a, b) === 0;
  let i = 0;
  if (a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0) {
    const words = a.length >>> 2;
    const wa = new Uint32Array(a.buffer, a.byteOffset, words);
    const wb = new Uint32Array(b.buffer, b.byteOffset, words);
    for (; i < words; i++) if (wa[i] !== wb[i]) return false;
    i = words * 4;
  }
  for (; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Accumulates a `ValueDifference` over aligned chunks of the two tensors' row-major bytes. With
 * `skipIdenticalChunks`, a chunk whose bytes are the same on both sides costs one memcmp: it adds nothing to
 * the differences, and only A's norm (for `relL2`) would need its values, which matter only if another chunk
 * differs. A comparison that skipped some and then met a difference says `needsSecondPass`: the caller
 * compares the pair again without skipping (a tensor half changed is rare; a frozen one is common).
 */
export class ValueComparison {
  private readonly sums: Sums = {
    differing: 0,
    maxAbs: 0,
    sumSquaresDiff: 0,
    sumSquaresA: 0,
    nanAppeared: 0,
    infAppeared: 0,
  };
  private readonly sizeA: number;
  private readonly sizeB: number;
  private readonly decodeA: Decoder | undefined;
  private readonly decodeB: Decoder | undefined;
  private readonly complex: boolean;
  private readonly sameDtype: boolean;
  /** Both sides float32: summed from the bytes, without decoding to float64. */
  private readonly float32: boolean;
  private readonly blockA: Float64Array;
  private readonly blockB: Float64Array;
  private elements = 0;
  private identical = true;
  private skippedIdentical = false;

  private readonly skipIdenticalChunks: boolean;

  constructor(dtypeA: string, dtypeB: string, options: { readonly skipIdenticalChunks?: boolean } = {}) {
    this.skipIdenticalChunks = options.skipIdenticalChunks ?? true;
    this.sizeA = elementSize(dtypeA);
    this.sizeB = elementSize(dtypeB);
    this.sameDtype = dtypeA === dtypeB;
    const a = numericDecoder(dtypeA);
    const b = numericDecoder(dtypeB);
    // Numbers only when both sides are numbers of the same kind (real with real, complex with complex).
    const numeric = a && b && a.complex === b.complex ? { a, b } : undefined;
    this.decodeA = numeric?.a.decode;
    this.decodeB = numeric?.b.decode;
    this.complex = numeric?.a.complex ?? false;
    this.float32 = numeric !== undefined && dtypeA === "float32" && dtypeB === "float32";
    const width = this.complex ? 2 * BLOCK : BLOCK;
    this.blockA = new Float64Array(numeric ? width : 0);
    this.blockB = new Float64Array(numeric ? width : 0);
  }

  /** Whether values are compared as numbers (else element bytes against element bytes). */
  get numeric(): boolean {
    return this.decodeA !== undefined;
  }

  /** Adds the same number of elements from each side (`a.length / sizeA === b.length / sizeB`). */
  add(a: Uint8Array, b: Uint8Array): void {
    const count = a.length / this.sizeA;
    this.elements += count;
    if (this.sameDtype && sameBytes(a, b)) {
      if (this.skipIdenticalChunks || !this.decodeA) {
        if (count > 0) this.skippedIdentical = true;
        return;
      }
    } else {
      this.identical = false;
    }
    if (!this.decodeA || !this.decodeB) {
      this.addBytewise(a, b, count);
      return;
    }
    const accumulate = this.complex ? accumulateComplex : accumulateReal;
    for (let done = 0; done < count; done += BLOCK) {
      const n = Math.min(BLOCK, count - done);
      const sliceA = a.subarray(done * this.sizeA, (done + n) * this.sizeA);
      const sliceB = b.subarray(done * this.sizeB, (done + n) * this.sizeB);
      // Whole blocks that agree are common inside a changed tensor too (embedding rows nobody looked up).
      if (this.sameDtype && sameBytes(sliceA, sliceB)) {
        this.normOnly(sliceA, n);
        continue;
      }
      if (this.float32 && accumulateFloat32(float32s(sliceA, n), float32s(sliceB, n), n, this.sums)) continue;
      this.decodeA(sliceA, n, this.blockA);
      this.decodeB(sliceB, n, this.blockB);
      accumulate(this.blockA, this.blockB, n, this.sums);
    }
  }

  private normOnly(bytes: Uint8Array, n: number): void {
    if (this.float32) {
      this.sums.sumSquaresA += sumSquaresFinite32(float32s(bytes, n), n);
      return;
    }
    this.decodeA?.(bytes, n, this.blockA);
    this.sums.sumSquaresA += sumSquaresFinite(this.blockA, this.complex ? 2 * n : n);
  }

  private addBytewise(a: Uint8Array, b: Uint8Array, count: number): void {
    const size = this.sizeA;
    for (let i = 0; i < count; i++) {
      for (let k = 0; k < size; k++) {
        if (a[i * size + k] !== b[i * size + k]) {
          this.sums.differing++;
          break;
        }
      }
    }
  }

  /** Identical chunks were skipped and another chunk differs: `relL2` needs A's norm over every chunk. */
  get needsSecondPass(): boolean {
    return this.numeric && !this.identical && this.skippedIdentical && this.sums.sumSquaresDiff > 0;
  }

  result(): ValueDifference {
    const s = this.sums;
    const identicalBytes = this.sameDtype && this.identical;
    const a2 = s.sumSquaresA;
    const relL2 = s.sumSquaresDiff === 0 ? 0 : a2 > 0 ? Math.sqrt(s.sumSquaresDiff / a2) : null;
    return {
      identicalBytes,
      elements: this.elements,
      differing: s.differing,
      maxAbsDiff: this.numeric ? s.maxAbs : null,
      relL2: this.numeric ? relL2 : null,
      nanAppeared: s.nanAppeared,
      infAppeared: s.infAppeared,
    };
  }
}

function sumSquaresFinite(values: Float64Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i] as number;
    if (x - x === 0) sum += x * x;
  }
  return sum;
}

function sumSquaresFinite32(values: Float32Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = values[i] as number;
    if (x - x === 0) sum += x * x;
  }
  return sum;
}
