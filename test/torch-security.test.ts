import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { scanReport } from "../src/inspect/security/scanFile.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { describeWith } from "./helpers/requires.js";
import { SAMPLES_DIR } from "./helpers/samples.js";
import { runPython, torchRequirement } from "./helpers/torch.js";

/**
 * ckpt's security answers against real torch 2.x: the weights_only verdict on every sample, and, with a
 * harmless payload (it writes a marker file), proof that torch really runs what ckpt calls dangerous.
 */
const dir = mkdtempSync(join(tmpdir(), "ckpt-torchsec-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function checkpointFiles(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: "utf8" })
    .filter((n) => /\.(pt|pth|ckpt|bin|pth\.tar)$/.test(n))
    .map((n) => join(root, n))
    .sort();
}

/** A torch zip whose data.pkl records are `pickles` (several: duplicate names). */
function zipWith(name: string, pickles: Uint8Array[]): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const writer = new TorchZipWriter(fd, "archive");
  for (const p of pickles) writer.addRecord("data.pkl", p);
  writer.addRecord("version", Buffer.from("3\n")); // torch refuses an archive without it
  writer.finish();
  closeSync(fd);
  return path;
}

/** builtins.exec("open(MARKER, 'w').write('ran')"): harmless, and visible. */
function markerPayload(marker: string): Uint8Array {
  const code = Buffer.from(`open(${JSON.stringify(marker)}, 'w').write('ran')`, "utf8");
  const length = Buffer.alloc(4);
  length.writeUInt32LE(code.length);
  return Uint8Array.from([
    0x80,
    0x02,
    ...Buffer.from("cbuiltins\nexec\n", "latin1"),
    0x58,
    ...length,
    ...code,
    0x85,
    0x52,
    0x2e,
  ]);
}

describeWith(torchRequirement("torch2"), "security answers agree with real torch 2.x", ([torch]) => {
  it(`weights_only verdicts equal what torch ${torch.version} does, on every sample`, () => {
    const files = [
      ...checkpointFiles(join(SAMPLES_DIR, "torch2")),
      ...checkpointFiles(join(SAMPLES_DIR, "outputs")),
    ]
      // Files cut short on purpose: there is no pickle to judge (ckpt says truncated, torch fails to open).
      .filter((f) => !/truncated|killed_mid_save/.test(f) || !f.endsWith("model_0000019.pth"))
      .filter((f) => !f.endsWith("fairseq_truncated_last/checkpoint_last.pt"));
    const truth = JSON.parse(runPython(torch.python, "weights_only_truth.py", files)) as Record<
      string,
      true | string
    >;
    let compared = 0;
    for (const file of files) {
      const ours = scanReport(file).weightsOnly.loads;
      expect(ours, `${file}: torch says ${truth[file]}`).toBe(truth[file] === true);
      compared++;
    }
    expect(compared).toBeGreaterThan(60);
  });

  it("torch runs a payload ckpt calls dangerous, and weights_only=True blocks it", () => {
    const marker = join(dir, "marker-plain");
    const file = zipWith("payload.pt", [markerPayload(marker)]);
    expect(scanReport(file).verdict).toBe("dangerous");
    const blocked = JSON.parse(runPython(torch.python, "load_untrusted.py", [file, "true", marker]));
    expect(blocked).toMatchObject({ loaded: false, payloadRan: false });
    const ran = JSON.parse(runPython(torch.python, "load_untrusted.py", [file, "false", marker]));
    expect(ran.payloadRan).toBe(true);
  });

  it("a duplicated data.pkl: torch executes the first copy, which ckpt scans (a published scanner bypass)", () => {
    const marker = join(dir, "marker-duplicate");
    const benign = Uint8Array.from([0x80, 0x02, 0x7d, 0x2e]);
    const file = zipWith("duplicate.pt", [markerPayload(marker), benign]);
    const report = scanReport(file);
    expect(report.verdict).toBe("dangerous");
    expect(report.findings.map((f) => f.code)).toContain("zip-duplicate-member");
    const ran = JSON.parse(runPython(torch.python, "load_untrusted.py", [file, "false", marker]));
    expect(ran.payloadRan).toBe(true);
    expect(existsSync(marker)).toBe(true);
  });
});
