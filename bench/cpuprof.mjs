#!/usr/bin/env node
// Profiles one ckpt command with `node --cpu-prof` and lists the functions with the most self time
// (samples aggregated by function and source line; "(garbage collector)", "(program)" and "(idle)" are V8's).
//
//   node bench/cpuprof.mjs inspect FILE --json        prints the top 12
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Runs `node --cpu-prof bin/ckpt.js ...args`; returns [{ name, where, ms, percent }] by self time. */
export function profileCkpt(args, top = 12) {
  const dir = mkdtempSync(join(tmpdir(), "ckpt-prof-"));
  try {
    const flags = ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "200"];
    // The unbundled modules (dist/cli) rather than bin/ckpt.js's bundle, so that profiles name source files.
    const launcher = join(dir, "ckpt.mjs");
    const main = JSON.stringify(join(root, "dist", "cli", "main.js"));
    writeFileSync(launcher, `import { main } from ${main};\nprocess.exitCode = await main(process.argv);\n`);
    spawnSync(process.execPath, [...flags, process.env.CKPT_BIN ?? launcher, ...args], {
      stdio: "ignore",
    });
    const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
    // Worker threads write profiles of their own; all are summed.
    return summarize(
      files.map((f) => JSON.parse(readFileSync(join(dir, f), "utf8"))),
      top,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function summarize(profiles, top) {
  const self = new Map();
  let total = 0;
  for (const { nodes, samples, timeDeltas } of profiles) {
    const byId = new Map(nodes.map((n) => [n.id, n]));
    samples.forEach((id, i) => {
      const { functionName, url, lineNumber } = byId.get(id).callFrame;
      const where = url
        ? `${url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, "$1/")}:${lineNumber + 1}`
        : "";
      const key = `${functionName || "(anonymous)"}\t${where}`;
      const ms = (timeDeltas[i] ?? 0) / 1000;
      self.set(key, (self.get(key) ?? 0) + ms);
      total += ms;
    });
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key, ms]) => {
      const [name, where] = key.split("\t");
      return { name, where, ms, percent: (100 * ms) / total };
    });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const f of profileCkpt(process.argv.slice(2)))
    console.log(
      `${f.ms.toFixed(1).padStart(9)} ms ${f.percent.toFixed(1).padStart(5)}%  ${f.name}  ${f.where}`,
    );
}
