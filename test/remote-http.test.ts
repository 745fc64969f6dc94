import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Validator } from "../src/reader/remote/protocol.js";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { type RangeServer, startRangeServer } from "./helpers/rangeServer.js";
import { withoutSource } from "./helpers/remote.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * Remote reads over plain HTTP against Node's own server in a child process: every sample inspected remotely
 * says what it says locally, what it moved is what the server counted, and each way a server can fail gets
 * its own code and exit 2.
 */

const TORCH2 = join(SAMPLES_DIR, "torch2");
/** The server's root: the samples (by a link), and a 3 MiB safetensors file, larger than one first read. */
const root = mkdtempSync(join(tmpdir(), "ckpt-remote-http-"));
const BIG = "big.safetensors";
let server: RangeServer;

function writeBigSafetensors(path: string): void {
  const elements = 768 * 1024;
  const header = JSON.stringify({ w: { dtype: "F32", shape: [elements], data_offsets: [0, elements * 4] } });
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  const data = Buffer.alloc(elements * 4);
  for (let i = 0; i < elements; i++) data.writeFloatLE(i % 251, i * 4);
  writeFileSync(path, Buffer.concat([length, Buffer.from(header), data]));
}

beforeAll(async () => {
  symlinkSync(TORCH2, join(root, "torch2"));
  writeBigSafetensors(join(root, BIG));
  server = await startRangeServer(root);
});
afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});
beforeEach(async () => {
  await server.reset();
});

const files = readdirSync(TORCH2).filter(
  (n) => !n.endsWith(".json") && !n.endsWith(".md") && statSync(join(TORCH2, n)).isFile(),
);

describe("inspect over HTTP", () => {
  it.each(files)(
    "%s: the same report as the local file, and the transfer the server counted",
    async (name) => {
      const local = await ckpt("inspect", join(TORCH2, name), "--json", "--all");
      const remote = await ckpt("inspect", `${server.url}/torch2/${name}`, "--json", "--all");
      expect(remote.code).toBe(local.code);
      expect(withoutSource(remote.out, server.url)).toEqual(withoutSource(local.out, SAMPLES_DIR));
      const served = await server.served();
      const report = JSON.parse(remote.out);
      if (report.schema === "ckpt.inspect/1") {
        // A pointer's target is probed too: those requests are the pointer's, not the file's.
        if (report.format !== "pointer")
          expect(report.transfer).toEqual({ requests: served.requests, bytes: served.bytes });
        // At most the file, and the short 404 answers to probes for the files its framework saves beside it.
        const probes = served.log.filter((l) => l.status === 404).length;
        expect(report.transfer.bytes).toBeLessThanOrEqual(statSync(join(TORCH2, name)).size + probes * 64);
      }
    },
  );

  it("--hash and --stats read tensor data remotely and agree with the local file", async () => {
    const name = "adamw_known_size.pt";
    const local = await ckpt("inspect", join(TORCH2, name), "--json", "--hash", "--stats");
    const remote = await ckpt("inspect", `${server.url}/torch2/${name}`, "--json", "--hash", "--stats");
    expect(remote.code).toBe(local.code);
    expect(withoutSource(remote.out, server.url)).toEqual(withoutSource(local.out, SAMPLES_DIR));
    expect(
      JSON.parse(remote.out).tensors.every((t: { sha256?: string }) => /^[0-9a-f]{64}$/.test(t.sha256 ?? "")),
    );
  });

  it("the built CLI hashes on its digest workers and counts their requests", async () => {
    const name = "adamw_known_size.pt";
    const local = ckptBinary(["inspect", join(TORCH2, name), "--json", "--hash"]);
    const remote = ckptBinary(["inspect", `${server.url}/torch2/${name}`, "--json", "--hash"]);
    expect(remote.status).toBe(local.status);
    expect(withoutSource(remote.stdout, server.url)).toEqual(withoutSource(local.stdout, SAMPLES_DIR));
    const served = await server.served();
    expect(JSON.parse(remote.stdout).transfer).toEqual({ requests: served.requests, bytes: served.bytes });
  });

  it("text output says what was transferred in one line", async () => {
    const result = await ckpt("inspect", `${server.url}/torch2/model_only.pth`);
    const served = await server.served();
    const lines = result.out.trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(new RegExp(`^transferred: ${served.requests} requests?, `));
    expect(lines.filter((l) => l.startsWith("transferred:"))).toHaveLength(1);
  });

  it("a small checkpoint is read with one request", async () => {
    const result = await ckpt("inspect", `${server.url}/torch2/model_only.pth`, "--json");
    expect(result.code).toBe(0);
    const served = await server.served();
    expect(served.requests).toBe(1);
    expect(served.log[0]?.range).toBe("bytes=0-65535");
  });
});

