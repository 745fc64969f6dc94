import type { HttpSend } from "./client.js";
import { fetchRange, fetchText } from "./fetch.js";
import { CONTROL_HEADER, type FetchOutcome, type WorkerRequest } from "./protocol.js";

/**
 * The I/O worker's half of the channel, whatever the worker is (Node's `worker_threads`, a browser's Worker):
 * each request names a shared data buffer for the body and a shared control buffer for the outcome, which it
 * writes and then wakes the caller blocked in `Atomics.wait`. Portable.
 */

function finish(control: SharedArrayBuffer, outcome: FetchOutcome): void {
  const state = new Int32Array(control, 0, 2);
  const json = new TextEncoder().encode(JSON.stringify(outcome));
  new Uint8Array(control, CONTROL_HEADER).set(json.subarray(0, control.byteLength - CONTROL_HEADER));
  Atomics.store(state, 1, json.length);
  Atomics.store(state, 0, 1);
  Atomics.notify(state, 0);
}

export async function serve(request: WorkerRequest, send: HttpSend): Promise<void> {
  const data = new Uint8Array(request.data);
  try {
    if (request.kind === "range") {
      const { offset } = request;
      const outcome = await fetchRange(
        send,
        request.target,
        offset,
        request.length,
        request.expect,
        request.settings,
        (chunk, at) => data.set(chunk, at - offset),
      );
      finish(request.control, outcome);
    } else {
      const { outcome, body } = await fetchText(send, request.target, request.settings, data.length);
      data.set(body);
      finish(request.control, outcome);
    }
  } catch (error) {
    // Nothing may leave the caller waiting: a bug here is an answer too.
    const message = error instanceof Error ? error.message : String(error);
    finish(request.control, {
      ok: false,
      code: "remote-error",
      message,
      transfer: { requests: 0, bytes: 0 },
    });
  }
}
