// Bundles the built CLI (dist/, from tsc) into a few files in dist/bundle/, which bin/ckpt.js runs: loading
// ~70 modules one by one cost ~20 ms of every command's start-up (BENCHMARKS.md). The worker threads are
// entries of their own, next to the chunks that start them (their URLs are relative to import.meta.url), and
// dist/bundle/ sits as deep as dist/cli/, so version.js still finds ../../package.json.
import { defineConfig } from "rolldown";

export default defineConfig({
  input: {
    ckpt: "dist/cli/main.js",
    auditWorker: "dist/inspect/runs/auditWorker.js",
    rangeDigestWorker: "dist/reader/rangeDigestWorker.js",
    ioWorker: "dist/reader/remote/ioWorker.js",
    compareWorker: "dist/inspect/diff/compareWorker.js",
  },
  platform: "node",
  external: [/^node:/],
  output: {
    dir: "dist/bundle",
    format: "esm",
    entryFileNames: "[name].js",
    chunkFileNames: "[name]-[hash].js",
    sourcemap: false,
    cleanDir: true,
  },
});
