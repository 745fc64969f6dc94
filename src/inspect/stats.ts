import { bfloat16ToNumber, halfToNumber } from "../reader/floatBits.js";
/**
 * Streaming statistics over a floating tensor's little-endian bytes: min, max, mean of the finite values, and
 * counts of NaN and infinities. Constant memory whatever the tensor size.
 */
export interface TensorStats {
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  readonly nan: number;
  readonly inf: number;
}

type Decoder = (view: DataView, at: number) => number;

const DECODERS: Readonly<Record<string, [number, Decoder]>> = {
  float64: [8, (v, at) => v.getFloat64(at, true)],
  float32: [4, (v, at) => v.getFloat32(at, true)],
  float16: [2, (v, at) => halfToNumber(v.getUint16(at, true))],
  bfloat16: [2, (v, at) => bfloat16ToNumber(v.getUint16(at, true))],
};

export function supportsStats(dtype: string): boolean {
  return dtype in DECODERS;
}

export class StatsAccumulator {
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private sum = 0;
  private finite = 0;
  private nan = 0;
  private inf = 0;
  private readonly width: number;
  private readonly decode: Decoder;

  constructor(dtype: string) {
    const decoder = DECODERS[dtype];
    if (!decoder) throw new Error(`no statistics for dtype ${dtype}`);
    [this.width, this.decode] = decoder;
  }

  add(chunk: Uint8Array): void {
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    for (let at = 0; at + this.width <= chunk.length; at += this.width) {
      const x = this.decode(view, at);
      if (Number.isNaN(x)) this.nan++;
      else if (!Number.isFinite(x)) this.inf++;
      else {
        if (x < this.min) this.min = x;
        if (x > this.max) this.max = x;
        this.sum += x;
        this.finite++;
      }
    }
  }

  result(): TensorStats {
    const any = this.finite > 0;
    return {
      min: any ? this.min : null,
      max: any ? this.max : null,
      mean: any ? this.sum / this.finite : null,
      nan: this.nan,
      inf: this.inf,
    };
  }
}
