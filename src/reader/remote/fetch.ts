import { type HttpResponse, type HttpSend, readSmall, TimeoutError } from "./client.js";
import type {
  FetchOutcome,
  RemoteErrorCode,
  RemoteSettings,
  RemoteTarget,
  Transfer,
  Validator,
} from "./protocol.js";
import { authorise } from "./sign.js";

/**
 * Ranged GETs with everything a remote read needs to be right or to fail clearly: redirects followed (the Hub
 * answers with its CDN), `Content-Range` and the ETag checked against the first answer, retries with backoff
 * for what may pass (timeouts, dropped connections, short bodies, 429, 5xx) and none for what will not (403,
 * 404, a server that ignores Range, a changed file). Portable: the GETs go through an `HttpSend` (Node's
 * `http`, or `fetch`); runs in the I/O worker.
 */

const MAX_REDIRECTS = 5;
/** Of an error body, enough for S3's `<Code>` and `<Message>`. */
const ERROR_BODY_BYTES = 4096;

/** A failure with its code; `retry` when another attempt may succeed. */
class Failure extends Error {
  constructor(
    readonly code: RemoteErrorCode,
    message: string,
    readonly retry = false,
  ) {
    super(message);
  }
}

/** What an answer's status means when it is not the data. */
async function statusFailure(response: HttpResponse, url: URL, transfer: Transfer): Promise<Failure> {
  const { status } = response;
  const body = await readSmall(response, ERROR_BODY_BYTES).catch(() => new Uint8Array(0));
  transfer.bytes += body.length;
  const detail = s3ErrorDetail(new TextDecoder().decode(body));
  const where = `${url.host}${url.pathname}`;
  if (status === 401 || status === 403) {
    return new Failure(
      "remote-forbidden",
      `access denied (HTTP ${status}) for ${where}${detail}: credentials missing, wrong or without permission`,
    );
  }
  if (status === 404)
    return new Failure("remote-not-found", `no such object (HTTP 404) at ${where}${detail}`);
  if (status === 412) {
    return new Failure("remote-changed", `the object at ${where} changed while being read (HTTP 412)`);
  }
  const retry = status === 429 || status >= 500;
  return new Failure("remote-error", `HTTP ${status} from ${where}${detail}`, retry);
}

/** `: Code: Message` from an S3 XML error body, when it is one. */
function s3ErrorDetail(text: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  return code ? ` (${code}${message ? `: ${message}` : ""})` : "";
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** `Content-Range: bytes A-B/T` as numbers (T may be `*`). */
interface ContentRange {
  readonly start: number;
  readonly end: number;
  /** -1 when the server says `*`. */
  readonly total: number;
}

function parseContentRange(value: string | undefined): ContentRange | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  return { start: Number(match[1]), end: Number(match[2]), total: match[3] === "*" ? -1 : Number(match[3]) };
}

/** The validator a response carries: ETag, or Last-Modified when there is none. */
function validatorOf(response: HttpResponse): string | undefined {
  return response.header("etag") ?? response.header("last-modified");
}

/**
 * GET `url` and the redirects it leads to. Authorisation goes to the origin asked for; a redirect to another
 * origin (a CDN's signed URL) gets none, as browsers and the Hub's own clients do.
 */
async function get(
  send: HttpSend,
  target: RemoteTarget,
  start: URL,
  headers: Record<string, string>,
  settings: RemoteSettings,
  transfer: Transfer,
): Promise<{ response: HttpResponse; url: URL }> {
  let url = start;
  const origin = new URL(target.url).origin;
  for (let hop = 0; ; hop++) {
    const auth = url.origin === origin ? target.auth : ({ kind: "none" } as const);
    transfer.requests += 1;
    const response = await send(url, await authorise(url, headers, auth), settings.timeoutMs);
    // A client that followed redirects itself (a browser's fetch) made one request more, at least.
    if (response.url !== undefined && response.url !== url.href) {
      transfer.requests += 1;
      return { response, url: new URL(response.url) };
    }
    const location = response.header("location");
    if (!isRedirect(response.status) || !location) return { response, url };
    response.cancel();
    if (hop >= MAX_REDIRECTS)
      throw new Failure("remote-error", `more than ${MAX_REDIRECTS} redirects from ${start.host}`);
    url = new URL(location, url);
  }
}

