import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { chromiumRequirement, launchChromium } from "./helpers/browser.js";
import { ckpt } from "./helpers/cli.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * The HTML report in a real browser (Debian's Chromium, driven by playwright-core): what a person sees, at
 * a laptop's 1,280 px and a narrow 800 px window. Screenshots are kept in test/artifacts/. `.ci/run`
 * installs Chromium; without it this suite says so in one line and does not run.
 */
const artifacts = join(import.meta.dirname, "artifacts");
/** Every sample run, counted from the truths rather than from ckpt (a directory of notes is none). */
const runCount = readdirSync(join(SAMPLES_DIR, "runs-truth"))
  .filter((n) => n.endsWith(".json"))
  .filter(
    (n) => !readFileSync(join(SAMPLES_DIR, "runs-truth", n), "utf8").includes('"convention": "none"'),
  ).length;

interface Report {
  runs: Array<{ candidates: Array<{ counter: number | null }> }>;
  summary: { resumable: number };
}

/** What the page measures of itself; typed here because the test's lib has no DOM. */
interface Measured {
  scrollWidth: number;
  innerWidth: number;
  timelineWidth: number;
  untitledPaths: number;
}

const MEASURE = `(() => {
  const svg = document.querySelector("svg.timeline");
  const paths = [...document.querySelectorAll(".path")];
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    timelineWidth: svg ? svg.getBoundingClientRect().width : 0,
    untitledPaths: paths.filter((p) => p.getAttribute("title") !== p.textContent).length,
  };
})()`;

describeWith(chromiumRequirement, "the audit HTML report in Chromium", (executablePath) => {
  const html = join(artifacts, "audit-report.html");
  let browser: Browser;
  let report: Report;
  let stderr: string;

  beforeAll(async () => {
    mkdirSync(artifacts, { recursive: true });
    const run = await ckpt("audit", join(SAMPLES_DIR, "outputs"), "--html", html, "--json");
    report = JSON.parse(run.out) as Report; // stdout stays the JSON asked for
    stderr = run.err;
    browser = await launchChromium(executablePath);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  async function open(width: number): Promise<{ page: Page; requests: string[] }> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const requests: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith("file:")) requests.push(r.url());
    });
    await page.goto(`file://${html}`);
    return { page, requests };
  }

  it("--html says where it wrote the report, on stderr", () => {
    expect(stderr).toBe(`ckpt audit: wrote ${html}\n`);
  });

  it("shows every run, its verdict, and a timeline with the pointer and the choice marked", async () => {
    const { page, requests } = await open(1280);
    expect(await page.locator("h1").textContent()).toBe("ckpt audit");
    expect(report.runs.length).toBe(runCount);
    expect(await page.locator("tr.run").count()).toBe(runCount);
    expect(await page.locator(".summary").textContent()).toMatch(
      new RegExp(`^${report.runs.length} runs: ${report.summary.resumable} resumable, 1 weights-only`),
    );

    const trackron = page.locator("tr.run", { hasText: "trackron_model_only" });
    expect(await trackron.locator(".verdict").textContent()).toBe("weights-only");
    const color = await trackron
      .locator(".verdict")
      .evaluate(
        (el) =>
          (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(el)
            .color,
      );
    expect(color).toBe("rgb(198, 40, 40)");

    // fvcore_truncated_newest: the pointer marks the truncated newest file, the plan rings the older one.
    const timeline = page
      .locator("tr.run", { hasText: "fvcore_truncated_newest" })
      .locator("xpath=following-sibling::tr[1]");
    const newest = timeline.locator('g[data-file="model_0000019.pth"]');
    expect(await newest.getAttribute("data-status")).toBe("truncated");
    expect(await newest.locator(".pointer-mark").count()).toBe(1);
    expect(await timeline.locator('g[data-file="model_0000009.pth"] circle[stroke]').count()).toBe(1);
    expect(await timeline.locator(".fix code").textContent()).toMatch(
      /^ckpt resume-plan --write \S+fvcore_truncated_newest$/,
    );
    const withCounters = report.runs.filter((r) => r.candidates.some((c) => c.counter !== null));
    expect(await page.locator("svg.timeline").count()).toBe(withCounters.length);
    expect(requests).toEqual([]); // self-contained: nothing fetched
    await page.close();
  });

  const timelineWidths: number[] = [];
  for (const width of [1280, 800]) {
    it(`fits a ${width} px window: no horizontal scrolling, whole paths on hover, the timeline scaled`, async () => {
      const { page } = await open(width);
      const measured = (await page.evaluate(MEASURE)) as Measured;
      await page.screenshot({ path: join(artifacts, `audit-report-${width}.png`), fullPage: true });
      expect(measured.scrollWidth).toBeLessThanOrEqual(measured.innerWidth);
      expect(measured.untitledPaths).toBe(0);
      expect(measured.timelineWidth).toBeGreaterThan(0);
      timelineWidths.push(measured.timelineWidth);
      await page.close();
    });
  }

  it("the timeline is narrower in the narrower window", () => {
    expect(timelineWidths).toHaveLength(2);
    expect(timelineWidths[1]).toBeLessThan(timelineWidths[0] as number);
  });
});
