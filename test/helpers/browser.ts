import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";
import type { Requirement } from "./requires.js";

/** Debian's Chromium (`.ci/run` installs it; CKPT_CHROMIUM names another), driven by playwright-core. */
const CHROMIUM = process.env.CKPT_CHROMIUM ?? "/usr/bin/chromium";

export const chromiumRequirement: Requirement<string> = existsSync(CHROMIUM)
  ? { found: CHROMIUM }
  : {
      missing: `needs Chromium (nothing at ${CHROMIUM}; .ci/run installs Debian's chromium, CKPT_CHROMIUM names another)`,
    };

/** Headless, and quiet: nothing of Chromium's own (updates, sync) shows up among a page's requests. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
