import { readFileSync, statSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runView } from "../src/cli/commands/view.js";
import { PLAIN } from "../src/cli/style.js";
import { parseRange } from "../src/cli/view/server.js";
import { chromiumRequirement, launchChromium } from "./helpers/browser.js";
import { ckpt } from "./helpers/cli.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * `ckpt view PATH`: the page and PATH's files on 127.0.0.1, read by range requests; only listed files, only
 * for this server's Host. Run in-process, stopped through `until` instead of Ctrl-C.
 */
const run = join(SAMPLES_DIR, "outputs", "fvcore_truncated_newest");
const sample = join(SAMPLES_DIR, "torch2", "model_optimizer_step.pt");

interface Viewing {
  readonly url: string;
  readonly out: string;
  stop(): Promise<number>;
}

async function view(path: string): Promise<Viewing> {
  let out = "";
  let stop: () => void = () => {};
  const until = new Promise<void>((done) => {
    stop = done;
  });
  const print = (text: string) => {
    out += text;
  };
  const io = { out: print, err: print, style: PLAIN };
  const code = runView(path, { port: 0, open: false, until }, io);
  for (let i = 0; i < 200 && !out; i++) await new Promise((r) => setTimeout(r, 10));
  const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0] ?? "";
  return {
    url,
    out,
    stop: () => {
      stop();
      return code;
    },
  };
}

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((done, fail) => {
    const req = request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on("error", fail);
    req.end();
  });
}

describe("ckpt view: the server", () => {
  let served: Viewing;
  beforeAll(async () => {
    served = await view(run);
  });
  afterAll(async () => {
    expect(await served.stop()).toBe(0);
  });

  it("prints the URL, on 127.0.0.1, and how to stop", () => {
    expect(served.out).toMatch(
      /^ckpt view: http:\/\/127\.0\.0\.1:\d+\/ serves \S+fvcore_truncated_newest \(5 files\) to this machine only; Ctrl-C stops\n$/,
    );
  });

  it("serves the page marked to read what it serves, allowed to reach its own origin only", async () => {
    const page = (await get(served.url)).body.toString();
    expect(page).toContain('<meta name="ckpt-view" content="/ckpt-view.json">');
    expect(page).toContain("connect-src 'self'");
    const listing = JSON.parse((await get(`${served.url}ckpt-view.json`)).body.toString());
    expect(listing.kind).toBe("directory");
    expect(listing.files.map((f: { path: string }) => f.path)).toEqual([
      "config.yaml",
      "last_checkpoint",
      "log.txt",
      "model_0000009.pth",
      "model_0000019.pth",
    ]);
  });

  it("answers ranges of listed files, nothing else, and only for its own Host", async () => {
    const file = join(run, "model_0000009.pth");
    const bytes = readFileSync(file);
    const url = `${served.url}files/model_0000009.pth`;
    const part = await get(url, { Range: "bytes=10-29" });
    expect(part.status).toBe(206);
    expect(part.body).toEqual(bytes.subarray(10, 30));
    expect((await get(url)).status).toBe(416);
    expect((await get(url, { Range: `bytes=0-${statSync(file).size}` })).status).toBe(416);
    expect(
      (await get(`${served.url}files/..%2F..%2Ftorch2%2Flegacy.pt`, { Range: "bytes=0-1" })).status,
    ).toBe(404);
    expect((await get(url, { Range: "bytes=0-1", Host: "evil.example:80" })).status).toBe(421);
  });

  it("parses one closed range, and refuses others", () => {
    expect(parseRange("bytes=0-9", 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange("bytes=0-10", 10)).toBeUndefined();
    expect(parseRange("bytes=5-", 10)).toBeUndefined();
    expect(parseRange("bytes=0-1,3-4", 10)).toBeUndefined();
  });

  it("a missing path is exit 2 with its code and what to do", async () => {
    const result = await ckpt("view", join(SAMPLES_DIR, "nope"), "--no-open");
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/nope: no such file or directory \[file-not-found\]/);
  });
});

describeWith(chromiumRequirement, "ckpt view in Chromium", (executablePath) => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium(executablePath);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
  });

  for (const [what, path, state] of [
    ["a file", sample, "file"],
    ["a run directory", run, "folder"],
  ] as const) {
    it(`the page shows ${what} it serves, read by ranges from its own origin only`, async () => {
      const served = await view(path);
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on("request", (r) => requests.push(r.url()));
      await page.goto(served.url);
      await page.waitForSelector(`body[data-state="${state}"], body[data-state="error"]`, {
        timeout: 30_000,
      });
      expect(await page.locator("body").getAttribute("data-state")).toBe(state);
      if (state === "file") {
        expect(await page.locator(".tensor-count").getAttribute("data-count")).toBe("8");
      } else {
        expect(
          await page.locator('.run[data-run="fvcore_truncated_newest"]').getAttribute("data-verdict"),
        ).toBe("resumable");
      }
      const foreign = requests.filter((u) => !u.startsWith(served.url) && !u.startsWith("blob:"));
      expect(foreign).toEqual([]);
      expect(requests.filter((u) => u.includes("/files/")).length).toBeGreaterThan(0);
      await page.close();
      expect(await served.stop()).toBe(0);
    }, 60_000);
  }
});