function failureOf(error: unknown): Failure {
  if (error instanceof Failure) return error;
  if (error instanceof TimeoutError) return new Failure("remote-timeout", error.message, true);
  // Node's http puts the errno code on the error; fetch puts it on the error's cause.
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = (error as { code?: string }).code ?? cause?.code;
  const message = `${error instanceof Error ? error.message : String(error)}${cause?.message ? ` (${cause.message})` : ""}`;
  // A dropped or refused connection may be a restarting server or a full queue: worth another try.
  const transient = ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EAI_AGAIN", "ECONNABORTED"];
  return new Failure(
    "remote-error",
    `connection failed: ${message}`,
    code === undefined || transient.includes(code),
  );
}

async function backoff(settings: RemoteSettings, attempt: number): Promise<void> {
  const ms = settings.backoffMs * 2 ** attempt * (0.75 + Math.random() * 0.5);
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Bytes `[offset, offset + length)` of the object, passed to `sink` in order as they arrive. Without
 * `expect` (the first read), the range is clipped to the object and its size and ETag are learned; with it,
 * every answer must agree. An attempt that breaks off part-way resumes where it stopped.
 */
export async function fetchRange(
  send: HttpSend,
  target: RemoteTarget,
  offset: number,
  length: number,
  expect: Validator | undefined,
  settings: RemoteSettings,
  sink: (chunk: Uint8Array, at: number) => void,
): Promise<FetchOutcome> {
  const transfer: Transfer = { requests: 0, bytes: 0 };
  let validator = expect;
  let done = 0;
  let wanted = length;
  let attempt = 0;
  for (;;) {
    try {
      const first = offset + done;
      const last = first + wanted - done - 1;
      if (done >= wanted || (validator && first >= validator.size)) {
        return {
          ok: true,
          validator: validator ?? { size: 0, etag: undefined, url: undefined },
          length: done,
          transfer,
        };
      }
      const headers: Record<string, string> = {
        range: `bytes=${first}-${last}`,
        "accept-encoding": "identity",
      };
      // If-Match makes the server refuse (412) a changed object; a weak ETag never matches, so only strong ones.
      if (validator?.etag && !validator.etag.startsWith("W/") && validator.etag.startsWith('"'))
        headers["if-match"] = validator.etag;
      const from = new URL(validator?.url ?? target.url);
      const { response, url } = await get(send, target, from, headers, settings, transfer);
      if (response.status === 416 && done === 0 && offset === 0) {
        // An empty object has no byte 0 to send.
        response.cancel();
        const range = parseContentRange(response.header("content-range")?.replace("bytes */", "bytes 0-0/"));
        if (range?.total === 0)
          return {
            ok: true,
            validator: { size: 0, etag: validatorOf(response), url: undefined },
            length: 0,
            transfer,
          };
      }
      // A server may answer a range that covers the whole object with the whole object (200): that is the data.
      const whole = response.status === 200 ? wholeObject(response, first, last) : undefined;
      if (response.status === 200 && !whole) {
        response.cancel();
        throw new Failure(
          "remote-range-ignored",
          `${url.host} ignored the Range request and began sending the whole object (HTTP 200${contentLengthNote(response)}); ckpt reads ranges and stopped instead of downloading it`,
        );
      }
      if (response.status !== 206 && !whole) {
        // A signed CDN URL that expired: go back to the origin once, which redirects to a fresh one.
        if (
          validator?.url &&
          (response.status === 403 || response.status === 404 || response.status === 410)
        ) {
          response.cancel();
          validator = { ...validator, url: undefined };
          continue;
        }
        throw await statusFailure(response, url, transfer);
      }
      const range = whole ?? parseContentRange(response.header("content-range"));
      const etag = validatorOf(response);
      if (!range || range.start !== first) {
        response.cancel();
        throw new Failure(
          "remote-short-body",
          `${url.host} answered bytes=${first}-${last} with Content-Range "${response.header("content-range") ?? ""}"`,
        );
      }
      if (
        validator &&
        ((range.total >= 0 && range.total !== validator.size) ||
          (validator.etag !== undefined && etag !== validator.etag))
      ) {
        response.cancel();
        throw new Failure(
          "remote-changed",
          `the object at ${url.host}${url.pathname} changed while being read (size ${validator.size} -> ${range.total}, ETag ${validator.etag ?? "none"} -> ${etag ?? "none"})`,
        );
      }
      if (!validator) {
        if (range.total < 0) {
          response.cancel();
          throw new Failure(
            "remote-error",
            `${url.host} does not say the object's size (Content-Range total "*")`,
          );
        }
        validator = { size: range.total, etag, url: undefined };
        wanted = Math.min(wanted, range.total - offset);
      }
      const redirected = url.href !== new URL(target.url).href ? url.href : undefined;
      validator = { ...validator, url: redirected };
      const expected = Math.min(last, validator.size - 1) - first + 1;
      if (range.end - range.start + 1 !== expected) {
        response.cancel();
        throw new Failure(
          "remote-short-body",
          `${url.host} sent bytes ${range.start}-${range.end} for bytes=${first}-${last}`,
        );
      }
      let received = 0;
      try {
        for await (const chunk of response.body) {
          const take = Math.min(chunk.length, expected - received);
          if (take > 0) sink(take === chunk.length ? chunk : chunk.subarray(0, take), first + received);
          received += chunk.length;
          transfer.bytes += chunk.length;
          if (received >= expected) break;
        }
      } catch (error) {
        if (received === 0) throw error;
        // Fall through: what arrived is kept, and the next attempt asks for the rest.
      }
      done += Math.min(received, expected);
      if (received < expected) {
        throw new Failure(
          "remote-short-body",
          `${url.host} closed the connection after ${received} of ${expected} bytes at offset ${first}`,
          true,
        );
      }
      attempt = 0;
    } catch (error) {
      const failure = failureOf(error);
      if (!failure.retry || attempt >= settings.retries) {
        const tries = attempt + 1;
        const message = failure.retry
          ? `${failure.message} (${tries} attempt${tries > 1 ? "s" : ""})`
          : failure.message;
        return { ok: false, code: failure.code, message, transfer };
      }
      await backoff(settings, attempt);
      attempt += 1;
    }
  }
}

/** A 200 to `bytes=0-LAST` whose length says it is the whole object and no more than was asked. */
function wholeObject(response: HttpResponse, first: number, last: number): ContentRange | undefined {
  const length = Number(response.header("content-length") ?? Number.NaN);
  if (first !== 0 || !Number.isSafeInteger(length) || length <= 0 || length > last + 1) return undefined;
  return { start: 0, end: length - 1, total: length };
}

function contentLengthNote(response: HttpResponse): string {
  const length = response.header("content-length");
  return length ? `, ${length} bytes` : "";
}

/** A whole small body (a listing page): at most `limit` bytes into `sink`. */
export async function fetchText(
  send: HttpSend,
  target: RemoteTarget,
  settings: RemoteSettings,
  limit: number,
): Promise<{ outcome: FetchOutcome; body: Uint8Array }> {
  const transfer: Transfer = { requests: 0, bytes: 0 };
  for (let attempt = 0; ; attempt++) {
    try {
      const { response, url } = await get(
        send,
        target,
        new URL(target.url),
        { accept: "application/json, application/xml" },
        settings,
        transfer,
      );
      if (response.status !== 200) throw await statusFailure(response, url, transfer);
      const body = await readSmall(response, limit + 1);
      transfer.bytes += body.length;
      if (body.length > limit)
        throw new Failure(
          "remote-error",
          `the listing at ${url.host}${url.pathname} is larger than ${limit} bytes`,
        );
      const next = /<([^>]+)>;\s*rel="next"/.exec(response.header("link") ?? "")?.[1];
      const validator = { size: body.length, etag: undefined, url: undefined };
      const outcome: FetchOutcome = {
        ok: true,
        validator,
        length: body.length,
        transfer,
        ...(next ? { next: new URL(next, url).href } : {}),
      };
      return { outcome, body };
    } catch (error) {
      const failure = failureOf(error);
      if (!failure.retry || attempt >= settings.retries) {
        return {
          outcome: { ok: false, code: failure.code, message: failure.message, transfer },
          body: new Uint8Array(0),
        };
      }
      await backoff(settings, attempt);
    }
  }
}
