import { ReaderError } from "../errors.js";

/**
 * Assembling one logical tensor from pieces that tile it (DCP chunks, ZeRO partitions), streamed in
 * row-major order: the bytes of `tensor.contiguous()` after torch's own consolidation. Memory is one output
 * buffer of `chunkBytes`; each piece is read where it lies, straight into that buffer, so neither the tensor
 * nor a whole piece is ever held (a strided piece reads only the storage span of the run it serves).
 */

/** A box of the global tensor and a way to read its row-major bytes. */
export interface Piece {
  /** Where the piece starts in the global tensor, per dimension. */
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
  /** Fills `into` with the piece's row-major bytes from byte `start` (a multiple of the element size). */
  read(start: number, into: Uint8Array): void;
}

export interface AssembleOptions {
  /** Output buffer size in bytes (default 4 MiB; rounded down to whole elements, at least one). */
  readonly chunkBytes?: number;
  /**
   * The caller reads many tensors one after another (hashing or converting a checkpoint): a data file of
   * small DCP items is then read in large cached blocks, a few hundred reads rather than two per chunk. A
   * single tensor's read stays exact without it.
   */
  readonly inBulk?: boolean;
}

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** One contiguous stretch of output: `length` bytes of `piece` from its byte `start`. */
interface Run {
  readonly piece: Piece;
  readonly start: number;
  readonly length: number;
}

export function volume(sizes: readonly number[]): number {
  let n = 1;
  for (const s of sizes) n *= s;
  return n;
}

/** Contiguous strides of `sizes` (what `.clone()` gives a view that is not dense). */
export function rowMajorStrides(sizes: readonly number[]): number[] {
  const strides = new Array<number>(sizes.length);
  let step = 1;
  for (let d = sizes.length - 1; d >= 0; d--) {
    strides[d] = step;
    step *= sizes[d] as number;
  }
  return strides;
}

/**
 * The tensor's bytes in row-major order, in buffers of at most `chunkBytes`. A buffer is reused for the next
 * one: consume it (hash it, write it) before asking for more.
 * @throws ReaderError `storage-missing` when the pieces leave elements uncovered (torch would leave them as
 * uninitialised memory, so no honest bytes exist for them), and whatever a piece's read throws.
 */
export function* assembleRowMajor(
  shape: readonly number[],
  elementSize: number,
  pieces: readonly Piece[],
  options: AssembleOptions = {},
): Generator<Uint8Array> {
  const total = volume(shape) * elementSize;
  if (total === 0) return;
  const wanted = Math.max(elementSize, options.chunkBytes ?? DEFAULT_CHUNK_BYTES);
  const out = new Uint8Array(Math.min(total, wanted - (wanted % elementSize)));
  let filled = 0;
  let emitted = 0;
  for (const run of mergedRuns(shape, elementSize, pieces)) {
    let done = 0;
    while (done < run.length) {
      const take = Math.min(run.length - done, out.length - filled);
      run.piece.read(run.start + done, out.subarray(filled, filled + take));
      filled += take;
      done += take;
      if (filled === out.length) {
        emitted += filled;
        yield out;
        filled = 0;
      }
    }
  }
  if (filled > 0) {
    emitted += filled;
    yield out.subarray(0, filled);
  }
  if (emitted !== total) {
    throw new ReaderError("storage-missing", `the pieces cover ${emitted} of the tensor's ${total} bytes`);
  }
}

/** Runs in output order, consecutive stretches of one piece merged (a row-sharded tensor is one run a piece). */
function* mergedRuns(
  shape: readonly number[],
  elementSize: number,
  pieces: readonly Piece[],
): Generator<Run> {
  let pending: Run | undefined;
  for (const run of runs(shape, elementSize, pieces)) {
    if (pending && pending.piece === run.piece && pending.start + pending.length === run.start) {
      pending = { piece: run.piece, start: pending.start, length: pending.length + run.length };
      continue;
    }
    if (pending) yield pending;
    pending = run;
  }
  if (pending) yield pending;
}

function* runs(shape: readonly number[], elementSize: number, pieces: readonly Piece[]): Generator<Run> {
  const dims = shape.length;
  const live = pieces.filter((p) => volume(p.sizes) > 0);
  if (dims === 0) {
    const piece = live[0];
    if (!piece) throw gap(shape);
    yield { piece, start: 0, length: elementSize };
    return;
  }
  const strides = live.map((p) => rowMajorStrides(p.sizes));
  // fullFrom[i]: the first dimension from which piece i spans the whole tensor to the last dimension.
  const fullFrom = live.map((p) => {
    let d = dims;
    while (d > 0 && p.sizes[d - 1] === shape[d - 1]) d--;
    return d;
  });
  const trailing = rowMajorStrides(shape);

  function* walk(dim: number, active: number[], base: number[]): Generator<Run> {
    // Every active piece spans all later dimensions: each is one run along this one.
    if (dim === dims - 1 || active.every((i) => (fullFrom[i] as number) <= dim + 1)) {
      const order = active
        .map((_, j) => j)
        .sort((a, b) => offsetOf(active[a], dim) - offsetOf(active[b], dim));
      let position = 0;
      for (const j of order) {
        const i = active[j] as number;
        const piece = live[i] as Piece;
        if ((piece.offsets[dim] as number) !== position) throw gap(shape);
        const length = (piece.sizes[dim] as number) * (trailing[dim] as number) * elementSize;
        yield { piece, start: (base[j] as number) * elementSize, length };
        position += piece.sizes[dim] as number;
      }
      if (position !== shape[dim]) throw gap(shape);
      return;
    }
    for (let index = 0; index < (shape[dim] as number); index++) {
      const nextActive: number[] = [];
      const nextBase: number[] = [];
      active.forEach((i, j) => {
        const piece = live[i] as Piece;
        const from = piece.offsets[dim] as number;
        if (index >= from && index < from + (piece.sizes[dim] as number)) {
          nextActive.push(i);
          nextBase.push((base[j] as number) + (index - from) * ((strides[i] as number[])[dim] as number));
        }
      });
      yield* walk(dim + 1, nextActive, nextBase);
    }
  }

  function offsetOf(i: number | undefined, dim: number): number {
    return (live[i as number] as Piece).offsets[dim] as number;
  }

  yield* walk(
    0,
    live.map((_, i) => i),
    live.map(() => 0),
  );
}

function gap(shape: readonly number[]): ReaderError {
  return new ReaderError(
    "storage-missing",
    `the pieces do not tile the [${shape.join(", ")}] tensor: some elements are in none of them`,
  );
}
