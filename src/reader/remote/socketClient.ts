import net from "node:net";
import { latin1 } from "../bytes.js";
import { type HttpResponse, type HttpSend, TimeoutError } from "./client.js";
import { nodeSend } from "./nodeClient.js";
import { type BodyFraming, framingOf, HeadParser, type ResponseHead } from "./responseHead.js";

/**
 * GETs on keep-alive sockets with a small HTTP/1.1 response reader of its own: the client of the digest
 * workers, which move every byte of a remote file to SHA-256. Node's `http` delivers a body in 64 KiB pieces
 * through its stream machinery, and on two cores that machinery, not the network or the hash, bounded
 * `--hash` of a file on a loopback nginx (0.37 GB/s a thread with `http.get`, 0.74 GB/s with the bytes read
 * straight off the socket into 256 KiB buffers: bench/remote.mjs). It reads with `onread` into a fresh
 * buffer per read, so every chunk handed out stays valid. Up to `MAX_IDLE` sockets per origin are kept for
 * the next requests, as Node's agent keeps them. Plain HTTP only: `https:` goes to Node's client
 * (`digestSendFor`), where TLS, not the stream machinery, is the larger cost, and whose certificate handling
 * the tests do not need to re-prove.
 */

/**
 * The digest workers' client for a range of `length` bytes: this one for plain HTTP ranges of at least
 * `SOCKET_RANGE_MIN`, Node's otherwise. Against nginx (sendfile, tcp_nopush) this client's answers to
 * 64 KiB ranges lost ~40 ms each in their last TCP segment (the pattern of a delayed ACK; Node's `http` on
 * the same server took 4 ms, for a reason not found), so small reads stay on Node's client, where the stall
 * was not seen, and the large ones, where stream overhead is the cost and a stall would be amortized, come
 * here (8 MiB ranges: 8 ms each here, 22 ms through Node's `http`).
 */
export function digestSendFor(length: number): HttpSend {
  return (url, headers, timeoutMs) =>
    url.protocol === "http:" && length >= SOCKET_RANGE_MIN
      ? socketSend(url, headers, timeoutMs)
      : nodeSend(url, headers, timeoutMs);
}

const SOCKET_RANGE_MIN = 1024 * 1024;

const READ_BUFFER = 256 * 1024;
/** Received and not yet taken by the body's reader beyond this: the socket stops reading until it is. */
const QUEUE_LIMIT = 16 * 1024 * 1024;

interface Connection {
  readonly socket: net.Socket;
  /** Where the bytes the socket reads go: the request it is serving. */
  onBytes: (chunk: Uint8Array) => void;
  onEnd: (error?: Error) => void;
  onTimeout: () => void;
  /** It has served a request (a server may have closed it since). */
  reused: boolean;
}

/** Sockets kept per origin, as Node's agent keeps them: several requests may be in flight to one host. */
const MAX_IDLE = 8;
const idle = new Map<string, Connection[]>();

function takeIdle(origin: string): Connection | undefined {
  return idle.get(origin)?.pop();
}

function keepIdle(origin: string, connection: Connection): void {
  const kept = idle.get(origin) ?? [];
  idle.set(origin, kept);
  if (kept.length >= MAX_IDLE) connection.socket.destroy();
  else kept.push(connection);
}

function dropIdle(origin: string, connection: Connection): void {
  const kept = idle.get(origin);
  const at = kept?.indexOf(connection) ?? -1;
  if (kept && at >= 0) kept.splice(at, 1);
}

