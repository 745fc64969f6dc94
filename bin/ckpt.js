#!/usr/bin/env node
"use strict";
// The CLI, as bundled by `npm run build` into one CommonJS file (rolldown.config.mjs), compiled here through
// `vm.Script` with V8's code cache: Node 20 keeps no code cache for ES modules (module.enableCompileCache
// arrived in 22.1), and compiling the bundle and the functions a command runs was most of a small command's
// start-up (BENCHMARKS.md). This file is CommonJS (bin/package.json) because an ES module entry starts Node's
// ES module loader, which costs more milliseconds. The cache lives in the OS temp folder, or in
// CKPT_COMPILE_CACHE (a folder; "off" to compile every time); it is keyed by the bundle's build id and the
// Node version, written once by the first run that finds none, and only an optimisation: any failure to read
// or write it is ignored.
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const Module = require("node:module");

const bundle = path.join(__dirname, "..", "dist", "bundle", "ckpt.cjs");
const source = fs.readFileSync(bundle, "utf8");
const cacheFile = codeCacheFile(source);
let cachedData;
if (cacheFile) {
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {}
}
const script = new vm.Script(Module.wrap(source), { filename: bundle, cachedData });
const moduleRecord = { exports: {}, filename: bundle, id: bundle };
script
  .runInThisContext()
  .call(
    moduleRecord.exports,
    moduleRecord.exports,
    Module.createRequire(bundle),
    moduleRecord,
    bundle,
    path.dirname(bundle),
  );

moduleRecord.exports.main(process.argv).then((code) => {
  process.exitCode = code;
  // After the command ran, so the cache holds the functions it compiled, not only the top level.
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) writeCodeCache(cacheFile, script);
});

function codeCacheFile(text) {
  const setting = process.env.CKPT_COMPILE_CACHE;
  if (setting === "off") return undefined;
  const id = /^\/\/ckpt-build ([0-9a-f]+)\n/.exec(text.slice(0, 64))?.[1];
  if (!id) return undefined;
  const dir = setting || path.join(require("node:os").tmpdir(), "ckpt-compile-cache");
  return path.join(dir, `${id}-${process.version}-${process.arch}.v8cache`);
}

function writeCodeCache(file, compiled) {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const fd = fs.openSync(temporary, "w");
    try {
      fs.writeSync(fd, compiled.createCachedData());
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // Whole or not at all: a run starting meanwhile reads the old file or the new one, never half of one.
    fs.renameSync(temporary, file);
  } catch {
    try {
      fs.rmSync(temporary, { force: true });
    } catch {}
  }
}
