#!/usr/bin/env node
// Issue 16's benchmark: `ckpt inspect --hash --json` of the 6.4 GB checkpoint from Debian's nginx on loopback
// against the same command on the local file, alternating runs, medians; target: remote at no less than 90%
// of local speed. Also `curl` fetching the whole file from the same server (what moving the bytes costs on
// its own), and the requests and bytes `inspect` and `scan` report for the remote file (target: at most 4
// requests, under 256 KiB). nginx is configured as a static file server in production would be (sendfile,
// one worker per core); the input is made with real torch (bench/make_inputs.py) and kept.
//
//   npm run build && node bench/remote.mjs [runs=3]
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));
const inputs = join(here, ".work", "inputs");
const file = join(inputs, "big-6g.pt");
const TORCH2 = process.env.TORCH2_PYTHON ?? "/opt/torch2/bin/python";
const CKPT = join(here, "..", "bin", "ckpt.js");
const NGINX = ["/usr/sbin/nginx", "/usr/bin/nginx"].find((p) => existsSync(p));
const runs = Number(process.argv[2] ?? 3);
if (!NGINX) throw new Error("needs nginx (.ci/run installs Debian's nginx-light)");
mkdirSync(inputs, { recursive: true });
if (!existsSync(file))
  execFileSync(TORCH2, [join(here, "make_inputs.py"), "big-6g", file], { stdio: "inherit" });

const port = 18000 + (process.pid % 1000);
const work = mkdtempSync(join(tmpdir(), "ckpt-bench-nginx-"));
writeFileSync(
  join(work, "nginx.conf"),
  `daemon off;
worker_processes auto;
pid ${join(work, "nginx.pid")};
error_log ${join(work, "error.log")};
events { worker_connections 64; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path ${work};
  proxy_temp_path ${work};
  fastcgi_temp_path ${work};
  uwsgi_temp_path ${work};
  scgi_temp_path ${work};
  server { listen 127.0.0.1:${port}; root ${inputs}; location / { } }
}
`,
);
const nginx = spawn(NGINX, ["-p", work, "-c", join(work, "nginx.conf")], { stdio: "ignore" });
const url = `http://127.0.0.1:${port}/big-6g.pt`;
try {
  await listening(port);
  /** Wall seconds of one command, its output dropped. */
  const timed = (command, args) => {
    const start = process.hrtime.bigint();
    const run = spawnSync(command, args, { stdio: ["ignore", "ignore", "pipe"], maxBuffer: 1 << 26 });
    if (run.status !== 0) throw new Error(`${command} ${args.join(" ")}: exit ${run.status} ${run.stderr}`);
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const cases = [
    ["inspect --hash, local file", "node", [CKPT, "inspect", "--hash", "--json", file]],
    ["inspect --hash, from nginx", "node", [CKPT, "inspect", "--hash", "--json", url]],
    ["curl the whole file from nginx", "curl", ["-sf", "-o", "/dev/null", url]],
  ];
  const times = cases.map(() => []);
  for (let i = 0; i < runs; i++)
    for (const [k, [, cmd, args]] of cases.entries()) times[k].push(timed(cmd, args));
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const gb = statSync(file).size / 1e9;
  console.log(`${(gb * 1000).toFixed(0)} MB checkpoint, ${runs} alternating runs, medians, warm page cache`);
  console.log("| case | median s | GB/s | all runs |\n| --- | ---: | ---: | --- |");
  for (const [k, [name]] of cases.entries()) {
    const m = median(times[k]);
    console.log(
      `| ${name} | ${m.toFixed(2)} | ${(gb / m).toFixed(2)} | ${times[k].map((t) => t.toFixed(2)).join(" ")} |`,
    );
  }
  console.log(
    `remote speed / local speed, --hash: ${(median(times[0]) / median(times[1])).toFixed(2)} (target >= 0.90)`,
  );
  for (const command of ["inspect", "scan"]) {
    const report = JSON.parse(execFileSync("node", [CKPT, command, "--json", url], { maxBuffer: 1 << 26 }));
    const t = report.transfer ?? report[0]?.transfer;
    console.log(`${command} from nginx: ${t?.requests} requests, ${t?.bytes} bytes (target <= 4, < 262144)`);
  }
} finally {
  nginx.kill();
  rmSync(work, { recursive: true, force: true });
}

async function listening(port) {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = createConnection(port, "127.0.0.1", () => resolve(socket.end() && true));
      socket.on("error", () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nginx did not listen on ${port}: ${readFileSync(join(work, "error.log"), "utf8")}`);
}
