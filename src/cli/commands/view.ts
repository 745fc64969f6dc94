import { existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { ReaderError } from "../../reader/errors.js";
import { lazyBuiltin } from "../../reader/nodeBuiltins.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { serve } from "../view/server.js";

/** Required when `view` opens a browser: no other command loads child_process. */
const childProcess = lazyBuiltin<typeof import("node:child_process")>("node:child_process");

export interface ViewCommandOptions {
  readonly port: number;
  readonly open: boolean;
  /** Resolves when the server should stop (default: Ctrl-C or SIGTERM). */
  readonly until?: Promise<void>;
}

/** The command that opens a URL in the desktop's browser, where there is a desktop. */
function opener(): readonly string[] | undefined {
  if (process.platform === "darwin") return ["open"];
  if (process.platform === "win32") return ["cmd", "/c", "start", ""];
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) return undefined;
  const found = (process.env.PATH ?? "").split(delimiter).some((dir) => existsSync(join(dir, "xdg-open")));
  return found ? ["xdg-open"] : undefined;
}

function openInBrowser(url: string): boolean {
  const command = opener();
  if (!command) return false;
  const [program, ...args] = command as [string, ...string[]];
  const child = childProcess().spawn(program, [...args, url], { detached: true, stdio: "ignore" });
  child.on("error", () => undefined);
  child.unref();
  return true;
}

function interrupted(): Promise<void> {
  return new Promise((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      done();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

/** `ckpt view PATH`: serves the page and PATH on 127.0.0.1 until stopped. */
export async function runView(path: string, options: ViewCommandOptions, io: Output): Promise<number> {
  let served: Awaited<ReturnType<typeof serve>>;
  try {
    served = await serve(path, options.port);
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    io.err(`${formatErrorLine(errorReport(path, error))}\n`);
    return 2;
  }
  const opened = options.open && openInBrowser(served.url);
  io.out(
    `ckpt view: ${served.url} serves ${path} (${served.files} file${served.files === 1 ? "" : "s"}) to this machine only${opened ? ", opened in your browser" : ""}; Ctrl-C stops\n`,
  );
  await (options.until ?? interrupted());
  served.server.closeAllConnections();
  await new Promise((done) => served.server.close(done));
  return 0;
}
