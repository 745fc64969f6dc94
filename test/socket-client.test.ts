import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type HttpResponse, readSmall, TimeoutError } from "../src/reader/remote/client.js";
import { framingOf, HeadParser } from "../src/reader/remote/responseHead.js";
import { socketSend } from "../src/reader/remote/socketClient.js";

/**
 * The digest workers' own HTTP/1.1 client against servers that answer each way a server may: Node's http
 * server (lengths, chunked bodies, keep-alive), and raw sockets for what it never does by itself (a body
 * to the connection's end, a 100 Continue first, a body cut short, silence, a kept socket closed).
 */

const servers: Array<{ close(): void }> = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

async function listen(server: net.Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A raw server: `answer` gets each connection's socket and the text of its first request. */
function rawServer(answer: (socket: net.Socket, request: string) => void): Promise<string> {
  return listen(
    net.createServer((socket) => {
      let text = "";
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("\r\n\r\n")) {
          const request = text;
          text = "";
          answer(socket, request);
        }
      });
      socket.on("error", () => {});
    }),
  );
}

async function bodyOf(response: HttpResponse): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of response.body) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const payload = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7919) % 251));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("socketSend", () => {
  it("reads length-framed and chunked bodies, on one kept connection", async () => {
    let connections = 0;
    const server = http.createServer((request, response) => {
      if (request.url === "/chunked") {
        response.writeHead(200, { "x-kind": "chunked" });
        for (let at = 0; at < payload.length; at += 700_001)
          response.write(payload.subarray(at, at + 700_001));
        response.end();
      } else {
        const [from, to] = (request.headers.range ?? "bytes=0-0").slice(6).split("-").map(Number);
        response.writeHead(206, { "content-range": `bytes ${from}-${to}/${payload.length}` });
        response.end(payload.subarray(from, (to as number) + 1));
      }
    });
    server.on("connection", () => connections++);
    const base = await listen(server);
    const ranged = await socketSend(new URL(`${base}/f`), { range: "bytes=5-2000004" }, 5000);
    expect(ranged.status).toBe(206);
    expect(ranged.header("content-range")).toBe(`bytes 5-2000004/${payload.length}`);
    expect(sha(await bodyOf(ranged))).toBe(sha(payload.subarray(5, 2_000_005)));
    const chunked = await socketSend(new URL(`${base}/chunked`), {}, 5000);
    expect(chunked.header("x-kind")).toBe("chunked");
    expect(chunked.header("transfer-encoding")).toBe("chunked");
    expect(sha(await bodyOf(chunked))).toBe(sha(payload));
    const again = await socketSend(new URL(`${base}/f`), { range: "bytes=0-9" }, 5000);
    expect([...(await bodyOf(again))]).toEqual([...payload.subarray(0, 10)]);
    expect(connections).toBe(1);
  });

  it("keeps a socket for each of several requests in flight, and reuses them", async () => {
    let connections = 0;
    const server = http.createServer((request, response) => {
      response.writeHead(200, { "content-length": 6 });
      setTimeout(() => response.end(request.url?.slice(1, 7).padEnd(6, "-")), 20);
    });
    server.on("connection", () => connections++);
    const base = await listen(server);
    const round = () =>
      Promise.all(
        ["a", "b", "c"].map(async (name) =>
          (await bodyOf(await socketSend(new URL(`${base}/${name}`), {}, 5000))).toString(),
        ),
      );
    expect(await round()).toEqual(["a-----", "b-----", "c-----"]);
    expect(await round()).toEqual(["a-----", "b-----", "c-----"]);
    expect(connections).toBe(3);
  });

  it("reads a body that runs to the connection's end, after a 100 Continue", async () => {
    const base = await rawServer((socket) => {
      socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n");
      socket.end(payload.subarray(0, 123_457));
    });
    const response = await socketSend(new URL(`${base}/x`), {}, 5000);
    expect(response.status).toBe(200);
    expect(response.header("x-a")).toBe("1");
    expect(sha(await bodyOf(response))).toBe(sha(payload.subarray(0, 123_457)));
  });

  it("sends a GET again on a new socket when the kept one closes without answering", async () => {
    const served = new WeakMap<net.Socket, number>();
    let connections = 0;
    const base = await rawServer((socket) => {
      const n = (served.get(socket) ?? 0) + 1;
      served.set(socket, n);
      if (n === 1) connections++;
      // Each connection answers its first request and drops the one after, as a server that timed it out.
      if (n === 1) socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      else socket.destroy();
    });
    const first = await socketSend(new URL(`${base}/a`), {}, 5000);
    expect((await bodyOf(first)).toString()).toBe("ok");
    const second = await socketSend(new URL(`${base}/b`), {}, 5000);
    expect((await bodyOf(second)).toString()).toBe("ok");
    expect(connections).toBe(2);
  });

  it("hands out chunks that stay valid while later ones arrive", async () => {
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { "content-length": payload.length });
      response.end(payload);
    });
    const base = await listen(server);
    // readSmall keeps every chunk until the limit: a chunk read into a reused buffer would be overwritten.
    const kept = await readSmall(await socketSend(new URL(`${base}/a`), {}, 5000), 2_500_000);
    expect(sha(kept)).toBe(sha(payload.subarray(0, 2_500_000)));
  });

  it("fails a body cut short, a silent server, a header holding a line break, and https", async () => {
    const base = await rawServer((socket, request) => {
      if (request.startsWith("GET /endless-line")) {
        socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${"a".repeat(300_000)}`);
      }
      if (request.startsWith("GET /short")) {
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
        socket.end(payload.subarray(0, 50));
      }
      // /silent: no answer at all
    });
    const short = await socketSend(new URL(`${base}/short`), {}, 5000);
    await expect(bodyOf(short)).rejects.toThrow(/closed inside the body/);
    await expect(socketSend(new URL(`${base}/silent`), {}, 200)).rejects.toBeInstanceOf(TimeoutError);
    const endless = await socketSend(new URL(`${base}/endless-line`), {}, 5000);
    await expect(bodyOf(endless)).rejects.toThrow(/longer than 1 KiB/);
    await expect(socketSend(new URL("https://127.0.0.1:1/x"), {}, 5000)).rejects.toThrow(/http: URLs only/);
    await expect(socketSend(new URL(`${base}/x`), { "x-a": "1\r\nx-b: 2" }, 5000)).rejects.toThrow(
      /line break/,
    );
  });

  it("fails a malformed Content-Length as an error of that request, not of the process", async () => {
    const base = await rawServer((socket) =>
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\nhello"),
    );
    await expect(socketSend(new URL(`${base}/x`), {}, 2000)).rejects.toThrow(/Content-Length/);
  });

  it("keeps reading a socket whose body was queued past the limit before it was read", async () => {
    const big = Buffer.alloc(16 * 1024 * 1024 + 1, 7);
    const server = http.createServer((request, response) => {
      const body = request.url === "/big" ? big : Buffer.from("next");
      response.writeHead(200, { "content-length": body.length });
      response.end(body);
    });
    const base = await listen(server);
    const first = await socketSend(new URL(`${base}/big`), {}, 2000);
    // Not read while the whole body arrives: it is queued, the socket paused, the body complete.
    await new Promise((r) => setTimeout(r, 300));
    expect((await readSmall(first, 10)).length).toBe(10);
    const next = await socketSend(new URL(`${base}/small`), {}, 1000);
    expect((await bodyOf(next)).toString()).toBe("next");
  });

  it("stops a cancelled body and answers the next request on a fresh connection", async () => {
    let connections = 0;
    const server = http.createServer((_request, response) => {
      response.writeHead(200, { "content-length": payload.length });
      response.end(payload);
    });
    server.on("connection", () => connections++);
    const base = await listen(server);
    const first = await socketSend(new URL(`${base}/a`), {}, 5000);
    expect((await readSmall(first, 10)).length).toBe(10);
    const second = await socketSend(new URL(`${base}/b`), {}, 5000);
    expect(sha(await bodyOf(second))).toBe(sha(payload));
    expect(connections).toBe(2);
  });
});

describe("response heads", () => {
  it("parses across reads and frames bodies as RFC 9112 says", () => {
    const parser = new HeadParser();
    const text = 'HTTP/1.1 206 Partial Content\r\nContent-Length: 4\r\nETag: "a"\r\n\r\nbody';
    const bytes = Buffer.from(text, "latin1");
    expect(parser.add(bytes.subarray(0, 30))).toBeUndefined();
    const parsed = parser.add(bytes.subarray(30));
    expect(parsed?.head.status).toBe(206);
    expect(parsed?.head.headers.get("etag")).toBe('"a"');
    expect(parsed?.head.keepAlive).toBe(true);
    expect(Buffer.from(parsed?.rest ?? []).toString()).toBe("body");
    // The blank line split between two reads.
    const split = text.indexOf("\r\n\r\n") + 2;
    const again = new HeadParser();
    expect(again.add(bytes.subarray(0, split))).toBeUndefined();
    const joined = again.add(bytes.subarray(split));
    expect(joined?.head.headers.get("content-length")).toBe("4");
    expect(Buffer.from(joined?.rest ?? []).toString()).toBe("body");
    const head = (lines: string) => {
      const p = new HeadParser().add(Buffer.from(`${lines}\r\n\r\n`, "latin1"));
      if (!p) throw new Error("incomplete");
      return p.head;
    };
    expect(framingOf(head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"))).toEqual({ kind: "chunked" });
    expect(framingOf(head("HTTP/1.1 200 OK"))).toEqual({ kind: "close" });
    expect(framingOf(head("HTTP/1.1 304 Not Modified\r\nContent-Length: 9"))).toEqual({
      kind: "length",
      length: 0,
    });
    expect(head("HTTP/1.0 200 OK").keepAlive).toBe(false);
    expect(head("HTTP/1.1 200 OK\r\nConnection: close").keepAlive).toBe(false);
    expect(() => framingOf(head("HTTP/1.1 200 OK\r\nContent-Length: 1e3"))).toThrow(/Content-Length/);
    expect(() => head("SSH-2.0-OpenSSH")).toThrow(/not an HTTP response/);
  });
});
