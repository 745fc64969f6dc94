// A static file server on loopback with Range, ETag and If-Match as nginx serves them, counting what it sends:
// the fallback when nginx is absent, and the one whose failures tests can order. It runs in its own process
// (test/helpers/rangeServer.ts forks it), since ckpt's remote reads block the calling thread: a server in the
// test's own process could never answer them. Plain JavaScript, because Node starts it without vitest.
//
//   node rangeServerProcess.mjs ROOT      (then IPC messages: misbehave, route, reset, stats)
import { createReadStream, statSync } from "node:fs";
import { createServer } from "node:http";
import { join, normalize } from "node:path";

const root = process.argv[2];
const served = { requests: 0, bytes: 0, log: [] };
let mode = "none";
let failuresLeft = 0;
/** @type {Map<string, {status: number, headers?: Record<string,string>, body?: string}>} */
const routes = new Map();
const hanging = new Set();

const server = createServer((req, res) => {
  served.requests += 1;
  const url = new URL(req.url ?? "/", "http://loopback");
  const path = decodeURIComponent(url.pathname);
  const range = req.headers.range;
  const log = (status) =>
    served.log.push({ path: `${url.pathname}${url.search}`, range, status, auth: req.headers.authorization });
  const send = (status, headers, body) => {
    log(status);
    res.writeHead(status, headers);
    if (body !== undefined) served.bytes += Buffer.byteLength(body);
    res.end(body);
  };
  const routed = routes.get(`${url.pathname}${url.search}`) ?? routes.get(url.pathname);
  if (routed) return send(routed.status, routed.headers ?? {}, routed.body ?? "");
  if (mode === "hang") {
    hanging.add(res);
    log(0);
    return;
  }
  if (mode === "forbidden") return send(403, { "content-type": "text/plain" }, "forbidden\n");
  if (mode === "flaky" && failuresLeft > 0) {
    failuresLeft -= 1;
    return send(503, { "content-type": "text/plain" }, "try again\n");
  }
  const file = join(root, normalize(path).replace(/^([/\\])+/, ""));
  let size;
  let mtime;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) throw new Error("not a file");
    size = stats.size;
    mtime = stats.mtimeMs;
  } catch {
    return send(404, { "content-type": "text/plain" }, "not found\n");
  }
  // nginx's form: hex mtime (seconds), hex size.
  let etag = `"${Math.floor(mtime / 1000).toString(16)}-${size.toString(16)}"`;
  if (mode === "changing-etag" && served.requests > 1) etag = `"changed-${served.requests}"`;
  const ifMatch = req.headers["if-match"];
  if (ifMatch && ifMatch !== "*" && ifMatch !== etag) return send(412, { etag }, "");
  const match = /^bytes=(\d+)-(\d*)$/.exec(range ?? "");
  const stream = (start, end, status, headers, cut) => {
    log(status);
    res.writeHead(status, headers);
    const body = createReadStream(file, { start, end });
    body.on("data", (chunk) => {
      served.bytes += chunk.length;
    });
    if (cut) body.on("end", () => res.destroy());
    body.pipe(res);
    res.on("close", () => body.destroy());
  };
  if (!match || mode === "ignore-range") {
    return stream(
      0,
      Math.max(0, size - 1),
      200,
      { "content-length": size, etag, "accept-ranges": "bytes" },
      false,
    );
  }
  const start = Number(match[1]);
  const end = Math.min(match[2] === "" ? size - 1 : Number(match[2]), size - 1);
  if (start >= size) return send(416, { "content-range": `bytes */${size}`, etag }, "");
  const headers = {
    "content-length": end - start + 1,
    "content-range": `bytes ${start}-${end}/${size}`,
    etag,
    "accept-ranges": "bytes",
  };
  const short = mode === "short-body";
  stream(start, short ? start + Math.floor((end - start) / 2) : end, 206, headers, short);
});

process.on("message", (message) => {
  switch (message.kind) {
    case "misbehave":
      mode = message.mode;
      failuresLeft = message.failures ?? 0;
      break;
    case "route":
      routes.set(message.path, message.answer);
      break;
    case "reset":
      served.requests = 0;
      served.bytes = 0;
      served.log = [];
      mode = "none";
      for (const res of hanging) res.destroy();
      hanging.clear();
      break;
    case "stats":
      break;
  }
  process.send?.({ id: message.id, served });
});

server.keepAliveTimeout = 30_000;
server.listen(0, "127.0.0.1", () => process.send?.({ ready: server.address().port }));
// Ends with the test process that started it.
process.on("disconnect", () => process.exit(0));
