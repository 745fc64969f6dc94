import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * The HTML report in a real browser (Debian's Chromium, driven by playwright-core): what a person sees. The
 * screenshot is kept in test/artifacts/. `.ci/run` installs Chromium; without it this suite does not run.
 */
const CHROMIUM = process.env.CKPT_CHROMIUM ?? "/usr/bin/chromium";
const artifacts = join(import.meta.dirname, "artifacts");

describe.runIf(existsSync(CHROMIUM))("the audit HTML report in Chromium", () => {
  it("shows every run, its verdict, and a timeline with the pointer and the choice marked", async () => {
    mkdirSync(artifacts, { recursive: true });
    const html = join(artifacts, "audit-report.html");
    await ckpt("audit", join(SAMPLES_DIR, "outputs"), "--html", html);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const requests: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith("file:")) requests.push(r.url());
      });
      await page.goto(`file://${html}`);
      expect(await page.locator("h1").textContent()).toBe("ckpt audit");
      expect(await page.locator("tr.run").count()).toBe(30);
      expect(await page.locator(".summary").textContent()).toMatch(/^30 runs: 27 resumable, 1 weights-only/);

      const trackron = page.locator("tr.run", { hasText: "trackron_model_only" });
      expect(await trackron.locator(".verdict").textContent()).toBe("weights-only");
      const color = await trackron
        .locator(".verdict")
        .evaluate(
          (el) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { color: string } }).getComputedStyle(
              el,
            ).color,
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
      expect(await page.locator("svg.timeline").count()).toBe(29);

      await page.screenshot({ path: join(artifacts, "audit-report.png"), fullPage: true });
      expect(requests).toEqual([]); // self-contained: nothing fetched
    } finally {
      await browser.close();
    }
  });
});
