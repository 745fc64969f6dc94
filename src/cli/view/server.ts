import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { basename, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ReaderError } from "../../reader/errors.js";
import { lazyBuiltin } from "../../reader/nodeBuiltins.js";

/**
 * `ckpt view`'s server: the page (dist/web/index.html) and the files of one path, on 127.0.0.1 only. The
 * page reads the files by range requests from its own origin (`src/page/httpSource.ts`), so a 6 GB file is
 * read by slices here too. Only the listed files are served, each only while its size and mtime are what
 * they were when listed (409 otherwise); requests whose Host is not this server's are refused (a web page
 * elsewhere cannot rebind a name to 127.0.0.1 and read them).
 */

/** What the page finds at /ckpt-view.json (`ServedListing` in src/page/protocol.ts). */
interface Listed {
  readonly path: string;
  readonly size: number;
  readonly url: string;
  readonly absolute: string;
  readonly mtimeMs: number;
}

/** Required when `view` starts serving: no other command loads http. */
const nodeHttp = lazyBuiltin<typeof import("node:http")>("node:http");

const SKIPPED = new Set([".git", "node_modules", "__pycache__", ".venv"]);
/** Enough for any run tree; a listing of more would be a home directory. */
const MAX_FILES = 100_000;

/** The built page: dist/web/ beside dist/cli/ and dist/bundle/, or from the sources, the built one. */
export function pageFile(): string {
  for (const candidate of ["../web/index.html", "../../web/index.html", "../../../dist/web/index.html"]) {
    const path = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new ReaderError("file-not-found", "the page is not built (dist/web/index.html): run npm run build");
}

function listFiles(root: string): Listed[] {
  const stats = statSync(root, { throwIfNoEntry: false });
  if (!stats) throw new ReaderError("file-not-found", "no such file or directory", { file: root });
  const listed: Listed[] = [];
  const add = (absolute: string, path: string) => {
    const s = statSync(absolute, { throwIfNoEntry: false });
    if (!s?.isFile()) return;
    if (listed.length >= MAX_FILES) return;
    const url = `/files/${path.split("/").map(encodeURIComponent).join("/")}`;
    listed.push({ path, size: s.size, url, absolute, mtimeMs: s.mtimeMs });
  };
  if (stats.isFile()) {
    add(root, basename(root));
    return listed;
  }
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : 1,
    )) {
      const absolute = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED.has(entry.name)) walk(absolute);
      } else add(absolute, relative(root, absolute).split(sep).join("/"));
    }
  };
  walk(root);
  return listed;
}

/** The page with the mark that makes it read what is served, and a CSP that lets it reach this origin. */
function servedPage(): string {
  const html = readFileSync(pageFile(), "utf8");
  return html
    .replace("<!--ckpt-view-->", '<meta name="ckpt-view" content="/ckpt-view.json">')
    .replace("connect-src 'none'", "connect-src 'self'");
}

/** `bytes=START-END` of a file of `size` bytes, or undefined when the header is not one such range. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined {
  const match = /^bytes=(\d+)-(\d+)$/.exec(header ?? "");
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  return start <= end && end < size ? { start, end } : undefined;
}

function sendRange(file: Listed, request: IncomingMessage, response: ServerResponse): void {
  const now = statSync(file.absolute, { throwIfNoEntry: false });
  if (!now || now.size !== file.size || now.mtimeMs !== file.mtimeMs) {
    response.writeHead(409).end("changed since listed");
    return;
  }
  const range = parseRange(request.headers.range, file.size);
  if (!range) {
    response.writeHead(416, { "Content-Range": `bytes */${file.size}` }).end();
    return;
  }
  const length = range.end - range.start + 1;
  const bytes = Buffer.allocUnsafe(length);
  const fd = openSync(file.absolute, "r");
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, bytes, done, length - done, range.start + done);
      if (n === 0) break;
      done += n;
    }
    if (done !== length) {
      response.writeHead(409).end("changed while read");
      return;
    }
  } finally {
    closeSync(fd);
  }
  response
    .writeHead(206, {
      "Content-Type": "application/octet-stream",
      "Content-Range": `bytes ${range.start}-${range.end}/${file.size}`,
      "Content-Length": length,
      "Cache-Control": "no-store",
    })
    .end(bytes);
}

export interface Served {
  readonly server: Server;
  readonly url: string;
  readonly files: number;
}

/** Listens on 127.0.0.1:`port` (0: a free one) and serves the page and `target`. */
export function serve(target: string, port: number): Promise<Served> {
  const root = resolve(target);
  const listed = listFiles(root);
  const isDirectory = statSync(root).isDirectory();
  const byUrl = new Map(listed.map((f) => [f.url, f]));
  const page = servedPage();
  const listing = JSON.stringify({
    name: basename(root),
    kind: isDirectory ? "directory" : "file",
    files: listed.map(({ path, size, url }) => ({ path, size, url })),
  });
  let host = "";
  const server = nodeHttp().createServer((request, response) => {
    if (request.headers.host !== host && request.headers.host !== host.replace("127.0.0.1", "localhost")) {
      response.writeHead(421).end("wrong host");
      return;
    }
    const url = (request.url ?? "/").split("?")[0] as string;
    if (request.method !== "GET") response.writeHead(405).end();
    else if (url === "/")
      response
        .writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" })
        .end(page);
    else if (url === "/ckpt-view.json")
      response
        .writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-store" })
        .end(listing);
    else {
      const file = byUrl.get(url);
      if (file) sendRange(file, request, response);
      else response.writeHead(404).end();
    }
  });
  return new Promise((done, fail) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      fail(
        new ReaderError("io-error", `cannot listen on 127.0.0.1:${port} (${error.code ?? error.message})`),
      ),
    );
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : port;
      host = `127.0.0.1:${bound}`;
      done({ server, url: `http://${host}/`, files: listed.length });
    });
  });
}
