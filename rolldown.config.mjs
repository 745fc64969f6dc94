// Bundles the built CLI (dist/, from tsc) into a few files in dist/bundle/, which bin/ckpt.js runs: loading
// ~70 modules one by one cost ~20 ms of every command's start-up (BENCHMARKS.md). The worker threads are
// entries of their own, next to the chunks that start them (their URLs are relative to import.meta.url), and
// dist/bundle/ sits as deep as dist/cli/, so version.js still finds ../../package.json.
//
// Then the page (issue 17, src/page/): its worker and its script, bundled from the TypeScript sources for
// browsers, put into one self-contained dist/web/index.html by `webPage` (web/build.mjs). The worker comes
// first: rolldown builds the list in order, and the page inlines the worker it has just written.
import { defineConfig } from "rolldown";
import { nodeFree, webPage } from "./web/build.mjs";

const web = {
  platform: "browser",
  resolve: { extensionAlias: { ".js": [".ts", ".js"] } },
  plugins: [nodeFree()],
};

export default defineConfig([
  {
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
      // Comments and whitespace out, names kept (stack traces still read): about half the bytes V8 must scan
      // and compile at every start.
      minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } },
      cleanDir: true,
      // The reader and single-file analysis in one chunk: every command needs them, and each chunk costs a
      // module resolution, a file read and a compile of its own (a small inspect loaded 17 files; now 7).
      codeSplitting: {
        groups: [
          {
            name: "core",
            // Worker entries stay files of their own: a group holding one would merge into it. So do the
            // modules only the remote I/O worker imports (Node's http and https clients, the fetch logic):
            // in the group, every command would load node:http and node:https at start-up.
            test: /[\\/]dist[\\/](?:reader[\\/](?!remote[\\/](?:nodeClient|fetch|client|sign)\.js$)|inspect[\\/](?!runs[\\/]))(?!.*Worker\.js$)/,
          },
        ],
      },
    },
  },
  {
    ...web,
    input: "src/page/worker.ts",
    output: { file: "dist/page/worker.js", format: "iife", sourcemap: false, minify: true },
  },
  {
    ...web,
    input: "src/page/main.ts",
    plugins: [...web.plugins, webPage({ worker: "dist/page/worker.js", out: "index.html" })],
    output: {
      dir: "dist/web",
      format: "iife",
      entryFileNames: "page.js",
      sourcemap: false,
      minify: true,
      cleanDir: true,
    },
  },
]);
