import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";

/** `ckpt scan` for people: every file's block, then a summary as picklescan prints one; --quiet. */
const security = join(import.meta.dirname, "fixtures", "security");

interface Scanned {
  schema: string;
  file: string;
  verdict?: string;
  globals?: Array<{ module: string; name: string; class: string }>;
  findings?: unknown[];
}

async function scanned(): Promise<Scanned[]> {
  return JSON.parse((await ckpt("scan", security, "--json")).out) as Scanned[];
}

function summaryOf(out: string): string[] {
  return out.slice(out.indexOf("----------- SCAN SUMMARY -----------")).trimEnd().split("\n");
}

describe("ckpt scan's summary", () => {
  it("counts files scanned, dangerous, unknown and unreadable or inconclusive, and names the dangerous globals", async () => {
    const reports = await scanned();
    const count = (verdict: string) => reports.filter((r) => r.verdict === verdict).length;
    const unreadable = reports.filter((r) => r.schema === "ckpt.error/1").length;
    const dangerous = [
      ...new Set(
        reports.flatMap((r) =>
          (r.globals ?? []).filter((g) => g.class === "dangerous").map((g) => `${g.module}.${g.name}`),
        ),
      ),
    ].sort();
    const { code, out } = await ckpt("scan", security);
    expect(code).toBe(2);
    expect(summaryOf(out)).toEqual([
      "----------- SCAN SUMMARY -----------",
      `Scanned files: ${reports.length}`,
      `Dangerous files: ${count("dangerous")}`,
      `Unknown files: ${count("unknown")}`,
      `Unreadable or inconclusive files: ${unreadable + count("inconclusive")}`,
      `Dangerous globals: ${dangerous.length} (${dangerous.join(", ")})`,
    ]);
    expect(count("dangerous")).toBeGreaterThan(10);
    expect(dangerous).toContain("os.system");
    expect(out.trimEnd().split("\n").at(-1)).toMatch(/^Dangerous globals: /); // the summary closes the output
  });

  it("a clean file still gets its summary: 0 of everything", async () => {
    const { code, out } = await ckpt(
      "scan",
      join(import.meta.dirname, "..", "samples", "torch2", "state_dict.pt"),
    );
    expect(code).toBe(0);
    expect(summaryOf(out)).toEqual([
      "----------- SCAN SUMMARY -----------",
      "Scanned files: 1",
      "Dangerous files: 0",
      "Unknown files: 0",
      "Unreadable or inconclusive files: 0",
      "Dangerous globals: 0",
    ]);
  });

  it("--quiet prints only the files with findings, and the summary", async () => {
    const reports = (await scanned()).filter((r) => r.schema !== "ckpt.error/1");
    const noisy = reports.filter(
      (r) => (r.findings ?? []).length > 0 || (r.verdict !== "clean" && r.verdict !== "framework"),
    );
    const quiet = (await ckpt("scan", security, "--quiet")).out;
    const loud = (await ckpt("scan", security)).out;
    const headers = (out: string) => out.split("\n").filter((l) => l.startsWith(`${security}/`));
    expect(headers(loud)).toHaveLength(reports.length);
    expect(headers(quiet)).toHaveLength(noisy.length);
    expect(noisy.length).toBeLessThan(reports.length);
    expect(summaryOf(quiet)).toEqual(summaryOf(loud));
  });

  it("--json stays ckpt.scan/1: no summary in it", async () => {
    const { out } = await ckpt("scan", security, "--json");
    expect(out).not.toContain("SCAN SUMMARY");
    expect(Array.isArray(JSON.parse(out))).toBe(true);
  });
});
