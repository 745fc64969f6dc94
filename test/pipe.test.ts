import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `ckpt ... | head`: a reader that goes away ends the command quietly, with its own exit code and no stack
 * trace, on every command. Run on the built CLI: only a real process has a real pipe.
 */
const BIN = join(import.meta.dirname, "..", "bin", "ckpt.js");
const outputs = join(SAMPLES_DIR, "outputs");

interface Ended {
  readonly code: number | null;
  readonly stderr: string;
  readonly firstLine: string;
}

/** Spawns the CLI, reads `lines` lines of its stdout (0: none at all), then closes the pipe. */
function closeEarly(args: string[], lines: number): Promise<Ended> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let seen = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    if (lines === 0) child.stdout.destroy();
    else
      child.stdout.on("data", (chunk: Buffer) => {
        seen += chunk.toString("utf8");
        if (seen.split("\n").length > lines) child.stdout.destroy();
      });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stderr, firstLine: seen.split("\n")[0] ?? "" }));
  });
}

const COMMANDS: Array<[string, string[], number]> = [
  ["inspect", ["inspect", join(SAMPLES_DIR, "torch2"), "--all"], 0],
  ["inspect --json", ["inspect", join(SAMPLES_DIR, "torch2"), "--json"], 0],
  // The framework would resume from the truncated newest file: resume-plan says so with exit 1.
  ["resume-plan", ["resume-plan", join(outputs, "fvcore_truncated_newest")], 1],
  ["audit", ["audit", outputs], 1],
  ["audit --json", ["audit", outputs, "--json"], 1],
  ["scan", ["scan", SAMPLES_DIR], 2],
  ["repair --dry-run", ["repair", join(outputs, "trackron_model_only"), "--dry-run"], 0],
  ["--help", ["--help"], 0],
];

describe("a closed pipe ends the command quietly", () => {
  for (const [what, args, expected] of COMMANDS) {
    it(`${what}: the reader closes before the first byte`, async () => {
      const ended = await closeEarly(args, 0);
      expect(ended.stderr).not.toMatch(/EPIPE|Error|\n\s+at /);
      expect([0, expected]).toContain(ended.code);
    });
  }

  it("audit --json | head -1: the first line arrives, then the rest is dropped with no trace", async () => {
    const ended = await closeEarly(["audit", outputs, "--json"], 1);
    expect(ended.firstLine).toBe("{");
    expect(ended.stderr).toBe("");
    expect([0, 1]).toContain(ended.code);
  });

  it("inspect --all of a directory | head -1", async () => {
    const ended = await closeEarly(["inspect", join(SAMPLES_DIR, "torch1"), "--all"], 1);
    expect(ended.firstLine).toContain("torch1");
    expect(ended.stderr).not.toMatch(/EPIPE|\n\s+at /);
  });
});
