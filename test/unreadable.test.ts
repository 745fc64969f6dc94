import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Never lose progress: a checkpoint that cannot be read for reasons other than its bytes (permissions here)
 * is `unreadable`, not `corrupt`, and neither `resume-plan --write` nor `repair RUN_DIR` moves the pointer
 * to an older checkpoint because of it. Run as a user without root (root reads a chmod 000 file anyway):
 * `nobody` through setpriv when the tests run as root, the current user otherwise.
 */
const CLI = join(import.meta.dirname, "..", "bin", "ckpt.js");
const asRoot = process.getuid?.() === 0;
const SETPRIV = "/usr/bin/setpriv";
const canDropRoot = !asRoot || existsSync(SETPRIV);
const scratch = mkdtempSync(join(tmpdir(), "ckpt-unreadable-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the built CLI as a user that chmod 000 really stops. */
function ckptAsUser(args: string[]) {
  const command = asRoot
    ? [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, CLI, ...args]
    : [process.execPath, CLI, ...args];
  return spawnSync(command[0] as string, command.slice(1), { encoding: "utf8" });
}

/** Every file under `dir` with its sha256 (names relative), to prove nothing changed. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true, encoding: "utf8" }).sort()) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    // Read as root (or the owner): the unreadable file's bytes are part of the proof too.
    const mode = statSync(path).mode;
    chmodSync(path, 0o644);
    out[name] = createHash("sha256").update(readFileSync(path)).digest("hex");
    chmodSync(path, mode);
  }
  return out;
}

/** A copy of a healthy fvcore run whose newest checkpoint nobody may read, in a directory anyone may write. */
function runWithUnreadableNewest(name: string): string {
  const run = join(scratch, name);
  cpSync(join(SAMPLES_DIR, "outputs", "fvcore_healthy"), run, { recursive: true });
  chmodSync(scratch, 0o755);
  chmodSync(run, 0o777); // a buggy --write could write here: the test proves it does not
  for (const entry of readdirSync(run)) chmodSync(join(run, entry), 0o666);
  chmodSync(join(run, "model_0000019.pth"), 0o000);
  return run;
}

describe.runIf(canDropRoot)("an unreadable checkpoint is never treated as a damaged one", () => {
  it("resume-plan says unreadable, exits 2, and --write writes nothing", () => {
    const run = runWithUnreadableNewest("plan");
    const before = snapshot(run);
    const plan = ckptAsUser(["resume-plan", run, "--json"]);
    expect(plan.status, plan.stderr).toBe(2);
    const parsed = JSON.parse(plan.stdout) as {
      pointer: { status: string };
      unreadable: string[];
      findings: Array<{ code: string }>;
    };
    expect(parsed.pointer.status).toBe("unreadable-target");
    expect(parsed.pointer.status).not.toBe("corrupt-target");

    const write = ckptAsUser(["resume-plan", run, "--write"]);
    expect(write.status).toBe(2);
    expect(write.stderr).toContain("checkpoint-unreadable");
    expect(write.stderr).toContain("nothing was written");
    expect(write.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(snapshot(run)).toEqual(before);
  });

  it("repair RUN_DIR refuses the same way", () => {
    const run = runWithUnreadableNewest("repair");
    const before = snapshot(run);
    const repair = ckptAsUser(["repair", run]);
    expect(repair.status).toBe(2);
    expect(repair.stderr).toContain("checkpoint-unreadable");
    expect(snapshot(run)).toEqual(before);
  });

  it("once the file can be read again, the plan resumes from it", () => {
    const run = runWithUnreadableNewest("fixed");
    chmodSync(join(run, "model_0000019.pth"), 0o644);
    const plan = ckptAsUser(["resume-plan", run, "--json"]);
    expect(plan.status).toBe(0);
    expect((JSON.parse(plan.stdout) as { choice: { file: string } }).choice.file).toBe("model_0000019.pth");
  });
});
