import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ckptBinary } from "./helpers/cli.js";

// What bin/ckpt.js does to start fast, on the built CLI (`npm test` builds it first): the bundle compiled
// through V8's code cache, and no Node built-in loaded that the command does not use.

const root = join(import.meta.dirname, "..");
const small = join(root, "samples", "torch2", "adamw_known_size.pt");
const bundleId = /^\/\/ckpt-build ([0-9a-f]+)\n/.exec(
  readFileSync(join(root, "dist", "bundle", "ckpt.cjs"), "utf8").slice(0, 64),
)?.[1];

const dirs: string[] = [];
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-startup-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function inspectWithCache(cache: string) {
  const run = ckptBinary(["inspect", small, "--json"], { ...process.env, CKPT_COMPILE_CACHE: cache });
  expect(run.stderr).toBe("");
  expect(run.status).toBe(0);
  return run.stdout;
}

describe("the code cache", () => {
  it("is written by the first run, named by the bundle's build id and the Node version, then used", () => {
    expect(bundleId).toMatch(/^[0-9a-f]{20}$/);
    const cache = scratch();
    const first = inspectWithCache(cache);
    const name = `${bundleId}-${process.version}-${process.arch}.v8cache`;
    expect(readdirSync(cache)).toEqual([name]);
    const written = statSync(join(cache, name));
    expect(written.size).toBeGreaterThan(10_000);

    // The second run reads it (a rejected cache would be rewritten) and prints the same.
    expect(inspectWithCache(cache)).toBe(first);
    expect(statSync(join(cache, name)).mtimeMs).toBe(written.mtimeMs);
    expect(JSON.parse(first).schema).toMatch(/^ckpt\.inspect\//);
  });

  it("rejects a damaged cache, runs correctly anyway and writes a sound one", () => {
    const cache = scratch();
    const expected = inspectWithCache(cache);
    const [name] = readdirSync(cache);
    const file = join(cache, name as string);
    writeFileSync(file, Buffer.alloc(4096, 0x5a));
    expect(inspectWithCache(cache)).toBe(expected);
    expect(statSync(file).size).toBeGreaterThan(10_000);
    expect(readdirSync(cache)).toEqual([name]); // no temporary file left behind
  });

  it("is off with CKPT_COMPILE_CACHE=off, and an unwritable folder only costs the cache", () => {
    const cache = scratch();
    const expected = inspectWithCache(cache);
    expect(inspectWithCache("off")).toBe(expected);
    const notAFolder = join(cache, "file");
    writeFileSync(notAFolder, "");
    expect(inspectWithCache(join(notAFolder, "cache"))).toBe(expected);
  });
});

describe("built-ins at start-up", () => {
  it("a small inspect loads no network, crypto, worker, process or zlib module", () => {
    const out = join(scratch(), "loaded.txt");
    const preload = join(scratch(), "record.cjs");
    writeFileSync(
      preload,
      `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join("\\n")));`,
    );
    const run = spawnSync(
      process.execPath,
      ["--require", preload, join(root, "bin", "ckpt.js"), "inspect", small],
      {
        encoding: "utf8",
      },
    );
    expect(run.status).toBe(0);
    const loaded = new Set(readFileSync(out, "utf8").split("\n"));
    expect(loaded.has("NativeModule fs")).toBe(true); // the record is real
    const unwanted = ["http", "https", "tls", "crypto", "worker_threads", "child_process", "zlib"].filter(
      (m) => loaded.has(`NativeModule ${m}`),
    );
    expect(unwanted).toEqual([]);
  });
});
