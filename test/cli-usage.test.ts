import { describe, expect, it } from "vitest";
import { VERSION } from "../src/cli/version.js";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/** The CLI's own surface: version flags, option values, and what every --help ends with. */

describe("ckpt's usage surface", () => {
  it("-v prints the version, as --version does", async () => {
    for (const flag of ["-v", "--version"]) {
      const { code, out } = await ckpt(flag);
      expect(code).toBe(0);
      expect(out).toBe(`${VERSION}\n`);
    }
  });

  for (const value of ["0", "abc", "-1", "1.5", ""]) {
    it(`--jobs ${JSON.stringify(value)} is a usage error (exit 2, a clear message)`, async () => {
      const { code, out, err } = await ckpt("audit", `${SAMPLES_DIR}/outputs`, "--jobs", value);
      expect(code).toBe(2);
      expect(out).toBe("");
      expect(err).toContain("--jobs");
      expect(err).toContain("expected a whole number of 1 or more");
    });
  }

  for (const command of [[], ["inspect"], ["diff"], ["resume-plan"], ["audit"], ["scan"], ["repair"]]) {
    it(`ckpt ${command.join(" ") || "(no command)"} --help: no "(default: false)", ends with examples and exit codes`, async () => {
      const { code, out } = await ckpt(...command, "--help");
      expect(code).toBe(0);
      expect(out).not.toMatch(/\(default: (false|\[\])\)/);
      const tail = out
        .slice(out.lastIndexOf("\nExamples:\n") + 1)
        .trimEnd()
        .split("\n");
      expect(tail[0]).toBe("Examples:");
      const examples = tail.slice(1, tail.indexOf(""));
      expect(examples.length).toBeGreaterThanOrEqual(2);
      expect(examples.length).toBeLessThanOrEqual(3);
      for (const e of examples) expect(e).toMatch(/^ {2}\$ ckpt /);
      const codes = tail.slice(tail.indexOf("Exit codes:") + 1);
      expect(tail.indexOf("Exit codes:")).toBe(examples.length + 2);
      expect(codes.map((line) => line.trim().split(" ")[0])).toEqual(["0", "1", "2", "3"]);
    });
  }
});
