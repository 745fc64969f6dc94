#!/usr/bin/env node
// The CLI as bundled by `npm run build` (rolldown.config.mjs): a few files load faster than ~70 modules.
import { main } from "../dist/bundle/ckpt.js";

process.exitCode = await main(process.argv);
