/**
 * One array for each distinct size or stride a pickle names. A state dict repeats a few shapes over and
 * over (every layer's `q_proj.weight` is the same), and torch pickles a fresh tuple for each tensor: kept
 * as they come, the sizes and strides of a 200,000-tensor checkpoint are 400,000 arrays (38 MB of its
 * heap, all promoted to the old generation), shared they are a few dozen.
 *
 * The arrays handed out are shared between tensors, so nothing may change them: a tensor's `shape` and
 * `stride` are typed `readonly number[]`. Lookups key on the numbers themselves, up to two dimensions,
 * so the common case builds no string.
 */
export class DimsCache {
  private readonly empty: number[] = [];
  private readonly one = new Map<number, number[]>();
  private readonly two = new Map<number, Map<number, number[]>>();
  private readonly more = new Map<string, number[]>();

  /** The shared array equal to `dims` (which is kept as that array when it is the first of its value). */
  intern(dims: number[]): readonly number[] {
    switch (dims.length) {
      case 0:
        return this.empty;
      case 1:
        return cached(this.one, dims[0] as number, dims);
      case 2: {
        const first = dims[0] as number;
        let inner = this.two.get(first);
        if (inner === undefined) {
          inner = new Map();
          this.two.set(first, inner);
        }
        return cached(inner, dims[1] as number, dims);
      }
      default:
        return cached(this.more, dims.join(","), dims);
    }
  }
}

function cached<K>(map: Map<K, number[]>, key: K, dims: number[]): number[] {
  const known = map.get(key);
  if (known !== undefined) return known;
  map.set(key, dims);
  return dims;
}