describe("scan and convert over HTTP", () => {
  it.each(files)("scan --deep %s: the same verdict and findings as the local file", async (name) => {
    const local = await ckpt("scan", join(TORCH2, name), "--json");
    const remote = await ckpt("scan", `${server.url}/torch2/${name}`, "--json", "--deep");
    expect(remote.code).toBe(local.code);
    expect(withoutSource(remote.out, server.url)).toEqual(withoutSource(local.out, SAMPLES_DIR));
  });

  it.each(files)("scan %s: the local verdict and globals, from the reads inspect makes", async (name) => {
    const local = await ckpt("scan", join(TORCH2, name), "--json");
    const remote = await ckpt("scan", `${server.url}/torch2/${name}`, "--json");
    const inspect = await ckpt("inspect", `${server.url}/torch2/${name}`, "--json");
    expect(remote.code).toBe(local.code);
    type Scan = { verdict: string; globals: unknown[]; findings: Array<{ code: string }>; transfer: unknown };
    const [mine, theirs] = [JSON.parse(local.out) as Scan, JSON.parse(remote.out) as Scan];
    expect(theirs.verdict).toBe(mine.verdict);
    const key = (g: unknown) => JSON.stringify(g);
    expect(theirs.globals.map(key).sort()).toEqual(mine.globals.map(key).sort());
    // What it leaves out is said: the records that were not probed.
    const others = (s: Scan) => s.findings.map((f) => f.code).filter((c) => c !== "records-not-probed");
    expect(others(theirs)).toEqual(others(mine));
    if (mine.globals.length > 0 && JSON.parse(local.out).format === "torch-zip")
      expect(theirs.findings.map((f) => f.code)).toContain("records-not-probed");
    const moved = theirs.transfer as { requests: number; bytes: number };
    const inspected = JSON.parse(inspect.out).transfer as { requests: number; bytes: number };
    expect(moved.requests).toBeLessThanOrEqual(inspected.requests);
  });

  it("convert writes the same safetensors from a remote source as from the local file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-remote-convert-"));
    try {
      const local = await ckpt(
        "convert",
        join(TORCH2, "model_only.pth"),
        "-o",
        join(dir, "local.safetensors"),
      );
      const remote = await ckpt(
        "convert",
        `${server.url}/torch2/model_only.pth`,
        "-o",
        join(dir, "remote.safetensors"),
        "--json",
      );
      expect(local.code).toBe(0);
      expect(remote.code).toBe(0);
      expect(readFileSync(join(dir, "remote.safetensors"))).toEqual(
        readFileSync(join(dir, "local.safetensors")),
      );
      const served = await server.served();
      expect(JSON.parse(remote.out).source.transfer).toEqual({
        requests: served.requests,
        bytes: served.bytes,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("convert refuses a remote output: writes stay local", async () => {
    const result = await ckpt(
      "convert",
      join(TORCH2, "model_only.pth"),
      "-o",
      `${server.url}/out.safetensors`,
      "--json",
    );
    expect(result.code).toBe(2);
    expect(JSON.parse(result.out).code).toBe("remote-unsupported");
  });
});

describe("failures: a clear error with its code, exit 2", () => {
  const url = () => `${server.url}/${BIG}`;
  const quick = { CKPT_REMOTE_TIMEOUT: "0.5", CKPT_REMOTE_RETRIES: "2", CKPT_REMOTE_BACKOFF_MS: "20" };

  async function failure(
    env: Record<string, string> = {},
    args: string[] = [],
  ): Promise<{ code: string; message: string; exit: number }> {
    const saved = { ...process.env };
    Object.assign(process.env, quick, env);
    try {
      const result = await ckpt("inspect", url(), "--json", ...args);
      return { ...JSON.parse(result.out), exit: result.code };
    } finally {
      process.env = saved;
    }
  }

  it("404: remote-not-found", async () => {
    const result = await ckpt("inspect", `${server.url}/no-such-file.pt`, "--json");
    expect(result.code).toBe(2);
    expect(JSON.parse(result.out)).toMatchObject({ schema: "ckpt.error/1", code: "remote-not-found" });
  });

  it("403: remote-forbidden, not retried", async () => {
    await server.misbehave("forbidden");
    expect(await failure()).toMatchObject({ code: "remote-forbidden", exit: 2 });
    expect((await server.served()).requests).toBe(1);
  });

  it("a server that ignores Range: remote-range-ignored, and the body is not downloaded", async () => {
    await server.misbehave("ignore-range");
    const result = await failure();
    expect(result).toMatchObject({ code: "remote-range-ignored", exit: 2 });
    expect(result.message).toMatch(/ignored the Range request/);
    const served = await server.served();
    expect(served.requests).toBe(1);
  });

  it("a short body, every time: remote-short-body after the retries", async () => {
    await server.misbehave("short-body");
    expect(await failure()).toMatchObject({ code: "remote-short-body", exit: 2 });
    expect((await server.served()).requests).toBeGreaterThan(1);
  });

  it("no answer: remote-timeout after the retries", async () => {
    await server.misbehave("hang");
    const result = await failure();
    expect(result).toMatchObject({ code: "remote-timeout", exit: 2 });
    expect(result.message).toMatch(/3 attempts/);
    expect((await server.served()).requests).toBe(3);
  });

  it("an ETag that changes between reads: remote-changed, for the reader's reads and for the digest workers'", async () => {
    await server.misbehave("changing-etag");
    expect(await failure({}, ["--stats"])).toMatchObject({ code: "remote-changed", exit: 2 });
    await server.reset();
    await server.misbehave("changing-etag");
    const hashed = ckptBinary(["inspect", url(), "--json", "--hash"], { ...process.env, ...quick });
    expect(hashed.status).toBe(2);
    expect(JSON.parse(hashed.stdout).code).toBe("remote-changed");
  });

  it("503 twice, then the file: the retries make it a success", async () => {
    await server.misbehave("flaky", 2);
    const result = await ckpt("inspect", url(), "--json");
    expect(result.code).toBe(0);
    const statuses = (await server.served()).log.map((l) => l.status);
    expect(statuses.slice(0, 2)).toEqual([503, 503]);
    expect(statuses.slice(2).every((s) => s === 206)).toBe(true);
  });

  it("a plain HTTP directory has no listing: remote-unsupported", async () => {
    const result = await ckpt("inspect", `${server.url}/torch2/`, "--json");
    expect(result.code).toBe(2);
    expect(JSON.parse(result.out).code).toBe("remote-unsupported");
  });

  it("the built CLI prints the error in one line with its code and a next step, no stack", async () => {
    await server.misbehave("ignore-range");
    const result = ckptBinary(["inspect", url()], { ...process.env, ...quick });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toMatch(/\[remote-range-ignored\]\. Next: /);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("hf:// through the Hub's resolve URLs (a local stand-in for the Hub and its CDN)", () => {
  const hub = () => ({ HF_ENDPOINT: server.url, HF_TOKEN: "hf_test_token" });
  /** The CDN: the same server under another origin (localhost, not 127.0.0.1), as the Hub redirects to its CDN. */
  const cdn = () => server.url.replace("127.0.0.1", "localhost");

  async function withEnv<T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      return await run();
    } finally {
      process.env = saved;
    }
  }

  it("a file at a revision: the resolve URL with the token, the redirect to the CDN without it", async () => {
    await server.route("/org/repo/resolve/v1.0/model_only.pth", {
      status: 302,
      headers: { location: `${cdn()}/torch2/model_only.pth` },
    });
    const local = await ckpt("inspect", join(TORCH2, "model_only.pth"), "--json");
    const remote = await withEnv(hub(), () => ckpt("inspect", "hf://org/repo@v1.0/model_only.pth", "--json"));
    expect(remote.code).toBe(0);
    const report = JSON.parse(remote.out);
    expect(report.tensors).toEqual(JSON.parse(local.out).tensors);
    const served = await server.served();
    expect(served.log.map((l) => [l.path, l.status, l.auth])).toEqual([
      ["/org/repo/resolve/v1.0/model_only.pth", 302, "Bearer hf_test_token"],
      ["/torch2/model_only.pth", 206, undefined],
    ]);
    expect(report.transfer).toEqual({ requests: 2, bytes: served.bytes });
  });

  it("a repo's directory: the tree API lists it, each checkpoint is read by its resolve URL", async () => {
    const files = ["model.safetensors", "model_only.pth"];
    await server.route("/api/models/org/repo/tree/main", {
      status: 200,
      headers: { "content-type": "application/json" },
      body: JSON.stringify([
        ...files.map((f) => ({ type: "file", path: f, size: statSync(join(TORCH2, f)).size })),
        { type: "file", path: "README.md", size: 10 },
      ]),
    });
    for (const f of files) {
      await server.route(`/org/repo/resolve/main/${f}`, {
        status: 302,
        headers: { location: `${cdn()}/torch2/${f}` },
      });
    }
    // Not a checkpoint: left out, as in a local directory.
    await server.route("/org/repo/resolve/main/README.md", {
      status: 302,
      headers: { location: `${cdn()}/torch2/model_only.pth.truth.json` },
    });
    const result = await withEnv(hub(), () => ckpt("inspect", "hf://org/repo", "--json"));
    expect(result.code).toBe(0);
    expect((JSON.parse(result.out) as Array<{ file: string }>).map((r) => r.file)).toEqual(
      files.map((f) => `hf://org/repo/${f}`),
    );
  });

  it("a private repo without a token: remote-forbidden, with HF_TOKEN in the next step", async () => {
    await server.route("/org/private/resolve/main/model.pt", { status: 401, body: "unauthorized" });
    const result = await withEnv({ HF_ENDPOINT: server.url }, () =>
      ckpt("inspect", "hf://org/private/model.pt", "--json"),
    );
    expect(result.code).toBe(2);
    const error = JSON.parse(result.out);
    expect(error.code).toBe("remote-forbidden");
    expect(error.next).toMatch(/HF_TOKEN/);
  });
});

describe("the portable fetch client (a browser's path) against the same server", () => {
  const settings = { timeoutMs: 2000, retries: 1, backoffMs: 10 };
  const target = () => ({ url: `${server.url}/${BIG}`, auth: { kind: "none" } as const });

  it("reads a range as Node's http client and the socket client do, and checks it against the first answer's ETag", async () => {
    const { fetchRange } = await import("../src/reader/remote/fetch.js");
    const { fetchSend } = await import("../src/reader/remote/fetchClient.js");
    const { nodeSend } = await import("../src/reader/remote/nodeClient.js");
    const read = async (send: typeof fetchSend, offset: number, length: number, expect?: Validator) => {
      const out = new Uint8Array(length);
      const outcome = await fetchRange(send, target(), offset, length, expect, settings, (chunk, at) =>
        out.set(chunk, at - offset),
      );
      return { outcome, out };
    };
    const first = await read(fetchSend, 0, 1000);
    expect(first.outcome.ok).toBe(true);
    if (!first.outcome.ok) return;
    const viaFetch = await read(fetchSend, 1_000_000, 300_000, first.outcome.validator);
    const viaHttp = await read(nodeSend, 1_000_000, 300_000, first.outcome.validator);
    // The digest workers' client, which reads bodies off the socket itself.
    const { socketSend } = await import("../src/reader/remote/socketClient.js");
    const viaSocket = await read(socketSend, 1_000_000, 300_000, first.outcome.validator);
    expect(viaFetch.outcome.ok && viaHttp.outcome.ok && viaSocket.outcome.ok).toBe(true);
    expect(Buffer.from(viaFetch.out)).toEqual(readFileSync(join(root, BIG)).subarray(1_000_000, 1_300_000));
    expect(viaFetch.out).toEqual(viaHttp.out);
    // Buffer.equals: a deep comparison of 300,000 elements takes vitest seconds.
    expect(Buffer.from(viaSocket.out).equals(Buffer.from(viaHttp.out))).toBe(true);
    await server.misbehave("changing-etag");
    const changed = await read(fetchSend, 5000, 10, first.outcome.validator);
    expect(changed.outcome).toMatchObject({ ok: false, code: "remote-changed" });
    const changedSocket = await read(socketSend, 5000, 10, first.outcome.validator);
    expect(changedSocket.outcome).toMatchObject({ ok: false, code: "remote-changed" });
  });
});

describe("the digest workers' socket client fails as Node's http client does", () => {
  const settings = { timeoutMs: 400, retries: 1, backoffMs: 10 };
  const target = () => ({ url: `${server.url}/${BIG}`, auth: { kind: "none" } as const });
  it.each([
    ["forbidden", "remote-forbidden"],
    ["ignore-range", "remote-range-ignored"],
    ["short-body", "remote-short-body"],
    ["hang", "remote-timeout"],
    ["flaky", "ok"],
  ] as const)("%s: %s", async (mode, code) => {
    const { fetchRange } = await import("../src/reader/remote/fetch.js");
    const { nodeSend } = await import("../src/reader/remote/nodeClient.js");
    const { socketSend } = await import("../src/reader/remote/socketClient.js");
    const outcome = async (send: typeof nodeSend) => {
      await server.reset();
      await server.misbehave(mode, 1);
      let bytes = 0;
      const result = await fetchRange(send, target(), 4096, 200_000, undefined, settings, (chunk) => {
        bytes += chunk.length;
      });
      return { code: result.ok ? "ok" : result.code, bytes: result.ok ? bytes : 0 };
    };
    const viaHttp = await outcome(nodeSend);
    expect(viaHttp.code).toBe(code);
    expect(await outcome(socketSend)).toEqual(viaHttp);
  });
});

describe("commands and options that take local paths only", () => {
  it.each([
    [["resume-plan", "--write", "s3://bucket/run/"], "s3://bucket/run/"],
    // An audit error names the roots it was given.
    [["audit", "hf://org/repo", "."], "hf://org/repo ."],
    [["repair", "https://example.org/model.pt"], "https://example.org/model.pt"],
  ])("ckpt %j: remote-unsupported, exit 2, no network", async (args, path) => {
    const result = await ckpt(...args, "--json");
    expect(result.code).toBe(2);
    expect(JSON.parse(result.out)).toMatchObject({ code: "remote-unsupported", file: path });
  });
});
