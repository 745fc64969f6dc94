/**
 * What the caller's thread and the I/O worker say to each other. The reader is synchronous, so a remote read
 * is a message to the worker (which does the network I/O) and an `Atomics.wait` on a shared control word;
 * the worker writes the body into a shared buffer and the outcome, as JSON, into the control buffer.
 */

/** How requests to one remote object are authorised. */
export type RemoteAuth =
  | { readonly kind: "none" }
  /** `Authorization: Bearer` (the Hub's `HF_TOKEN`); dropped when a redirect leaves the origin (its CDN). */
  | { readonly kind: "bearer"; readonly token: string }
  /** AWS Signature V4 for S3 and S3-compatible stores, signed per request in the worker. */
  | {
      readonly kind: "s3";
      readonly region: string;
      readonly accessKeyId: string;
      readonly secretAccessKey: string;
      readonly sessionToken?: string;
    };

/** One object (or listing) to GET. */
export interface RemoteTarget {
  readonly url: string;
  readonly auth: RemoteAuth;
}

/** Timeouts and retries, from the environment of the caller (`CKPT_REMOTE_TIMEOUT`, `CKPT_REMOTE_RETRIES`). */
export interface RemoteSettings {
  /** Milliseconds without a byte (connecting, waiting for headers, or between body chunks) before an attempt fails. */
  readonly timeoutMs: number;
  /** Attempts after the first, for timeouts, dropped connections, short bodies, 429 and 5xx. */
  readonly retries: number;
  /** First backoff; doubled for each further retry. */
  readonly backoffMs: number;
}

/**
 * What the first response said about the object; every later response must agree, so two reads can never
 * mix two versions of a file.
 */
export interface Validator {
  readonly size: number;
  /** ETag, or `Last-Modified` when a server sends no ETag. */
  readonly etag: string | undefined;
  /** Where the last redirect led (the Hub's CDN): later reads go there directly instead of paying a redirect. */
  readonly url: string | undefined;
}

export type RemoteErrorCode =
  | "remote-timeout"
  | "remote-forbidden"
  | "remote-not-found"
  | "remote-range-ignored"
  | "remote-short-body"
  | "remote-changed"
  | "remote-error";

/** Requests sent and body bytes received (headers are not counted). */
export interface Transfer {
  requests: number;
  bytes: number;
}

export type FetchOutcome =
  | {
      readonly ok: true;
      readonly validator: Validator;
      /** Bytes written to the data buffer. */
      readonly length: number;
      /** For listings: the next page's URL, from a `Link: <...>; rel="next"` header. */
      readonly next?: string;
      readonly transfer: Transfer;
    }
  | {
      readonly ok: false;
      readonly code: RemoteErrorCode;
      readonly message: string;
      readonly transfer: Transfer;
    };

/** `range`: bytes `[offset, offset + length)` (clipped to the object when its size is not known yet). `text`: a whole small body. */
export type WorkerRequest =
  | {
      readonly kind: "range";
      readonly target: RemoteTarget;
      readonly offset: number;
      readonly length: number;
      readonly expect: Validator | undefined;
      readonly settings: RemoteSettings;
      readonly control: SharedArrayBuffer;
      readonly data: SharedArrayBuffer;
    }
  | {
      readonly kind: "text";
      readonly target: RemoteTarget;
      readonly settings: RemoteSettings;
      readonly control: SharedArrayBuffer;
      readonly data: SharedArrayBuffer;
    };

/** The control buffer: [0] state (0 pending, 1 done), [1] outcome JSON length, then the JSON from byte 8. */
export const CONTROL_BYTES = 64 * 1024;
export const CONTROL_HEADER = 8;