function connect(url: URL): Connection {
  const connection: Connection = {
    socket: undefined as unknown as net.Socket,
    onBytes: () => {},
    onEnd: () => {},
    onTimeout: () => {},
    reused: false,
  };
  const socket = net.connect({
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || 80),
    onread: {
      // Not zero-filled: the kernel writes the bytes a read returns, and only those are handed out
      // (zeroing 256 KiB a read took a third of a digest worker's time besides SHA-256).
      buffer: () => Buffer.allocUnsafeSlow(READ_BUFFER),
      callback: (length: number, buffer: Uint8Array) => {
        // Nothing may throw out of a read callback (it would end the worker): a failure ends the socket.
        try {
          connection.onBytes(buffer.subarray(0, length));
        } catch (error) {
          socket.destroy(error as Error);
        }
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  socket.on("error", (error) => connection.onEnd(error));
  socket.on("end", () => connection.onEnd());
  socket.on("timeout", () => connection.onTimeout());
  socket.on("close", () => {
    connection.onEnd();
    dropIdle(url.origin, connection);
  });
  (connection as { socket: net.Socket }).socket = socket;
  return connection;
}

function requestText(url: URL, headers: Record<string, string>): string {
  let text = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    // A header split by CR or LF would be two requests' worth of text: never sent.
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${name} holds a line break`);
    text += `${name}: ${value}\r\n`;
  }
  return `${text}connection: keep-alive\r\n\r\n`;
}

/** A GET over plain HTTP (`http:` URLs only). */
export const socketSend: HttpSend = async (url, headers, timeoutMs) => {
  if (url.protocol !== "http:") throw new Error(`socketSend reads http: URLs only, not ${url.protocol}`);
  const origin = url.origin;
  const kept = takeIdle(origin);
  if (kept) {
    try {
      return await exchange(kept, url, headers, timeoutMs);
    } catch (error) {
      // A kept socket the server closed while it was idle answers nothing: a GET is sent again, on a new one.
      if (!(error instanceof StaleConnection)) throw error;
    }
  }
  return exchange(connect(url), url, headers, timeoutMs);
};

/** A reused socket that closed before any byte of the answer. */
class StaleConnection extends Error {}

function exchange(
  connection: Connection,
  url: URL,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<HttpResponse> {
  const { socket } = connection;
  const origin = url.origin;
  const wasReused = connection.reused;
  connection.reused = true;
  return new Promise<HttpResponse>((resolve, reject) => {
    const head = new HeadParser();
    let body: BodyReader | undefined;
    let sawBytes = false;
    // An idle timer, re-armed by every byte: a slow but moving transfer of a large range is not a timeout.
    connection.onTimeout = () =>
      fail(new TimeoutError(`no answer from ${url.host} in ${timeoutMs / 1000} s`));
    socket.setTimeout(timeoutMs);
    const fail = (error: Error): void => {
      socket.destroy();
      if (body) body.fail(error);
      else reject(error);
    };
    // The body's hold on the socket, released when the body is complete or dropped: a reader that paused it
    // must not pause or resume it again once it serves another request.
    let owned = true;
    const flow: Flow = {
      // A paused socket reads nothing, so its idle timer would measure the reader, not the server.
      pause: () => {
        if (!owned) return;
        socket.pause();
        socket.setTimeout(0);
      },
      resume: () => {
        if (!owned) return;
        socket.resume();
        socket.setTimeout(timeoutMs);
      },
      destroy: () => {
        if (owned) socket.destroy();
      },
    };
    const finished = (reusable: boolean): void => {
      owned = false;
      socket.setTimeout(0);
      if (socket.isPaused()) socket.resume();
      // Bytes on an idle socket answer nothing that was asked: read as the next request's head, they would
      // be taken for its answer.
      connection.onBytes = () => socket.destroy();
      connection.onEnd = () => {};
      connection.onTimeout = () => {};
      if (reusable && !socket.destroyed) {
        socket.unref();
        keepIdle(origin, connection);
      } else socket.destroy();
    };
    connection.onEnd = (error) => {
      if (body) body.closed(error);
      else if (wasReused && !sawBytes) reject(new StaleConnection("the kept connection was closed"));
      else fail(error ?? Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    };
    connection.onBytes = (chunk) => {
      sawBytes = true;
      if (body) {
        body.push(chunk);
        return;
      }
      let parsed: { head: ResponseHead; rest: Uint8Array } | undefined;
      try {
        parsed = head.add(chunk);
      } catch (error) {
        fail(error as Error);
        return;
      }
      if (!parsed) return;
      let framing: BodyFraming;
      try {
        framing = framingOf(parsed.head);
      } catch (error) {
        fail(error as Error);
        return;
      }
      body = new BodyReader(framing, flow, (reusable) => finished(reusable && parsed.head.keepAlive));
      const reader = body;
      resolve({
        status: parsed.head.status,
        header: (name) => parsed.head.headers.get(name),
        body: reader,
        cancel: () => reader.cancel(),
      });
      if (parsed.rest.length > 0) reader.push(parsed.rest);
      else reader.pushNothing();
    };
    socket.ref();
    try {
      socket.write(requestText(url, headers));
    } catch (error) {
      fail(error as Error);
    }
  });
}

/** What a body may do to the socket under it, while it holds it. */
interface Flow {
  pause(): void;
  resume(): void;
  destroy(): void;
}

/** A response body as chunks, framed by its length, by chunked encoding or by the connection's end. */
class BodyReader implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = [];
  private queued = 0;
  private paused = false;
  private waiter: ((result: IteratorResult<Uint8Array>) => void) | undefined;
  private failWaiter: ((error: Error) => void) | undefined;
  private done = false;
  private error: Error | undefined;
  private readonly decoder: FramedBody;

  constructor(
    framing: BodyFraming,
    private readonly flow: Flow,
    private readonly finished: (reusable: boolean) => void,
  ) {
    this.decoder = new FramedBody(framing);
  }

  push(bytes: Uint8Array): void {
    if (this.done) return;
    let pieces: Uint8Array[];
    try {
      pieces = this.decoder.take(bytes);
    } catch (error) {
      this.flow.destroy();
      this.fail(error as Error);
      return;
    }
    for (const piece of pieces) this.deliver(piece);
    // Bytes past the body's end are not an answer to anything this client asked: the socket is not reused.
    if (this.decoder.complete) this.end(!this.decoder.overrun);
  }

  /** The head came alone: a body framed as empty is complete already. */
  pushNothing(): void {
    if (this.decoder.complete) this.end(true);
  }

  closed(error?: Error): void {
    if (this.done) return;
    // A body framed by the connection's end is complete when it ends cleanly; any other is cut short.
    if (!error && this.decoder.untilClose) this.end(false);
    else
      this.fail(
        error ?? Object.assign(new Error("the connection closed inside the body"), { code: "ECONNRESET" }),
      );
  }

  fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    const reject = this.failWaiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    reject?.(error);
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    this.queue.length = 0;
    this.finished(false);
    this.wake();
  }

  private end(reusable: boolean): void {
    this.done = true;
    this.finished(reusable);
    this.wake();
  }

  private deliver(piece: Uint8Array): void {
    if (piece.length === 0) return;
    const waiter = this.waiter;
    if (waiter && this.queue.length === 0) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      waiter({ value: piece, done: false });
      return;
    }
    this.queue.push(piece);
    this.queued += piece.length;
    if (this.queued > QUEUE_LIMIT && !this.paused) {
      this.paused = true;
      this.flow.pause();
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter && this.queue.length === 0) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      waiter({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<Uint8Array>> {
    const piece = this.queue.shift();
    if (piece) {
      this.queued -= piece.length;
      if (this.paused && this.queued <= QUEUE_LIMIT / 2) {
        this.paused = false;
        this.flow.resume();
      }
      return Promise.resolve({ value: piece, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = resolve;
      this.failWaiter = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: () => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

/** Cuts a body's bytes out of what the socket reads, by its framing. */
class FramedBody {
  private remaining: number;
  /** Chunked: what of the current chunk-size line has arrived, or the CRLF after a chunk still due. */
  private line = "";
  private state: "size" | "data" | "data-end" | "trailer" | "done";

  constructor(private readonly framing: BodyFraming) {
    this.remaining = framing.kind === "length" ? framing.length : 0;
    this.state =
      framing.kind === "length" && framing.length === 0
        ? "done"
        : framing.kind === "chunked"
          ? "size"
          : "data";
  }

  get complete(): boolean {
    return this.state === "done";
  }

  /** Bytes came after the body's end. */
  overrun = false;

  get untilClose(): boolean {
    return this.framing.kind === "close";
  }

  take(bytes: Uint8Array): Uint8Array[] {
    switch (this.framing.kind) {
      case "close":
        return [bytes];
      case "length": {
        if (this.state === "done" || bytes.length > this.remaining) this.overrun = true;
        if (this.state === "done") return [];
        const piece = bytes.length <= this.remaining ? bytes : bytes.subarray(0, this.remaining);
        this.remaining -= piece.length;
        if (this.remaining === 0) this.state = "done";
        return [piece];
      }
      case "chunked":
        return this.takeChunked(bytes);
    }
  }

  private takeChunked(bytes: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let at = 0;
    while (at < bytes.length && this.state !== "done") {
      if (this.state === "data") {
        const n = Math.min(this.remaining, bytes.length - at);
        out.push(bytes.subarray(at, at + n));
        at += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = "data-end";
        continue;
      }
      // A line: a chunk's size, the CRLF that closes a chunk, or a trailer line.
      const lf = bytes.indexOf(0x0a, at);
      const end = lf < 0 ? bytes.length : lf;
      // Checked before converting: a server that never ends the line cannot make a 256 KiB string of it.
      if (this.line.length + end - at > 1024) throw new Error("a chunked body's line is longer than 1 KiB");
      this.line += latin1(bytes, at, end);
      at = end + 1;
      if (lf < 0) break;
      const line = this.line.replace(/\r$/, "");
      this.line = "";
      if (this.state === "data-end") {
        if (line !== "") throw new Error("a chunk of a chunked body does not end with CRLF");
        this.state = "size";
      } else if (this.state === "size") {
        const size = Number.parseInt(line.split(";")[0]?.trim() ?? "", 16);
        if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bad chunk size "${line}"`);
        this.remaining = size;
        this.state = size === 0 ? "trailer" : "data";
      } else if (line === "") this.state = "done";
    }
    if (at < bytes.length) this.overrun = true;
    return out;
  }
}
