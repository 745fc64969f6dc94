import http, { type IncomingMessage } from "node:http";
import https from "node:https";

/**
 * One GET, on keep-alive connections (a ranged read of a checkpoint is many small requests to one host: a
 * new TCP and TLS handshake each would cost more than the bytes). Runs in the I/O worker only.
 */

const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 16 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

/** No byte for this long: the attempt failed (the caller retries or says `remote-timeout`). */
export class TimeoutError extends Error {}

export interface Response {
  readonly status: number;
  readonly headers: IncomingMessage["headers"];
  readonly body: IncomingMessage;
}

/** Sends the request and resolves when the response's headers arrived; the body is for the caller to read or `destroy`. */
export function send(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<Response> {
  const transport = url.protocol === "https:" ? https : http;
  const agent = url.protocol === "https:" ? agents["https:"] : agents["http:"];
  return new Promise((resolve, reject) => {
    const request = transport.request(url, { method: "GET", headers, agent }, (response) => {
      resolve({ status: response.statusCode ?? 0, headers: response.headers, body: response });
    });
    // An idle timer, re-armed by every byte: a slow but moving transfer of a large range is not a timeout.
    request.setTimeout(timeoutMs, () => {
      request.destroy(new TimeoutError(`no answer from ${url.host} in ${timeoutMs / 1000} s`));
    });
    request.on("error", reject);
    request.end();
  });
}

/** Reads a body to its end, keeping at most `limit` bytes (an error page, a listing). */
export async function readSmall(body: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (kept < limit) chunks.push(chunk.subarray(0, limit - kept));
    kept += chunk.length;
    if (kept >= limit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(chunks);
}

/** One header's value (the first, when repeated). */
export function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
