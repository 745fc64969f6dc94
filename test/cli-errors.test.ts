import { copyFileSync, linkSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ReaderError, type ReaderErrorCode } from "../src/reader/errors.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Usage mistakes that once all said `not-a-file`: each has its own code and its own "Next:", in the text
 * line and in `ckpt.error/1`, and exits 2.
 */
const scratch = mkdtempSync(join(tmpdir(), "ckpt-errors-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const input = join(scratch, "state_dict.pt");
copyFileSync(join(SAMPLES_DIR, "torch2", "state_dict.pt"), input);
const output = join(scratch, "out.pt");

const CASES: Array<[ReaderErrorCode, string, () => string[]]> = [
  [
    "not-a-run-directory",
    "a file where a run directory is expected",
    () => ["resume-plan", join(SAMPLES_DIR, "torch2", "training_checkpoint.pth")],
  ],
  [
    "output-is-input",
    "-o names the input",
    () => ["repair", input, "-o", input, "--set-counter", "iteration=1"],
  ],
  ...(["symlink", "hard link"] as const).map((kind): (typeof CASES)[number] => [
    "output-is-input",
    `-o is a ${kind} to the input`,
    () => {
      const link = join(scratch, `${kind.replace(" ", "")}.pt`);
      (kind === "symlink" ? symlinkSync : linkSync)(input, link);
      return ["repair", input, "-o", link, "--drop", "x"];
    },
  ]),
  ["output-required", "no -o", () => ["repair", input, "--set-counter", "iteration=1"]],
  ["no-edit-given", "no edit option", () => ["repair", input, "-o", output]],
  [
    "no-counter-in-name",
    "--counter-from-filename on a name without a counter",
    () => ["repair", input, "-o", output, "--counter-from-filename"],
  ],
  [
    "invalid-counter",
    "--set-counter without an integer",
    () => ["repair", input, "-o", output, "--set-counter", "iteration=abc"],
  ],
];

describe("distinct usage errors, distinct codes", () => {
  for (const [code, what, args] of CASES) {
    it(`${code}: ${what}`, async () => {
      const argv = args();
      const text = await ckpt(...argv);
      expect(text.code).toBe(2);
      expect(text.out).toBe("");
      const next = new ReaderError(code, "").nextStep;
      expect(text.err.trim()).toMatch(
        new RegExp(`\\[${code}\\]\\. Next: ${next.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`),
      );
      const json = await ckpt(...argv, "--json");
      expect(json.code).toBe(2);
      expect(JSON.parse(json.out)).toMatchObject({ schema: "ckpt.error/1", code, next });
    });
  }

  it("each of these codes has a next step of its own", () => {
    const codes = [...new Set(CASES.map(([code]) => code)), "not-a-file" as const];
    const steps = codes.map((code) => new ReaderError(code, "").nextStep);
    expect(new Set(steps).size).toBe(codes.length);
  });
});
