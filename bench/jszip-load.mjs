#!/usr/bin/env node
// The jszip baseline of bench/run.mjs: what a Node user reaches for first. Reads the whole file, loads the
// archive, lists its entries and unpacks data.pkl. Prints one JSON line; on failure (above 2 GiB Node cannot
// read a file into one Buffer) prints the error on stderr and exits 1. Run in a child process by the harness.
//
//   node bench/jszip-load.mjs FILE
import { readFileSync } from "node:fs";
import JSZip from "jszip";

try {
  const zip = await JSZip.loadAsync(readFileSync(process.argv[2]));
  const names = Object.keys(zip.files);
  const pickle = names.find((n) => n.endsWith("data.pkl"));
  const bytes = pickle ? await zip.file(pickle).async("uint8array") : new Uint8Array();
  console.log(JSON.stringify({ entries: names.length, dataPkl: bytes.length }));
} catch (error) {
  console.error(`jszip: ${error.code ?? error.name}: ${error.message}`);
  process.exitCode = 1;
}
