import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { chromiumRequirement, launchChromium } from "./helpers/browser.js";
import { stateDictPickle } from "./helpers/pickleWriter.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { writeSparseCheckpoint } from "./helpers/sparse.js";

/**
 * The page (dist/web/index.html, built by `npm run build`) in Debian's Chromium, driven by playwright-core,
 * opened as a plain file: a sample torch wrote, a 6 GB checkpoint (the bench's torch-made one when it is
 * there, else a sparse one), 200,000 tensors, and a run directory. Any request other than the page's own
 * file and its worker's blob: URL fails the test. Screenshots go to test/artifacts/. Without Chromium this
 * suite says so in one line and does not run.
 */
const PAGE = join(import.meta.dirname, "..", "dist", "web", "index.html");
const BENCH_6G = join(import.meta.dirname, "..", "bench", ".work", "inputs", "big-6g.pt");
const BENCH_200K = join(import.meta.dirname, "..", "bench", ".work", "inputs", "tiny-200k.pt");
const artifacts = join(import.meta.dirname, "artifacts");

/**
 * Resident memory of the largest renderer process below this test process: the tab with the big file and its
 * worker, which run in one process (other renderers are Chromium's spare and pages already closed). RSS counts
 * shared pages too, so this overstates what the tab alone costs.
 */
function rendererMemoryBytes(): number {
  const parent = new Map<number, number>();
  const renderer = new Set<number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes("--type=renderer"))
        renderer.add(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  const mine = (pid: number): boolean => {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p))
      if (p === process.pid) return true;
    return false;
  };
  let largest = 0;
  for (const pid of renderer) {
    if (!mine(pid)) continue;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    largest = Math.max(largest, Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024);
  }
  return largest;
}

/** 200,000 one-element tensors viewing one storage, named as the bench names its torch-made file. */
function writeManyTensors(path: string, count: number): void {
  const fd = openSync(path, "w");
  try {
    const writer = new TorchZipWriter(fd, "many");
    const tensors = Array.from({ length: count }, (_, k) => ({
      name: `blocks.${k >> 2}.p${k % 4}`, // the names of bench/make_inputs.py tiny-200k
      storageClass: "FloatStorage",
      key: "0",
      numel: count,
      offset: k,
      shape: [1],
      stride: [1],
    }));
    writer.addRecord("data.pkl", stateDictPickle(tensors));
    writer.addRecord("data/0", new Uint8Array(count * 4));
    writer.addRecord("version", new TextEncoder().encode("3\n"));
    writer.finish();
  } finally {
    closeSync(fd);
  }
}

