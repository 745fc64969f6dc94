import { ReaderError } from "../errors.js";
import {
  CONTROL_BYTES,
  CONTROL_HEADER,
  type FetchOutcome,
  type RemoteSettings,
  type RemoteTarget,
  type Validator,
  type WorkerRequest,
} from "./protocol.js";

/**
 * The caller's side of the I/O worker: the reader above is synchronous (a zip or a pickle is a chain of small
 * dependent reads), so a remote read posts a request to the worker and blocks in `Atomics.wait` until the
 * worker has written the body into shared memory. Requests may be posted without waiting (read-ahead) and
 * waited for later. Portable: `post` hands a request to whatever worker the platform has (`nodeChannel.ts`
 * for Node; in a browser, the reader runs in a worker, where `Atomics.wait` is allowed, and posts to another).
 */
export class Channel {
  constructor(private readonly post: (request: WorkerRequest) => void) {}

  /** Bytes `[offset, offset + length)` of `target`, fetched by the worker into a new shared buffer; does not wait. */
  postRange(
    target: RemoteTarget,
    offset: number,
    length: number,
    expect: Validator | undefined,
    settings: RemoteSettings,
  ): Pending {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const data = new SharedArrayBuffer(length);
    this.post({ kind: "range", target, offset, length, expect, settings, control, data });
    return { control, data: new Uint8Array(data), settings };
  }

  /** A whole small body (a listing page), waited for. */
  getText(
    target: RemoteTarget,
    settings: RemoteSettings,
    limit: number,
  ): { outcome: FetchOutcome; body: Uint8Array } {
    const control = new SharedArrayBuffer(CONTROL_BYTES);
    const data = new SharedArrayBuffer(limit);
    this.post({ kind: "text", target, settings, control, data });
    const pending: Pending = { control, data: new Uint8Array(data), settings };
    const outcome = wait(pending);
    return { outcome, body: pending.data.slice(0, outcome.ok ? outcome.length : 0) };
  }
}

/** A failed outcome as the error the reader throws. */
export function outcomeError(outcome: Extract<FetchOutcome, { ok: false }>, name: string): ReaderError {
  return new ReaderError(outcome.code, outcome.message, { file: name });
}

/** A request in flight: the body lands in `data`, the outcome in `control`. */
export interface Pending {
  readonly control: SharedArrayBuffer;
  readonly data: Uint8Array;
  readonly settings: RemoteSettings;
  outcome?: FetchOutcome;
}

/**
 * The longest a request can take with all its retries, plus slack: past this the worker is stuck, and the
 * caller is told so instead of waiting for ever.
 */
function deadlineMs(settings: RemoteSettings): number {
  const attempts = settings.retries + 1;
  const backoffs = settings.backoffMs * 2 ** attempts * 1.25;
  // Each attempt may follow redirects, each with its own idle timeout.
  return attempts * settings.timeoutMs * 3 + backoffs + 5000;
}

/** Blocks this thread until the worker has answered `pending`. */
export function wait(pending: Pending): FetchOutcome {
  if (pending.outcome) return pending.outcome;
  const state = new Int32Array(pending.control, 0, 2);
  if (Atomics.wait(state, 0, 0, deadlineMs(pending.settings)) === "timed-out") {
    pending.outcome = {
      ok: false,
      code: "remote-timeout",
      message: "the I/O worker gave no answer in time",
      transfer: { requests: 0, bytes: 0 },
    };
    return pending.outcome;
  }
  const length = Atomics.load(state, 1);
  // A copy first: TextDecoder refuses views of shared memory in browsers.
  const json = new TextDecoder().decode(new Uint8Array(pending.control, CONTROL_HEADER, length).slice());
  pending.outcome = JSON.parse(json) as FetchOutcome;
  return pending.outcome;
}

/** Whether the worker has answered (without blocking). */
export function answered(pending: Pending): boolean {
  return pending.outcome !== undefined || Atomics.load(new Int32Array(pending.control, 0, 1), 0) === 1;
}
