import { type ChildProcess, fork } from "node:child_process";
import { join } from "node:path";

/**
 * The Node fallback server (`rangeServerProcess.mjs`) in a child process, and what it counted. ckpt's remote
 * reads block the calling thread until the bytes are there, so the server must run outside the test's process.
 */

export interface Served {
  readonly requests: number;
  /** Body bytes sent. */
  readonly bytes: number;
  /** Each request's path (with query), Range header, status and Authorization header, in order. */
  readonly log: ReadonlyArray<{ path: string; range?: string; status: number; auth?: string }>;
}

export type Misbehaviour =
  | "none"
  /** Answers a ranged GET with 200 and the whole file. */
  | "ignore-range"
  /** Promises the range, sends half of it, closes the connection. */
  | "short-body"
  /** Accepts the request and never answers. */
  | "hang"
  | "forbidden"
  /** A new ETag for every request after the first: the file "changes" between reads. */
  | "changing-etag"
  /** 503 for the first `failures` requests, then serves. */
  | "flaky";

export interface RouteAnswer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface RangeServer {
  readonly url: string;
  served(): Promise<Served>;
  misbehave(mode: Misbehaviour, failures?: number): Promise<Served>;
  /** A fixed answer for a path (with or without its query): a listing, a redirect. */
  route(path: string, answer: RouteAnswer): Promise<Served>;
  reset(): Promise<Served>;
  close(): Promise<void>;
}

/** A server script forked with `args`, once it said its port; `ask` sends an IPC message and waits for its answer. */
export async function forkServer(
  script: string,
  args: string[],
): Promise<{
  port: number;
  ask: (message: Record<string, unknown>) => Promise<Served>;
  close: () => Promise<void>;
}> {
  const child: ChildProcess = fork(join(import.meta.dirname, script), args, {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (m: { ready?: number }) =>
      m.ready ? resolve(m.ready) : reject(new Error("no port")),
    );
    child.once("exit", () => reject(new Error(`the test server ${script} exited`)));
  });
  let next = 0;
  const ask = (message: Record<string, unknown>) =>
    new Promise<Served>((resolve) => {
      const id = ++next;
      const listener = (m: { id?: number; served: Served }) => {
        if (m.id !== id) return;
        child.off("message", listener);
        resolve(m.served);
      };
      child.on("message", listener);
      child.send({ ...message, id });
    });
  const close = async () => {
    child.kill();
    await new Promise((resolve) => child.once("exit", resolve));
  };
  return { port, ask, close };
}

export async function startRangeServer(root: string): Promise<RangeServer> {
  const { port, ask, close } = await forkServer("rangeServerProcess.mjs", [root]);
  return {
    url: `http://127.0.0.1:${port}`,
    served: () => ask({ kind: "stats" }),
    misbehave: (mode, failures = 0) => ask({ kind: "misbehave", mode, failures }),
    route: (path, answer) => ask({ kind: "route", path, answer }),
    reset: () => ask({ kind: "reset" }),
    close,
  };
}
