/**
 * One HTTP GET, as the remote reader needs it: the status, headers, and the body as chunks. Portable: the
 * reader's fetch logic (`fetch.ts`) runs over this, with Node's `http` module in Node (`nodeClient.ts`, for
 * keep-alive sockets and speed) and `fetch` anywhere else (`fetchClient.ts`, a browser's worker).
 */
export interface HttpResponse {
  readonly status: number;
  /** One header's value (the first, when repeated), by lowercase name. */
  header(name: string): string | undefined;
  readonly body: AsyncIterable<Uint8Array>;
  /** Stops the body (the connection is dropped or returned): for answers whose body is not wanted. */
  cancel(): void;
  /**
   * Where the answer came from, when the client followed redirects itself (a browser's `fetch` must: its
   * "manual" mode hides the `Location`). Absent: the request's URL.
   */
  readonly url?: string;
}

/**
 * Sends a GET and resolves once headers arrived. Redirects are not followed when the client can help it (the
 * caller follows them, counting each and dropping credentials that would leave their origin).
 * @throws TimeoutError when no byte came for `timeoutMs` (connecting, headers, or between body chunks).
 */
export type HttpSend = (
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
) => Promise<HttpResponse>;

/** No byte for this long: the attempt failed (the caller retries or says `remote-timeout`). */
export class TimeoutError extends Error {}

/** Reads a body to its end or to `limit` bytes (an error page, a listing), whichever is first. */
export async function readSmall(response: HttpResponse, limit: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let kept = 0;
  for await (const chunk of response.body) {
    if (kept < limit) chunks.push(chunk.subarray(0, limit - kept));
    kept += chunk.length;
    if (kept >= limit) {
      response.cancel();
      break;
    }
  }
  const out = new Uint8Array(chunks.reduce((sum, c) => sum + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
