import { ReaderError } from "../reader/errors.js";

/**
 * Work shared by two threads through one counter in shared memory: each takes the next untaken piece until
 * none is left, so the thread that starts first begins at once and the other joins when it is ready. A worker
 * that fails answers for fewer pieces than it took; the caller does the ones without a result itself.
 */
export function takeShared(control: Int32Array, count: number, take: (piece: number) => void): void {
  for (;;) {
    const piece = Atomics.add(control, 0, 1);
    if (piece >= count) return;
    take(piece);
  }
}

/** The counter both threads take pieces from, in memory both see. */
export function sharedControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** Stops the sharing: neither thread takes another piece. */
export function stopShared(control: Int32Array, count: number): void {
  Atomics.store(control, 0, count);
}

/** What a worker of shared work answers: each piece it took with its result, or why it stopped. */
export type SharedAnswer<T> =
  | { readonly done: true; readonly results: ReadonlyArray<readonly [number, T]> }
  /** A file it opened by path is not the caller's (replaced or rewritten since): the answer would mix two. */
  | { readonly changed: string }
  | { readonly error: string };

/** Thrown by a worker's `take` when a file it opened is not the caller's; `sharedAnswer` reports it. */
export function fileChanged(path: string): Error {
  return Object.assign(new Error(path), { changed: true });
}

/** The worker's side: takes pieces and answers with their results, or with why it stopped. */
export function sharedAnswer<T>(
  control: Int32Array,
  count: number,
  take: (piece: number) => T,
): SharedAnswer<T> {
  const results: Array<readonly [number, T]> = [];
  try {
    takeShared(control, count, (piece) => {
      results.push([piece, take(piece)]);
    });
    return { done: true, results };
  } catch (error) {
    if (error instanceof Error && "changed" in error) return { changed: error.message };
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/** The caller's side: a worker's results by piece; a changed file is an error, a failed worker no results. */
export function sharedResults<T>(answer: SharedAnswer<T>): Map<number, T> {
  if ("changed" in answer)
    throw new ReaderError("file-changed", `${answer.changed} changed while being read`, {
      file: answer.changed,
    });
  return new Map("done" in answer ? answer.results : []);
}
