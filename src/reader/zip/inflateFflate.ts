// fflate's browser build everywhere: its Node build requires worker_threads when it loads (for workers this
// reader never asks for), which cost every command that build's ~5 ms of start-up.
import { Inflate } from "fflate/browser";
import { InflateError, type Inflater } from "../codecs.js";

/**
 * Raw inflate in portable TypeScript (fflate), for browsers. fflate's one-shot `inflateSync` writes into a
 * caller's buffer without saying when the output did not fit, so everything goes through its stream, fed in
 * pieces small enough that one piece of a zip bomb cannot inflate far past the cap before it is caught.
 */
const PIECE = 64 * 1024;

function inflatePieces(data: Uint8Array, maxOutput: number, final: boolean): Uint8Array {
  const out: Uint8Array[] = [];
  let total = 0;
  const stream = new Inflate((chunk) => {
    total += chunk.length;
    if (total > maxOutput) throw new InflateError(`inflates to more than ${maxOutput} bytes`, true);
    out.push(chunk);
  });
  try {
    if (data.length === 0) stream.push(data, final);
    for (let at = 0; at < data.length; at += PIECE) {
      const end = Math.min(data.length, at + PIECE);
      stream.push(data.subarray(at, end), final && end === data.length);
    }
  } catch (error) {
    if (error instanceof InflateError) throw error;
    throw new InflateError(error instanceof Error ? error.message : String(error), false);
  }
  return concat(out, total);
}

function concat(pieces: readonly Uint8Array[], total: number): Uint8Array {
  if (pieces.length === 1) return pieces[0] as Uint8Array;
  const whole = new Uint8Array(total);
  let at = 0;
  for (const piece of pieces) {
    whole.set(piece, at);
    at += piece.length;
  }
  return whole;
}

async function* inflateStream(input: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let ready: Uint8Array[] = [];
  const stream = new Inflate((chunk) => {
    ready.push(chunk);
  });
  const pieces = input[Symbol.iterator]();
  let next = pieces.next();
  while (!next.done) {
    const piece = next.value;
    next = pieces.next();
    try {
      stream.push(piece, next.done === true);
    } catch (error) {
      throw new InflateError(error instanceof Error ? error.message : String(error), false);
    }
    const out = ready;
    ready = [];
    yield* out;
  }
}

export const fflateInflater: Inflater = {
  inflate: (data, maxOutput) => inflatePieces(data, maxOutput, true),
  inflatePrefix: (data, maxOutput) => inflatePieces(data, maxOutput, false),
  stream: (input) => inflateStream(input),
};
