import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ckpt } from "./helpers/cli.js";
import { withoutSource } from "./helpers/remote.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Remote reads from Debian's nginx (`.ci/run` installs it), serving the samples as any static file server
 * would: every sample inspects as it does locally, and what ckpt says it moved is what nginx logged.
 */

const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));
const TORCH2 = join(SAMPLES_DIR, "torch2");
const work = mkdtempSync(join(tmpdir(), "ckpt-nginx-"));
const log = join(work, "access.log");
let nginx: ChildProcess | undefined;
let base = "";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("nginx did not start");
}

/** Requests and body bytes nginx logged since the log was last cleared. */
function logged(): { requests: number; bytes: number } {
  const lines = readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
  return { requests: lines.length, bytes: lines.reduce((sum, l) => sum + Number(l.split(" ")[1]), 0) };
}

beforeAll(async () => {
  if (!NGINX) return;
  const port = await freePort();
  mkdirSync(join(work, "logs"));
  writeFileSync(
    join(work, "nginx.conf"),
    `daemon off;
pid ${join(work, "nginx.pid")};
error_log ${join(work, "error.log")};
events { worker_connections 64; }
http {
  log_format counted '$status $body_bytes_sent "$http_range"';
  access_log ${log} counted;
  client_body_temp_path ${work};
  proxy_temp_path ${work};
  fastcgi_temp_path ${work};
  uwsgi_temp_path ${work};
  scgi_temp_path ${work};
  server {
    listen 127.0.0.1:${port};
    root ${SAMPLES_DIR};
    location / { }
  }
}
`,
  );
  nginx = spawn(NGINX, ["-p", work, "-c", join(work, "nginx.conf")], { stdio: "ignore" });
  await listening(port);
  base = `http://127.0.0.1:${port}`;
}, 30_000);
afterAll(() => {
  nginx?.kill();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  if (NGINX) writeFileSync(log, "");
});

const files = readdirSync(TORCH2).filter(
  (n) => !n.endsWith(".json") && !n.endsWith(".md") && statSync(join(TORCH2, n)).isFile(),
);

if (NGINX)
  describe("inspect from nginx", () => {
    it.each(files)("%s: the local report, and the transfer nginx logged", async (name) => {
      const local = await ckpt("inspect", join(TORCH2, name), "--json", "--all");
      const remote = await ckpt("inspect", `${base}/torch2/${name}`, "--json", "--all");
      expect(remote.code).toBe(local.code);
      expect(withoutSource(remote.out, base)).toEqual(withoutSource(local.out, SAMPLES_DIR));
      const report = JSON.parse(remote.out);
      // nginx writes a request's log line once it has sent the response, which can be after ckpt has read it:
      // wait for the log to catch up (a genuine mismatch still fails when the wait ends).
      if (report.schema === "ckpt.inspect/1" && report.format !== "pointer")
        await expect.poll(logged, { timeout: 2000, interval: 20 }).toEqual(report.transfer);
    });
  });
else it.skip("nginx is not installed (.ci/run installs Debian's nginx-light): nginx tests skipped", () => {});
