// Bundles the built CLI (dist/, from tsc) for bin/ckpt.js. The CLI is one CommonJS file, dist/bundle/ckpt.cjs:
// Node 20 has no code cache for ES modules, but a CommonJS file compiled through `vm.Script` can keep one
// (bin/ckpt.js), which takes V8's compilation out of every start (BENCHMARKS.md). Its Node built-ins beyond
// fs, path, os and url are required on first use (src/reader/nodeBuiltins.ts), since a bundle hoists static
// imports to the top of the file. The worker threads are ES module entries of their own in the same folder
// (their URLs are relative to import.meta.url, which the CommonJS bundle maps to its own file), and
// dist/bundle/ sits as deep as dist/cli/, so version.js still finds ../../package.json.
//
// Then the page (issue 17, src/page/): its worker and its script, bundled from the TypeScript sources for
// browsers, put into one self-contained dist/web/index.html by `webPage` (web/build.mjs). The worker comes
// first: rolldown builds the list in order, and the page inlines the worker it has just written.
import { createHash } from "node:crypto";
import { defineConfig } from "rolldown";
import { nodeFree, webPage } from "./web/build.mjs";

const web = {
  platform: "browser",
  resolve: { extensionAlias: { ".js": [".ts", ".js"] } },
  plugins: [nodeFree()],
};

/**
 * The CLI bundle's first line names its contents (`//ckpt-build <sha256 prefix>`): bin/ckpt.js keys the code
 * cache by it, since V8 checks only a source's length before trusting a cache, and npm gives every installed
 * file the same mtime. And the bundle must hold no `import()`: `vm.Script` on Node 20 has no loader for one.
 */
const cliBundle = {
  name: "ckpt-cli-bundle",
  generateBundle(_options, bundle) {
    for (const chunk of Object.values(bundle)) {
      if (chunk.type !== "chunk") continue;
      const dynamic = /[^\w$.]import\(/.exec(chunk.code);
      if (dynamic)
        this.error(
          `${chunk.fileName} keeps an import(): ${chunk.code.slice(dynamic.index, dynamic.index + 80)}`,
        );
      const id = createHash("sha256").update(chunk.code).digest("hex").slice(0, 20);
      chunk.code = `//ckpt-build ${id}\n${chunk.code}`;
    }
  },
};

/**
 * commander requires child_process (and with it net, stream and dgram, ~6 ms) when it loads, for executable
 * subcommands, which ckpt has none of: its one use, `spawn`, requires it on first call instead.
 */
const commanderSpawnOnUse = {
  name: "commander-spawn-on-use",
  transform(code, id) {
    if (!/[\\/]commander[\\/]lib[\\/]command\.js$/.test(id)) return null;
    const eager = "const childProcess = require('node:child_process');";
    if (!code.includes(eager)) this.error(`commander's ${id} no longer requires child_process as expected`);
    const onUse =
      "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };";
    return code.replace(eager, onUse);
  },
};

/** Comments and whitespace out, names kept (stack traces still read): about half the bytes V8 must scan. */
const minify = { compress: false, mangle: false, codegen: { removeWhitespace: true } };

export default defineConfig([
  {
    input: { ckpt: "dist/cli/main.js" },
    platform: "node",
    plugins: [commanderSpawnOnUse, cliBundle],
    external: [/^node:/],
    output: {
      dir: "dist/bundle",
      format: "cjs",
      entryFileNames: "[name].cjs",
      sourcemap: false,
      minify,
      cleanDir: true,
      // One file: one read, one compile (or one code cache), where the chunks of an ES module build each
      // cost a resolution, a read and a compile. Lazy parts still run only when used (rolldown wraps them
      // in init functions).
      codeSplitting: false,
    },
  },
  {
    input: {
      auditWorker: "dist/inspect/runs/auditWorker.js",
      rangeDigestWorker: "dist/reader/rangeDigestWorker.js",
      ioWorker: "dist/reader/remote/ioWorker.js",
      compareWorker: "dist/inspect/diff/compareWorker.js",
      itemScanWorker: "dist/inspect/sharded/itemScanWorker.js",
    },
    platform: "node",
    external: [/^node:/],
    output: {
      dir: "dist/bundle",
      format: "esm",
      entryFileNames: "[name].js",
      chunkFileNames: "[name]-[hash].js",
      sourcemap: false,
      minify,
      // The workers share their common modules in chunks (the default split); start-up is their cost only.
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
