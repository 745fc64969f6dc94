#!/usr/bin/env node
// The CLI as bundled by `npm run build` (rolldown.config.mjs): a few files load faster than ~70 modules.
// Where Node has it (22.1+), V8's code cache keeps the compiled bundle between runs; it must be on before
// the bundle loads, hence the dynamic import. On Node 20 the bundle is compiled at every start.
import module from "node:module";

module.enableCompileCache?.();
const { main } = await import("../dist/bundle/ckpt.js");
process.exitCode = await main(process.argv);
