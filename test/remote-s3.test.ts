import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ckpt, ckptBinary } from "./helpers/cli.js";
import { withoutSource } from "./helpers/remote.js";
import { type S3Server, startS3Server } from "./helpers/s3Server.js";
import { SAMPLES_DIR } from "./helpers/samples.js";

/**
 * s3:// against s3rver behind a front that verifies Signature V4 with its own implementation (s3rver does not
 * verify V4 at all): a request passes only when ckpt's signer (the AWS SDK's) and the front's agree, a wrong
 * secret is refused, and what ckpt says it moved is what the front counted.
 */

const BUCKET = "ckpt-test";
const KEY = "AKIDCKPTTEST";
const SECRET = "s3cret/with+signs";
const TORCH2 = join(SAMPLES_DIR, "torch2");
const PICKED = [
  "model_only.pth",
  "adamw_known_size.pt",
  "model.safetensors",
  "legacy.pt",
  "training_state_e1_b0.th",
];
const scratch = mkdtempSync(join(tmpdir(), "ckpt-remote-s3-"));
let s3: S3Server;
let saved: NodeJS.ProcessEnv;

function credentials(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: KEY,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_REGION: "eu-west-1",
    AWS_ENDPOINT_URL: s3.endpoint,
    // Nothing from this machine's own ~/.aws may leak in.
    AWS_SHARED_CREDENTIALS_FILE: join(scratch, "none"),
    AWS_CONFIG_FILE: join(scratch, "none"),
    ...overrides,
  };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name];
  return env;
}

beforeAll(async () => {
  s3 = await startS3Server(SAMPLES_DIR, BUCKET, KEY, SECRET);
}, 60_000);
afterAll(async () => {
  await s3?.close();
  rmSync(scratch, { recursive: true, force: true });
});
beforeEach(async () => {
  saved = process.env;
  process.env = credentials();
  await s3.reset();
});
afterEach(() => {
  process.env = saved;
});

const url = (name: string) => `s3://${BUCKET}/torch2/${name}`;

