import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { displayWidth } from "../src/cli/render/table.js";
import { PLAIN } from "../src/cli/style.js";
import { ckptBinary, ckptStyled } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Every command's tables fit the terminal they print to, and print as plain aligned columns (no box drawing)
 * into a pipe, so that grep and awk work on them.
 */
const outputs = join(SAMPLES_DIR, "outputs");
const ROOT = join(import.meta.dirname, "..");
const BOX = /[│┌├└┬┼┴─]/;
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, "g");

const COMMANDS: Array<[string, string[]]> = [
  ["inspect's tensor table", ["inspect", join(SAMPLES_DIR, "torch2", "training_checkpoint.pth"), "--all"]],
  ["resume-plan's candidates", ["resume-plan", join(outputs, "lightning_rerun")]],
  ["audit's runs", ["audit", outputs]],
  ["audit's files", ["audit", join(SAMPLES_DIR, "torch2")]],
];

describe("tables on a terminal fit its width", () => {
  for (const [what, args] of COMMANDS) {
    for (const width of [60, 80, 100, 160]) {
      it(`${what} at ${width} columns`, async () => {
        const { out } = await ckptStyled({ ...PLAIN, table: { width, boxed: true } }, ...args);
        const table = out.split("\n").filter((line) => BOX.test(line[0] ?? ""));
        expect(table.length).toBeGreaterThan(3);
        for (const line of table) expect(displayWidth(line), line).toBeLessThanOrEqual(width);
      });
    }
  }

  it("scan's lines and summary at 80 columns", async () => {
    const { out } = await ckptStyled({ ...PLAIN, table: { width: 80, boxed: true } }, "scan", SAMPLES_DIR);
    const lines = out.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(100);
    for (const line of lines) expect(displayWidth(line), line).toBeLessThanOrEqual(80);
    expect(out).toContain("…");
  });

  it("long paths are shortened in the middle: the file name survives", async () => {
    const { out } = await ckptStyled(
      { ...PLAIN, table: { width: 50, boxed: true } },
      "resume-plan",
      join(outputs, "pytracking_run"),
    );
    expect(out).toMatch(/│ che\S*…\/DiMPnet_ep0003\.pth\.tar │/);
  });
});

describe("tables into a pipe are plain columns", () => {
  for (const [what, args] of COMMANDS) {
    it(`${what}: no box drawing, one row per line, the full cells`, () => {
      const { COLUMNS: _, ...env } = process.env;
      const run = ckptBinary(args, env);
      // inspect's structure tree draws its branches; no table line starts with a border.
      expect(run.stdout).not.toMatch(/^[│┌├└]/m);
      expect(run.stdout).not.toContain("…");
    });
  }

  it("awk finds audit's columns where the header puts them", () => {
    const { COLUMNS: _, ...env } = process.env;
    const lines = ckptBinary(["audit", outputs], env).stdout.split("\n");
    const header = lines[0] ?? "";
    expect(header).toMatch(/^RUN\s+CONVENTION\s+RESUMES FROM\s+AT\s+SIZE\s+VERDICT\s+POINTER\s+PROBLEM$/);
    const verdictAt = header.indexOf("VERDICT");
    const row = lines.find((l) => l.startsWith("fvcore_healthy ")) ?? "";
    expect(row.slice(verdictAt).split(" ")[0]).toBe("resumable");
    expect(row.split(/\s+/).slice(0, 4)).toEqual(["fvcore_healthy", "fvcore", "model_0000019.pth", "20"]);
  });
});

describe.runIf(existsSync("/usr/bin/script"))("in a real pseudo-terminal", () => {
  it("COLUMNS=100: the audit table is boxed and no line is wider than 100", () => {
    const command = `COLUMNS=100 NO_COLOR=1 ${process.execPath} bin/ckpt.js audit samples/outputs 2>/dev/null`;
    const run = spawnSync("/usr/bin/script", ["-qc", command, "/dev/null"], { cwd: ROOT, encoding: "utf8" });
    const lines = run.stdout.replace(ANSI, "").replaceAll("\r", "").split("\n");
    const table = lines.filter((line) => BOX.test(line[0] ?? ""));
    expect(table.length).toBeGreaterThan(30);
    for (const line of table) expect(displayWidth(line), line).toBeLessThanOrEqual(100);
  });
});
