import { codecs } from "../../reader/codecs.js";
import { ReaderError } from "../../reader/errors.js";
import type { Hasher } from "../../reader/sha256.js";
import { elementSize } from "../../reader/torch/dtypes.js";
import { ValueComparison, type ValueDifference } from "./compare.js";
import type { SideTensor } from "./side.js";

/** What `--values` says about one pair of tensors: the differences, and with `--hash` each side's sha256. */
export type ValueOutcome =
  | ({
      readonly kind: "compared";
      readonly sha256?: { readonly a: string; readonly b: string };
    } & ValueDifference)
  | { readonly kind: "unreadable"; readonly side: "a" | "b"; readonly reason: string };

export interface TensorPair {
  readonly a: SideTensor;
  readonly b: SideTensor;
}

export interface CompareOptions {
  /** Adds each side's sha256 (of its row-major bytes, as `inspect --hash` gives them). */
  readonly hash: boolean;
}

/** Compares many pairs; the default runs on this thread, `parallel.ts` on two. */
export type PairComparer = (pairs: readonly TensorPair[], options: CompareOptions) => Promise<ValueOutcome[]>;

/**
 * Feeds two streams of row-major bytes to `each` in pieces holding the same number of elements. The streams'
 * buffers are reused by their producers, so each piece is consumed before the next chunk of its side is read.
 */
function forEachAligned(
  a: Iterable<Uint8Array>,
  sizeA: number,
  b: Iterable<Uint8Array>,
  sizeB: number,
  each: (a: Uint8Array, b: Uint8Array) => void,
): void {
  const streamA = a[Symbol.iterator]();
  const streamB = b[Symbol.iterator]();
  let chunkA = streamA.next();
  let chunkB = streamB.next();
  let atA = 0;
  let atB = 0;
  while (!chunkA.done && !chunkB.done) {
    const bytesA = chunkA.value;
    const bytesB = chunkB.value;
    const count = Math.min((bytesA.length - atA) / sizeA, (bytesB.length - atB) / sizeB);
    each(bytesA.subarray(atA, atA + count * sizeA), bytesB.subarray(atB, atB + count * sizeB));
    atA += count * sizeA;
    atB += count * sizeB;
    if (atA === bytesA.length) {
      chunkA = streamA.next();
      atA = 0;
    }
    if (atB === bytesB.length) {
      chunkB = streamB.next();
      atB = 0;
    }
  }
  // Equal shapes make equal element counts; streams that disagree would be a reader's bug, said plainly.
  if (!chunkA.done || !chunkB.done)
    throw new Error("the two tensors' byte streams hold different element counts");
}

/** A read that failed on one side: a missing shard, a storage record that is not there. */
class SideReadError extends Error {
  readonly side: "a" | "b";

  constructor(side: "a" | "b", cause: ReaderError) {
    super(cause.message, { cause });
    this.side = side;
  }
}

function* readingSide(side: "a" | "b", tensor: SideTensor): Generator<Uint8Array> {
  try {
    yield* tensor.bytes();
  } catch (error) {
    throw error instanceof ReaderError ? new SideReadError(side, error) : error;
  }
}

function comparePass(
  pair: TensorPair,
  skipIdenticalChunks: boolean,
  hashes?: [Hasher, Hasher],
): ValueComparison {
  const comparison = new ValueComparison(pair.a.dtype, pair.b.dtype, { skipIdenticalChunks });
  const a = readingSide("a", pair.a);
  const b = readingSide("b", pair.b);
  forEachAligned(a, elementSize(pair.a.dtype), b, elementSize(pair.b.dtype), (a, b) => {
    hashes?.[0].update(a);
    hashes?.[1].update(b);
    comparison.add(a, b);
  });
  return comparison;
}

/**
 * One pair's values, both tensors streamed at once (memory: a chunk of each). A tensor whose bytes agree in
 * some chunks and differ in others is streamed a second time, for A's norm over the chunks skipped.
 */
export function comparePair(pair: TensorPair, options: CompareOptions): ValueOutcome {
  for (const side of ["a", "b"] as const) {
    const reason = pair[side].unreadable;
    if (reason !== undefined) return { kind: "unreadable", side, reason };
  }
  const hashes: [Hasher, Hasher] | undefined = options.hash
    ? [codecs().sha256(), codecs().sha256()]
    : undefined;
  let comparison: ValueComparison;
  try {
    comparison = comparePass(pair, true, hashes);
    if (comparison.needsSecondPass) comparison = comparePass(pair, false);
  } catch (error) {
    if (error instanceof SideReadError)
      return { kind: "unreadable", side: error.side, reason: error.message };
    throw error;
  }
  const sha256 = hashes ? { sha256: { a: hashes[0].hex(), b: hashes[1].hex() } } : {};
  return { kind: "compared", ...comparison.result(), ...sha256 };
}

/** Every pair on this thread, in order. */
export const compareHere: PairComparer = async (pairs, options) =>
  pairs.map((pair) => comparePair(pair, options));
