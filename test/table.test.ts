import { describe, expect, it } from "vitest";
import { displayWidth, elide, renderTable, tableLayoutFor } from "../src/cli/render/table.js";

/** The one table layout every command uses: fitting, eliding, dropping, and the plain form for pipes. */

const COLUMNS = [
  { header: "path", elide: "middle" as const, minWidth: 12 },
  { header: "kind" },
  { header: "note", elide: "end" as const, drop: 1 },
  { header: "extra", drop: 2 },
];
const ROWS = [
  ["lightning_logs/version_0/checkpoints/last.ckpt", "ckpt", "the newest checkpoint, chosen", "x"],
  ["a.pt", "", "short", "yy"],
];

describe("elide", () => {
  it("keeps both ends of a path (the file name gets the odd column) or the start of prose", () => {
    expect(elide("lightning_logs/version_0/checkpoints/last.ckpt", 20, "middle")).toBe(
      "lightning…/last.ckpt",
    );
    expect(elide("the pointer names a truncated file", 12, "end")).toBe("the pointer…");
    expect(elide("short", 12, "end")).toBe("short");
    expect(displayWidth(elide("x".repeat(50), 7, "middle"))).toBe(7);
  });
});

describe("renderTable", () => {
  it("off a terminal: plain columns aligned with spaces, upper-case headers, '-' for empty cells", () => {
    const lines = renderTable(COLUMNS, ROWS, { width: undefined, boxed: false }).split("\n");
    expect(lines[0]).toBe(
      "PATH                                            KIND  NOTE                           EXTRA",
    );
    expect(lines[2]).toBe(
      "a.pt                                            -     short                          yy",
    );
    expect(lines.join("\n")).not.toMatch(/[│┌├└─]/);
    expect(lines[1]).toBe(
      "lightning_logs/version_0/checkpoints/last.ckpt  ckpt  the newest checkpoint, chosen  x",
    );
  });

  it("on a terminal: boxed, every line within the width; columns drop by priority, then cells shorten", () => {
    for (const width of [80, 60, 40, 30]) {
      const text = renderTable(COLUMNS, ROWS, { width, boxed: true });
      for (const line of text.split("\n"))
        expect(displayWidth(line), `${width}: ${line}`).toBeLessThanOrEqual(width);
    }
    const at40 = renderTable(COLUMNS, ROWS, { width: 40, boxed: true });
    expect(at40).not.toContain("extra"); // drop 2 goes first
    expect(at40).toContain("note");
    expect(at40).toMatch(/│ li…\/last\.ckpt │/); // the file name whole, the rest of the path cut
    const at30 = renderTable(COLUMNS, ROWS, { width: 30, boxed: true });
    expect(at30).not.toContain("note");
    expect(at30.split("\n")[0]).toMatch(/^┌─+┬─+┐$/);
  });

  it("colour does not count towards width and is applied after shortening", () => {
    const red = (t: string) => `\u001b[31m${t}\u001b[39m`;
    const text = renderTable(
      [{ header: "a", elide: "end", minWidth: 5 }],
      [[{ text: "abcdefghijkl", paint: red }]],
      { width: 10, boxed: true },
    );
    expect(text).toContain(`│ ${red("abcde…")} │`);
  });
});

describe("tableLayoutFor", () => {
  it("COLUMNS wins, then the terminal's width; a pipe gets plain columns and no limit unless COLUMNS says", () => {
    expect(tableLayoutFor({ isTTY: true, columns: 120 }, { COLUMNS: "100" })).toEqual({
      width: 100,
      boxed: true,
    });
    expect(tableLayoutFor({ isTTY: true, columns: 120 }, {})).toEqual({ width: 120, boxed: true });
    expect(tableLayoutFor({ isTTY: false }, {})).toEqual({ width: undefined, boxed: false });
    expect(tableLayoutFor({}, { COLUMNS: "72" })).toEqual({ width: 72, boxed: false });
    expect(tableLayoutFor({ isTTY: true, columns: 90 }, { COLUMNS: "abc" })).toEqual({
      width: 90,
      boxed: true,
    });
  });
});
