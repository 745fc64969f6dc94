import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectCheckpoint } from "../src/inspect/report.js";
import { openCheckpoint } from "../src/reader/open.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * ckpt as a user gets it from a registry: `npm pack`, installed into an empty project, gives a working
 * `npx ckpt` and an importable, typed library. Packs the build `npm test` made (--ignore-scripts: no rebuild)
 * and installs from npm's cache (the dependencies are there since `npm ci`).
 */
const ROOT = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "ckpt-package-"));
const project = join(scratch, "consumer");
const sample = join(SAMPLES_DIR, "torch2", "training_checkpoint.pth");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8" });

beforeAll(() => {
  npm(["pack", "--ignore-scripts", "--pack-destination", scratch], ROOT);
  const tarball = readdirSync(scratch).find((n) => n.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack wrote no tarball into ${scratch}`);
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  npm(["install", "--prefer-offline", join(scratch, tarball)], project);
}, 120_000);

describe("the packed package, installed into an empty project", () => {
  it("npx ckpt inspect SAMPLE runs the CLI and exits 0", () => {
    const run = spawnSync("npx", ["--no", "ckpt", "inspect", sample], { cwd: project, encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("Format     torch-zip");
  });

  it("import { openCheckpoint, inspectCheckpoint } from 'ckpt' works from plain JavaScript", () => {
    writeFileSync(
      join(project, "count.mjs"),
      [
        'import { inspectCheckpoint, openCheckpoint } from "ckpt";',
        "const file = process.argv[2];",
        "const checkpoint = openCheckpoint(file);",
        "try {",
        "  console.log(inspectCheckpoint(checkpoint, file).summary.tensorCount);",
        "} finally {",
        "  checkpoint.source.close();",
        "}",
      ].join("\n"),
    );
    const out = execFileSync(process.execPath, ["count.mjs", sample], { cwd: project, encoding: "utf8" });
    const checkpoint = openCheckpoint(sample);
    const expected = inspectCheckpoint(checkpoint, sample).summary.tensorCount;
    checkpoint.source.close();
    expect(out.trim()).toBe(String(expected));
  });

  it("the declarations type-check a TypeScript consumer of the documented API, and the README's example", () => {
    writeFileSync(
      join(project, "consumer.ts"),
      [
        'import { type InspectReport, inspectCheckpoint, openCheckpoint, planResume, type ResumePlan, repairCheckpointFile, repairRun, scanFile, scanReport, type ScanReport, ReaderError } from "ckpt";',
        "const checkpoint = openCheckpoint(process.argv[2] ?? '');",
        "const report: InspectReport = inspectCheckpoint(checkpoint, 'x');",
        "const count: number = report.summary.tensorCount;",
        "const plan: Promise<ResumePlan> = planResume('run', { verify: 'chosen' });",
        "const scanned: ScanReport = scanReport('x');",
        "const verdict: string = scanFile('x').verdict;",
        "const fix = [repairCheckpointFile, repairRun, ReaderError];",
        "export { count, plan, scanned, verdict, fix };",
      ].join("\n"),
    );
    // The README's library example is compiled too: documentation that does not type-check is wrong.
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const example = /## As a library[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    writeFileSync(join(project, "readme-example.ts"), `${example}\nexport {};\n`);
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const run = spawnSync(
      process.execPath,
      [
        tsc,
        "--noEmit",
        "--strict",
        "--skipLibCheck",
        "--target",
        "es2022",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--types",
        "node",
        "--typeRoots",
        join(ROOT, "node_modules", "@types"),
        "consumer.ts",
        "readme-example.ts",
      ],
      { cwd: project, encoding: "utf8" },
    );
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  }, 60_000); // tsc loads @types/node: seconds, more on a loaded machine
});
