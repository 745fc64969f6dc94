import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The remote sources run in a browser's workers too: these modules import nothing from Node, directly or
 * through what they import. Node's side (its worker, http agents, ~/.aws files, digest workers) lives in
 * nodeChannel.ts, nodeClient.ts, socketClient.ts, ioWorker.ts, digest.ts and src/reader/location.ts.
 */
const REMOTE = join(import.meta.dirname, "..", "src", "reader", "remote");
const PORTABLE = [
  "awsConfig.ts",
  "channel.ts",
  "client.ts",
  "fetch.ts",
  "fetchClient.ts",
  "location.ts",
  "protocol.ts",
  "remoteSource.ts",
  "responseHead.ts",
  "serve.ts",
  "sign.ts",
  "trees.ts",
  "webChannel.ts",
  "webIoWorker.ts",
];

/** Relative modules a file imports at run time (type-only imports are erased). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+"([^"]+)";/gms)].map((m) => m[1] as string);
}

function closure(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const spec of runtimeImports(file)) {
    if (spec.startsWith(".")) closure(join(file, "..", spec.replace(/\.js$/, ".ts")), seen);
    else seen.add(spec);
  }
  return seen;
}

describe("portable remote sources", () => {
  it.each(PORTABLE)("%s reaches no node: module and no Node-only file", (name) => {
    const reached = [...closure(join(REMOTE, name))];
    expect(reached.filter((r) => r.startsWith("node:"))).toEqual([]);
    expect(
      reached.filter((r) => /node(Channel|Client)\.ts$|ioWorker\.ts$|digest\.ts$|fileSource\.ts$/.test(r)),
    ).toEqual([]);
  });
});