describe("s3:// through a SigV4-verifying front", () => {
  it.each(PICKED)("inspect %s: the local report, and the transfer the front counted", async (name) => {
    const local = await ckpt("inspect", join(TORCH2, name), "--json", "--all");
    const remote = await ckpt("inspect", url(name), "--json", "--all");
    expect(remote.code).toBe(local.code);
    expect(withoutSource(remote.out, `s3://${BUCKET}`)).toEqual(withoutSource(local.out, SAMPLES_DIR));
    const served = await s3.served();
    expect(served.log.every((l) => l.status === 206 || l.status === 200 || l.status === 404)).toBe(true);
    expect(JSON.parse(remote.out).transfer).toEqual({ requests: served.requests, bytes: served.bytes });
  });

  it("scan --deep of a prefix lists it (ListObjectsV2) and scans every file as the local directory's scan does", async () => {
    const local = await ckpt("scan", TORCH2, "--json");
    const remote = await ckpt("scan", `s3://${BUCKET}/torch2/`, "--json", "--deep");
    expect(remote.code).toBe(local.code);
    // s3rver 3.7.1 leaves out a common prefix that holds only prefixes (torch2/pointers/, whose files are all
    // deeper): S3 does not. What it lists must read as the local files do.
    const reachable = (withoutSource(local.out, SAMPLES_DIR) as Array<{ file: string }>).filter(
      (r) => !r.file.startsWith("<base>/torch2/pointers/"),
    );
    expect(withoutSource(remote.out, `s3://${BUCKET}`)).toEqual(reachable);
    const served = await s3.served();
    // One ListObjectsV2 per directory: torch2/, bare_pickles/, text/.
    expect(served.log.filter((l) => l.path?.includes("list-type=2"))).toHaveLength(3);
    const text = await ckpt("scan", `s3://${BUCKET}/torch2/`);
    const line = text.out.trimEnd().split("\n").at(-1);
    expect(line).toMatch(/^transferred: \d+ requests, /);
  });

  it("inspect of a prefix inspects each checkpoint below it", async () => {
    const remote = await ckpt("inspect", `s3://${BUCKET}/torch2`, "--json");
    const reports = JSON.parse(remote.out) as Array<{ file: string }>;
    const names = readdirSync(TORCH2).filter((n) => statSync(join(TORCH2, n)).isFile());
    expect(reports.length).toBeGreaterThan(30);
    expect(reports.every((r) => names.includes(r.file.split("/").at(-1) ?? ""))).toBe(true);
  });

  it("a wrong secret: remote-forbidden with S3's SignatureDoesNotMatch, exit 2", async () => {
    process.env = credentials({ AWS_SECRET_ACCESS_KEY: "not-the-secret" });
    const result = await ckpt("inspect", url("model_only.pth"), "--json");
    expect(result.code).toBe(2);
    const error = JSON.parse(result.out);
    expect(error).toMatchObject({ schema: "ckpt.error/1", code: "remote-forbidden" });
    expect(error.message).toMatch(/SignatureDoesNotMatch/);
    expect((await s3.served()).requests).toBe(1);
  });

  it("no credentials at all: the request goes unsigned, and the store's refusal is remote-forbidden", async () => {
    process.env = credentials({ AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined });
    const result = await ckpt("inspect", url("model_only.pth"), "--json");
    expect(result.code).toBe(2);
    expect(JSON.parse(result.out)).toMatchObject({ code: "remote-forbidden" });
  });

  it("credentials and region from a profile in the shared credentials file (AWS_PROFILE)", async () => {
    const file = join(scratch, "credentials");
    writeFileSync(
      file,
      `[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n[ckpt]\naws_access_key_id = ${KEY}\naws_secret_access_key = ${SECRET}\nregion = ap-south-1\n`,
    );
    process.env = credentials({
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_REGION: undefined,
      AWS_SHARED_CREDENTIALS_FILE: file,
      AWS_PROFILE: "ckpt",
    });
    const result = await ckpt("inspect", url("model_only.pth"), "--json");
    expect(result.code).toBe(0);
  });

  it("a missing key: remote-not-found, with S3's NoSuchKey", async () => {
    const result = await ckpt("inspect", url("no-such.pt"), "--json");
    expect(result.code).toBe(2);
    const error = JSON.parse(result.out);
    expect(error.code).toBe("remote-not-found");
    expect(error.message).toMatch(/NoSuchKey/);
  });

  it("--hash on the built CLI's digest workers, signed per range, equals the local hashes", () => {
    const name = "adamw_known_size.pt";
    const local = ckptBinary(["inspect", join(TORCH2, name), "--json", "--hash"]);
    const remote = ckptBinary(["inspect", url(name), "--json", "--hash"], credentials());
    expect(remote.status).toBe(local.status);
    expect(withoutSource(remote.stdout, `s3://${BUCKET}`)).toEqual(withoutSource(local.stdout, SAMPLES_DIR));
  });

  it.each([
    ["a DCP prefix", "sharded/dcp/fsdp2_2ranks/", "sharded/dcp/fsdp2_2ranks"],
    ["a DCP .metadata", "sharded/dcp/fsdp2_2ranks/.metadata", "sharded/dcp/fsdp2_2ranks/.metadata"],
    ["a DeepSpeed prefix with latest", "sharded/deepspeed/zero1/", "sharded/deepspeed/zero1"],
    [
      "a Hugging Face index",
      "sharded/hf/safetensors_5digit/model.safetensors.index.json",
      "sharded/hf/safetensors_5digit/model.safetensors.index.json",
    ],
  ])(
    "inspect --hash of %s: one logical checkpoint, the local report, the transfer the front counted",
    async (_, key, rel) => {
      const local = await ckpt("inspect", join(SAMPLES_DIR, rel), "--json", "--hash");
      const remote = await ckpt("inspect", `s3://${BUCKET}/${key}`, "--json", "--hash");
      expect(remote.code).toBe(local.code);
      const report = JSON.parse(remote.out) as { format: string; tensors: unknown[]; transfer: unknown };
      expect(["dcp", "deepspeed", "hf-index"]).toContain(report.format);
      expect(report.tensors.length).toBeGreaterThan(0);
      // The report names the URL it was given where the local one names the path: both become "<target>".
      const strip = (json: string, target: string) => {
        const bare = target.replace(/\/+$/, "");
        const named = json.replaceAll(`"${target}"`, '"<target>"').replaceAll(bare, "<target>");
        const { transfer: _transfer, ...rest } = JSON.parse(named);
        return rest;
      };
      expect(strip(remote.out, `s3://${BUCKET}/${key}`)).toEqual(strip(local.out, join(SAMPLES_DIR, rel)));
      const served = await s3.served();
      expect(report.transfer).toEqual({ requests: served.requests, bytes: served.bytes });
    },
  );

  // Runs with files of their own at the top: s3rver leaves a prefix that holds only prefixes out of a listing.
  it.each([
    "fvcore_healthy",
    "fvcore_dangling",
    "fvcore_bitflip",
    "hf_trainer_run",
    "deepspeed_run",
    "mmengine_run",
    "timm_run",
    "megatron_torch_dist",
    "hf_deepspeed_run",
  ])(
    "resume-plan of the %s prefix: the local plan, its pointer read remotely, and the transfer the front counted",
    async (run) => {
      const dir = join(SAMPLES_DIR, "outputs", run);
      const prefix = `s3://${BUCKET}/outputs/${run}/`;
      const local = await ckpt("resume-plan", dir, "--json");
      const remote = await ckpt("resume-plan", prefix, "--json");
      expect(remote.code).toBe(local.code);
      const plan = JSON.parse(remote.out) as { runDir: string; transfer: unknown };
      expect(plan.runDir).toBe(prefix.replace(/\/$/, ""));
      const named = (json: string, base: string) => {
        const {
          transfer: _t,
          runDir: _r,
          fix: _f,
          command: _c,
          ...rest
        } = JSON.parse(json.replaceAll(base, "<run>"));
        // An absolute pointer target (mmengine's): shown relative to the local run directory, and as written
        // for a remote one, where no local path leads to it.
        if (rest.pointer?.content?.startsWith("/")) rest.pointer.target = rest.pointer.content;
        return rest;
      };
      expect(named(remote.out, prefix.replace(/\/$/, ""))).toEqual(named(local.out, dir));
      const served = await s3.served();
      expect(plan.transfer).toEqual({ requests: served.requests, bytes: served.bytes });
    },
  );

  it("resume-plan and audit of a prefix in text: the plan, the table, and one line of what was moved", async () => {
    const plan = await ckpt("resume-plan", `s3://${BUCKET}/outputs/fvcore_dangling/`);
    expect(plan.out).toMatch(/model_0000009\.pth/);
    expect(plan.out).toMatch(/\d+ requests?, [\d.]+ [KMG]?i?B/);
    const audit = await ckpt("audit", `s3://${BUCKET}/outputs/`);
    expect(audit.out).toMatch(/fvcore_healthy/);
    expect(audit.out).toMatch(/\d+ requests?, [\d.]+ [KMG]?i?B/);
  });

  it("resume-plan --write of a prefix: remote-unsupported, nothing written, exit 2", async () => {
    const remote = await ckpt("resume-plan", `s3://${BUCKET}/outputs/fvcore_dangling/`, "--write", "--json");
    expect(remote.code).toBe(2);
    expect(JSON.parse(remote.out).code).toBe("remote-unsupported");
  });

  it("audit of a prefix of runs: every run and loose file the local audit finds, with the same verdicts", async () => {
    const local = await ckpt("audit", join(SAMPLES_DIR, "outputs"), "--json");
    const remote = await ckpt("audit", `s3://${BUCKET}/outputs/`, "--json");
    expect(remote.code).toBe(local.code);
    type Audit = {
      runs: Array<{ runDir: string; resumable: boolean; choice: { file: string } | null }>;
      summary: unknown;
      transfer: unknown;
    };
    const mine = JSON.parse(local.out) as Audit;
    const theirs = JSON.parse(remote.out) as Audit;
    const runs = (a: Audit, base: string) =>
      a.runs.map((r) => [r.runDir.replace(base, ""), r.resumable, r.choice?.file ?? null]).sort();
    // s3rver leaves a common prefix that holds only prefixes out of a listing (S3 does not): the runs
    // below one are not listed, and the remote audit sees the others.
    const root = join(SAMPLES_DIR, "outputs");
    const onlyDirs = (dir: string) => readdirSync(dir, { withFileTypes: true }).every((e) => e.isDirectory());
    // An object store has no symbolic links: mmcv's latest.pth is a copy there, and is chosen as one.
    const linked = (dir: string): boolean =>
      readdirSync(dir, { withFileTypes: true }).some(
        (e) => e.isSymbolicLink() || (e.isDirectory() && linked(join(dir, e.name))),
      );
    const listed = (runDir: string) => {
      const parts = runDir.slice(root.length + 1).split("/");
      return !linked(runDir) && parts.every((_, i) => !onlyDirs(join(root, ...parts.slice(0, i + 1))));
    };
    // Inside a run too: Megatron's legacy iter_NNNNNNN/ holds only mp_rank_*/ prefixes, so s3rver lists no
    // iteration but the one the tracker names, and those runs are left out here.
    const hidesPrefixes = (dir: string): boolean =>
      readdirSync(dir, { withFileTypes: true }).some(
        (e) => e.isDirectory() && /^iter_\d{7}$/.test(e.name) && onlyDirs(join(dir, e.name)),
      );
    const comparable = (dir: string) => !linked(dir) && !hidesPrefixes(dir);
    const remoteRuns = (a: Audit) => ({
      ...a,
      runs: a.runs.filter((r) => comparable(join(root, r.runDir.replace(`s3://${BUCKET}/outputs/`, "")))),
    });
    const expected = { ...mine, runs: mine.runs.filter((r) => listed(r.runDir) && !hidesPrefixes(r.runDir)) };
    expect(expected.runs.length).toBeGreaterThan(10);
    expect(runs(remoteRuns(theirs), `s3://${BUCKET}/outputs`)).toEqual(runs(expected, root));
    const served = await s3.served();
    expect(theirs.transfer).toEqual({ requests: served.requests, bytes: served.bytes });
  });

  it.each([
    ["two files", "pairs/dataparallel.pt", "pairs/dataparallel.stripped.pt"],
    ["two DCP prefixes", "sharded/dcp/fsdp2_2ranks/", "sharded/dcp/fsdp2_4ranks/"],
    ["two runs' chosen checkpoints", "outputs/fvcore_healthy/", "outputs/fvcore_dangling/"],
  ])("diff --values of %s: the local diff, and the transfer the front counted", async (_, a, b) => {
    const local = await ckpt("diff", join(SAMPLES_DIR, a), join(SAMPLES_DIR, b), "--values", "--json");
    const remote = await ckpt("diff", `s3://${BUCKET}/${a}`, `s3://${BUCKET}/${b}`, "--values", "--json");
    expect(remote.code).toBe(local.code);
    const strip = (json: string, base: string) => {
      const { transfer: _t, a: sideA, b: sideB, ...rest } = JSON.parse(json.replaceAll(base, "<base>"));
      const side = ({ input: _i, file: _f, run, ...s }: Record<string, unknown>) => ({
        ...s,
        run: run && { ...(run as object), dir: null },
      });
      return { ...rest, a: side(sideA), b: side(sideB) };
    };
    expect(strip(remote.out, `s3://${BUCKET}`)).toEqual(strip(local.out, SAMPLES_DIR));
    const served = await s3.served();
    expect(JSON.parse(remote.out).transfer).toEqual({ requests: served.requests, bytes: served.bytes });
  });

  it("convert from s3:// to a local file writes what the local source gives", async () => {
    const out = join(scratch, "remote.safetensors");
    const mine = join(scratch, "local.safetensors");
    expect((await ckpt("convert", url("model_only.pth"), "-o", out)).code).toBe(0);
    expect((await ckpt("convert", join(TORCH2, "model_only.pth"), "-o", mine)).code).toBe(0);
    expect(readFileSync(out)).toEqual(readFileSync(mine));
  });
});