describeWith(chromiumRequirement, "the page in Chromium", (executablePath) => {
  let browser: Browser;
  let dir: string;
  const foreign: string[] = [];

  beforeAll(async () => {
    if (!existsSync(PAGE)) throw new Error(`${PAGE} is missing: npm run build writes it`);
    mkdirSync(artifacts, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), "ckpt-page-"));
    browser = await launchChromium(executablePath);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    // Nothing leaves the machine: the page's file and its worker's blob: URL are the only requests.
    expect(foreign).toEqual([]);
  });

  async function open(width = 1280): Promise<Page> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on("request", (r) => {
      if (!r.url().startsWith("file:") && !r.url().startsWith("blob:null/")) foreign.push(r.url());
    });
    await page.goto(`file://${PAGE}`);
    return page;
  }

  /** Gives the file input a file; resolves when the page shows its report, with the time that took. */
  async function openFile(page: Page, path: string, timeout = 30_000): Promise<number> {
    const started = Date.now();
    await page.setInputFiles("#file", path);
    // Selectors, not functions: the page's CSP forbids the eval that playwright's string predicates use.
    await page.waitForSelector('body[data-state="file"], body[data-state="error"]', { timeout });
    expect(await page.locator("body").getAttribute("data-state")).toBe("file");
    return Date.now() - started;
  }

  it("a sample: format, tensor count, verdicts, globals, a row, and a sha256 from the worker", async () => {
    const sample = join(SAMPLES_DIR, "torch2", "model_optimizer_step.pt");
    const truth = JSON.parse(readFileSync(`${sample}.truth.json`, "utf8")) as {
      tensors: Array<{ path: string[]; sha256: string }>;
    };
    const page = await open();
    await openFile(page, sample);
    expect(await page.locator(".format").textContent()).toMatch(/^torch-zip: torch\.save/);
    expect(await page.locator(".tensor-count").getAttribute("data-count")).toBe(String(truth.tensors.length));
    expect(await page.locator(".verdict").getAttribute("data-verdict")).toBe("resumable");
    expect(await page.locator(".security").getAttribute("data-verdict")).toBe("clean");
    expect(await page.locator("table.globals tbody tr").count()).toBe(3);
    const row = page.locator('.rows .row[data-index="0"]');
    expect(await row.textContent()).toContain("model.fc1.weight");
    expect(await row.textContent()).toContain("[20, 10]");
    await row.locator("button.hash").click();
    await page.waitForSelector('.rows .row[data-index="0"] code.sha256');
    expect(await row.locator("code.sha256").textContent()).toBe(truth.tensors[0]?.sha256);
    // The strict CSP (playwright's own evaluation bypasses it, so it is read, not provoked).
    const csp =
      (await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute("content")) ?? "";
    expect(csp).toMatch(/^default-src 'none'; script-src 'sha256-[^']+'; /);
    expect(csp).toContain("connect-src 'none'");
    expect(csp).not.toContain("unsafe");
    await page.screenshot({ path: join(artifacts, "page-sample.png"), fullPage: true });
    await page.close();
  }, 60_000);

  it("a 6 GB checkpoint opens in under 2 s, reading KiB by slices, the tab under 300 MB", async () => {
    const big = existsSync(BENCH_6G) ? BENCH_6G : writeSparseCheckpoint(dir, "big-6g", 1610612736);
    const page = await open();
    const ms = await openFile(page, big);
    const read = page.locator(".read");
    const bytes = Number(await read.getAttribute("data-bytes"));
    const memory = rendererMemoryBytes();
    await page.screenshot({ path: join(artifacts, "page-6gb.png"), fullPage: false });
    console.log(
      `page: ${big} opened in ${ms} ms, ${bytes} bytes read in ${await read.getAttribute("data-reads")} slices, renderer ${(memory / 2 ** 20).toFixed(0)} MiB`,
    );
    expect(ms).toBeLessThan(2000);
    expect(bytes).toBeLessThan(64 * 1024);
    expect(memory).toBeGreaterThan(0);
    expect(memory).toBeLessThan(300 * 2 ** 20);
    await page.close();
  }, 60_000);

  it("200,000 tensors: the table keeps a few dozen rows in the DOM, scrolls to the last, filters and sorts", async () => {
    // The bench's torch-made file when it is there; writing one takes ~20 s more on a busy machine.
    const path = existsSync(BENCH_200K) ? BENCH_200K : join(dir, "many.pt");
    if (path !== BENCH_200K) writeManyTensors(path, 200_000);
    const page = await open();
    await openFile(page, path, 240_000);
    expect(await page.locator(".tensors .count").textContent()).toBe("200000 tensors");
    const rows = page.locator(".rows .row");
    expect(await rows.count()).toBeLessThan(100);
    await page.locator(".rows").evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await page.waitForSelector('.rows .row[data-index="199999"]');
    expect(await page.locator('.rows .row[data-index="199999"] .key').textContent()).toBe("blocks.49999.p3");
    expect(await rows.count()).toBeLessThan(100);
    await page.fill(".filter", "blocks.4999*.p0");
    await page.locator(".tensors .count", { hasText: /^11 of 200000/ }).waitFor();
    await page.click('[data-sort="key"]');
    await page.click('[data-sort="key"]'); // descending
    await page.locator(".rows").evaluate((el) => {
      el.scrollTop = 0;
    });
    expect(await page.locator(".rows .row .key").first().textContent()).toBe("blocks.49999.p0");
    await page.screenshot({ path: join(artifacts, "page-200k.png"), fullPage: false });
    await page.close();
  }, 300_000);

  it("a run directory: the audit's verdict, the timeline with pointer and choice, the fix, resume-plan", async () => {
    const run = join(SAMPLES_DIR, "outputs", "fvcore_truncated_newest");
    const page = await open();
    await page.setInputFiles("#folder", run);
    await page.waitForSelector('body[data-state="folder"]', { timeout: 60_000 });
    expect(await page.locator(".summary").textContent()).toMatch(/^1 run: 1 resumable/);
    const card = page.locator('.run[data-run="fvcore_truncated_newest"]');
    expect(await card.getAttribute("data-verdict")).toBe("resumable");
    const newest = card.locator('g[data-file="model_0000019.pth"]');
    expect(await newest.getAttribute("data-status")).toBe("truncated");
    expect(await newest.locator(".pointer-mark").count()).toBe(1);
    expect(await card.locator('g[data-file="model_0000009.pth"] circle[stroke]').count()).toBe(1);
    expect(await card.locator(".fix code").textContent()).toBe(
      "ckpt resume-plan --write fvcore_truncated_newest",
    );
    expect(await card.locator(".plan pre").textContent()).toContain("Resume from model_0000009.pth");
    await page.screenshot({ path: join(artifacts, "page-run.png"), fullPage: true });
    // A file of the folder opens on a click, judged with its neighbours.
    await page.click('button[data-path="model_0000009.pth"]');
    await page.waitForSelector('body[data-state="file"]');
    expect(await page.locator(".verdict").getAttribute("data-verdict")).toBe("resumable");
    await page.close();
  }, 90_000);
});
