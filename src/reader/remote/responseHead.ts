import { latin1 } from "../bytes.js";

/**
 * An HTTP/1.1 response's status line and headers, read from the bytes a socket delivers, and how its body is
 * framed (RFC 9112 section 6): what `socketClient.ts` needs to take ranged bodies straight off a socket.
 */

export interface ResponseHead {
  readonly status: number;
  /** By lowercase name; the first value when a header repeats. */
  readonly headers: ReadonlyMap<string, string>;
  /** The connection may carry the next request once this body is read. */
  readonly keepAlive: boolean;
}

export type BodyFraming =
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  /** No length and no chunking: the body runs to the connection's end. */
  | { readonly kind: "close" };

const MAX_HEAD = 64 * 1024;

/** Collects a response's head across reads; `add` returns it, with the bytes after it, once complete. */
export class HeadParser {
  private text = "";

  add(bytes: Uint8Array): { head: ResponseHead; rest: Uint8Array } | undefined {
    const before = this.text.length;
    // Only up to the blank line (and 3 bytes before it that may close a line begun in an earlier read), not
    // the body bytes that follow in the same read. Latin-1, one character a byte: positions map to `bytes`.
    const blank = indexOfBlankLine(bytes);
    const upTo = blank < 0 ? Math.min(bytes.length, MAX_HEAD + 4) : blank + 4;
    this.text += latin1(bytes.subarray(0, upTo));
    const end = this.text.indexOf("\r\n\r\n");
    if (end < 0) {
      if (this.text.length > MAX_HEAD) throw new Error("the response's headers are longer than 64 KiB");
      return undefined;
    }
    const head = parseHead(this.text.slice(0, end));
    // 1xx answers (100 Continue, 103 Early Hints) come before the real one: skip them and read on.
    if (head.status >= 100 && head.status < 200) {
      const restAt = end + 4 - before;
      this.text = "";
      return this.add(bytes.subarray(restAt));
    }
    return { head, rest: bytes.subarray(end + 4 - before) };
  }
}

/** Where CR LF CR LF starts in `bytes`, or -1. */
function indexOfBlankLine(bytes: Uint8Array): number {
  for (let i = bytes.indexOf(0x0d); i >= 0 && i + 3 < bytes.length; i = bytes.indexOf(0x0d, i + 1))
    if (bytes[i + 1] === 0x0a && bytes[i + 2] === 0x0d && bytes[i + 3] === 0x0a) return i;
  return -1;
}

function parseHead(text: string): ResponseHead {
  const lines = text.split("\r\n");
  const status = /^HTTP\/(\d)\.(\d) (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!status) throw new Error(`not an HTTP response: "${(lines[0] ?? "").slice(0, 80)}"`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`a malformed header line: "${line.slice(0, 80)}"`);
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, line.slice(colon + 1).trim());
  }
  const http11 = status[1] === "1" && status[2] === "1";
  const connection = headers.get("connection")?.toLowerCase() ?? "";
  const keepAlive = http11 ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { status: Number(status[3]), headers, keepAlive };
}

/** How the body after `head` ends, for a GET. */
export function framingOf(head: ResponseHead): BodyFraming {
  if (head.status === 204 || head.status === 304) return { kind: "length", length: 0 };
  const coding = head.headers.get("transfer-encoding")?.toLowerCase();
  if (coding !== undefined && coding !== "identity") {
    if (!/\bchunked\s*$/.test(coding)) return { kind: "close" };
    return { kind: "chunked" };
  }
  const length = head.headers.get("content-length");
  if (length === undefined) return { kind: "close" };
  if (!/^\d+$/.test(length) || !Number.isSafeInteger(Number(length)))
    throw new Error(`a malformed Content-Length: "${length.slice(0, 40)}"`);
  return { kind: "length", length: Number(length) };
}
