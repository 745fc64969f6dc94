import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ScanReport } from "../src/inspect/security/report.js";
import { scanReport } from "../src/inspect/security/scanFile.js";
import { TorchZipWriter } from "../src/repair/zipWriter.js";
import { ckpt } from "./helpers/cli.js";
import { findTruths } from "./helpers/samples.js";

/**
 * Malicious pickles built from bytes (never by pickling anything), one per family of
 * `peers-and-security.md` section 3.4, against benign controls. Nothing here is ever loaded by Python.
 */
const dir = mkdtempSync(join(tmpdir(), "ckpt-security-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ascii = (text: string) => Buffer.from(text, "latin1");
const PROTO2 = [0x80, 0x02];
const PROTO4 = [0x80, 0x04];
const STOP = [0x2e];
const binunicode = (text: string) => {
  const b = Buffer.from(text, "utf8");
  const n = Buffer.alloc(4);
  n.writeUInt32LE(b.length);
  return [0x58, ...n, ...b];
};
const shortBinunicode = (text: string) => [0x8c, Buffer.byteLength(text), ...Buffer.from(text, "utf8")];
const global = (module: string, name: string) => [0x63, ...ascii(`${module}\n${name}\n`)];
const tuple1 = (item: number[]) => [...item, 0x85];
const reduce = [0x52];
const binbytes = (bytes: Uint8Array) => {
  const n = Buffer.alloc(4);
  n.writeUInt32LE(bytes.length);
  return [0x42, ...n, ...bytes];
};

/** A torch-style zip whose data.pkl (and optionally more records) are the given bytes. */
function zipOf(name: string, records: Array<[string, number[] | Uint8Array]>): string {
  const path = join(dir, name);
  const fd = openSync(path, "w");
  const writer = new TorchZipWriter(fd, name.replace(/\..*$/, ""));
  for (const [record, bytes] of records) writer.addRecord(record, Uint8Array.from(bytes));
  writer.finish();
  closeSync(fd);
  return path;
}

function raw(name: string, bytes: number[]): string {
  const path = join(dir, name);
  writeFileSync(path, Uint8Array.from(bytes));
  return path;
}

const evilSystem = [
  ...PROTO2,
  ...global("posix", "system"),
  ...tuple1(binunicode("touch /tmp/pwned")),
  ...reduce,
  ...STOP,
];
const benignDict = [...PROTO2, 0x7d, ...STOP];

interface Case {
  readonly family: string;
  readonly file: () => string;
  readonly verdict: ScanReport["verdict"];
  readonly expect?: (report: ScanReport) => void;
  /** The payload sits where torch.load never executes it: weights_only=True still loads the file. */
  readonly torchIgnoresPayload?: boolean;
}

const codes = (report: ScanReport) => report.findings.map((f) => f.code);

const CASES: Case[] = [
  {
    family: "1. GLOBAL posix.system + REDUCE (protocol 2)",
    file: () => zipOf("p2.pt", [["data.pkl", evilSystem]]),
    verdict: "dangerous",
  },
  {
    family: "1. protocol 0 text: cos\\nsystem + REDUCE in a bare pickle",
    file: () => raw("p0.pkl", [...ascii("cos\nsystem\n(S'id'\ntR."), 0x2e]),
    verdict: "dangerous",
  },
  {
    family: "1. builtins.eval / __builtin__.exec (Python 2 name)",
    file: () =>
      raw("eval.pkl", [
        ...PROTO2,
        ...global("__builtin__", "exec"),
        ...tuple1(binunicode("1")),
        ...reduce,
        ...STOP,
      ]),
    verdict: "dangerous",
    expect: (r) =>
      expect(r.globals[0]).toMatchObject({ module: "builtins", name: "exec", class: "dangerous" }),
  },
  {
    family: "2. STACK_GLOBAL from SHORT_BINUNICODE operands (protocol 4)",
    file: () =>
      raw("sg.pkl", [
        ...PROTO4,
        ...shortBinunicode("os"),
        ...shortBinunicode("system"),
        0x93,
        ...tuple1(shortBinunicode("id")),
        ...reduce,
        ...STOP,
      ]),
    verdict: "dangerous",
    expect: (r) =>
      expect(r.globals[0]).toMatchObject({ module: "os", name: "system", opcode: "STACK_GLOBAL" }),
  },
  {
    family: "3. STACK_GLOBAL operands through MEMOIZE and BINGET",
    file: () =>
      raw("memo.pkl", [
        ...PROTO4,
        ...shortBinunicode("os"),
        0x94,
        0x30,
        ...shortBinunicode("system"),
        0x94,
        0x30,
        0x68,
        0,
        0x68,
        1,
        0x93,
        ...tuple1(shortBinunicode("id")),
        ...reduce,
        ...STOP,
      ]),
    verdict: "dangerous",
  },
  {
    family: "4. STACK_GLOBAL operands computed at load time (_codecs.encode rot13)",
    file: () =>
      raw("computed.pkl", [
        ...PROTO4,
        ...global("_codecs", "encode"),
        ...shortBinunicode("bf"),
        ...shortBinunicode("rot13"),
        0x86,
        ...reduce,
        ...shortBinunicode("system"),
        0x93,
        ...tuple1(shortBinunicode("id")),
        ...reduce,
        ...STOP,
      ]),
    verdict: "dangerous",
    expect: (r) => expect(r.globals.some((g) => g.dynamic === true && g.class === "dangerous")).toBe(true),
  },
  {
    family: "5. dotted name under protocol 4: builtins print.__self__.exec",
    file: () =>
      raw("dotted.pkl", [
        ...PROTO4,
        ...global("builtins", "print.__self__.exec"),
        ...tuple1(shortBinunicode("1")),
        ...reduce,
        ...STOP,
      ]),
    verdict: "dangerous",
  },
  {
    family: "6. INST and OBJ",
    file: () => raw("inst.pkl", [...ascii("(S'id'\nios\nsystem\n"), 0x2e]),
    verdict: "dangerous",
  },
  {
    family: "8. resolver gadget: pkgutil.resolve_name",
    file: () =>
      zipOf("gadget.pt", [
        [
          "data.pkl",
          [
            ...PROTO2,
            ...global("pkgutil", "resolve_name"),
            ...tuple1(binunicode("os:system")),
            ...reduce,
            ...STOP,
          ],
        ],
      ]),
    verdict: "dangerous",
  },
  {
    family: "10. nested pickle handed to pickle.loads: the inner payload is found",
    file: () =>
      zipOf("nested.pt", [
        [
          "data.pkl",
          [
            ...PROTO2,
            ...global("pickle", "loads"),
            ...tuple1(binbytes(Uint8Array.from(evilSystem))),
            ...reduce,
            ...STOP,
          ],
        ],
      ]),
    verdict: "dangerous",
    expect: (r) =>
      expect(r.globals.some((g) => g.record.includes("nested pickle") && g.name === "system")).toBe(true),
  },
  {
    family: "11. a persistent id that is not a torch storage",
    file: () => zipOf("persid.pt", [["data.pkl", [...PROTO2, ...binunicode("module"), 0x51, ...STOP]]]),
    verdict: "unknown",
    expect: (r) => expect(codes(r)).toContain("persistent-id-not-storage"),
  },
  {
    family: "11. extension code (copyreg registry)",
    file: () => raw("ext.pkl", [...PROTO2, 0x82, 0x07, 0x29, ...reduce, ...STOP]),
    verdict: "unknown",
  },
  {
    family: "12. an invalid opcode right after a dangerous REDUCE (exception-oriented programming)",
    file: () =>
      raw("eop.pkl", [...PROTO2, ...global("posix", "system"), ...tuple1(binunicode("id")), ...reduce, 0xff]),
    verdict: "dangerous",
  },
  {
    family: "12. a malformed stream after a benign global is never clean",
    file: () =>
      raw("broken.pkl", [...PROTO2, ...global("collections", "OrderedDict"), 0x29, ...reduce, 0x68, 0x63]),
    verdict: "inconclusive",
    expect: (r) => expect(codes(r)).toContain("pickle-malformed-after-globals"),
  },
  {
    family: "13. a second pickle after STOP carries the payload",
    file: () => zipOf("afterstop.pt", [["data.pkl", [...benignDict, ...evilSystem]]]),
    verdict: "dangerous",
    torchIgnoresPayload: true,
    expect: (r) => expect(codes(r)).toContain("pickle-after-stop"),
  },
  {
    family: "16. duplicate data.pkl, evil first (torch executes the first; Python's zipfile reads the last)",
    file: () =>
      zipOf("dupfirst.pt", [
        ["data.pkl", evilSystem],
        ["data.pkl", benignDict],
      ]),
    verdict: "dangerous",
    expect: (r) => expect(codes(r)).toContain("zip-duplicate-member"),
  },
  {
    family: "16. duplicate data.pkl, evil last",
    file: () =>
      zipOf("duplast.pt", [
        ["data.pkl", benignDict],
        ["data.pkl", evilSystem],
      ]),
    verdict: "dangerous",
    torchIgnoresPayload: true,
  },
  {
    family: "17. a pickle hidden in a member torch never loads (data/0)",
    file: () =>
      zipOf("hidden.pt", [
        ["data.pkl", benignDict],
        ["data/0", evilSystem],
      ]),
    verdict: "dangerous",
    torchIgnoresPayload: true,
    expect: (r) => expect(codes(r)).toContain("hidden-pickle"),
  },
  {
    family: "14. benign control: torch-shaped state dict",
    file: () =>
      zipOf("benign.pt", [
        ["data.pkl", [...PROTO2, ...global("collections", "OrderedDict"), 0x29, ...reduce, ...STOP]],
      ]),
    verdict: "clean",
  },
];

describe("dangerous content is found, never run", () => {
  for (const c of CASES) {
    it(c.family, () => {
      const report = scanReport(c.file());
      expect(report.verdict).toBe(c.verdict);
      c.expect?.(report);
      if (c.verdict === "dangerous") {
        expect(report.findings.some((f) => f.severity === "error")).toBe(true);
        expect(report.weightsOnly.loads).toBe(c.torchIgnoresPayload === true);
      }
    });
  }
});

describe("benign samples written by real torch", () => {
  const samples = findTruths<{ format: string }>().filter((s) => s.truth.format !== "pointer");
  it("are clean or framework, except a whole pickled module (its __main__ class is unknown code)", () => {
    expect(samples.length).toBeGreaterThan(25);
    for (const { path } of samples) {
      const report = scanReport(path);
      // A module saved whole from a script names its class as __main__.<Class> (the bytes say so, stored).
      const savedFromScript = readFileSync(path).includes("__main__");
      const expected = savedFromScript ? ["unknown"] : ["clean", "framework"];
      expect(expected, `${path}: ${report.verdict}`).toContain(report.verdict);
      expect(report.globals.filter((g) => g.class === "dangerous")).toEqual([]);
    }
  });
});

describe("ckpt scan", () => {
  it("exit codes: 0 clean, 1 dangerous or unknown, 2 inconclusive; JSON follows ckpt.scan/1", async () => {
    expect((await ckpt("scan", zipOf("ok.pt", [["data.pkl", benignDict]]))).code).toBe(0);
    const evil = await ckpt("scan", zipOf("evil.pt", [["data.pkl", evilSystem]]), "--json");
    expect(evil.code).toBe(1);
    const report = JSON.parse(evil.out);
    expect(report).toMatchObject({
      schema: "ckpt.scan/1",
      verdict: "dangerous",
      weightsOnly: { loads: false },
    });
    expect(report.globals[0]).toMatchObject({
      module: "posix",
      name: "system",
      class: "dangerous",
      record: "data.pkl",
    });
    expect(typeof report.globals[0].offset).toBe("number");
    expect(
      (await ckpt("scan", raw("bad.pkl", [...PROTO2, ...global("collections", "OrderedDict"), 0xff]))).code,
    ).toBe(2);
  });

  it("JSON lists a repeated safe global once with its count, and a dangerous one at every place", async () => {
    // Protocol 2, GLOBALs not memoized: each is its own opcode, as in every item of a DCP data file.
    const pickle = [
      ...PROTO2,
      ...global("collections", "OrderedDict"),
      ...global("collections", "OrderedDict"),
      ...global("posix", "system"),
      ...global("collections", "OrderedDict"),
      ...global("posix", "system"),
      0x30, // POP
      0x30,
      0x30,
      0x30,
      ...STOP,
    ];
    const { code, out } = await ckpt("scan", raw("repeated.pkl", pickle), "--json");
    expect(code).toBe(1);
    const report = JSON.parse(out) as ScanReport;
    const named = (name: string) => report.globals.filter((g) => g.name === name);
    expect(named("OrderedDict")).toEqual([
      expect.objectContaining({ class: "safe", offset: 2, occurrences: 3 }),
    ]);
    const system = named("system");
    expect(system.map((g) => g.offset)).toEqual([2 + 2 * 25, 2 + 3 * 25 + 14]);
    expect(system.every((g) => g.class === "dangerous" && g.occurrences === undefined)).toBe(true);
  });

  it("inspect carries the same findings", async () => {
    const { code, out } = await ckpt("inspect", zipOf("evil2.pt", [["data.pkl", evilSystem]]), "--json");
    expect(code).toBe(1);
    const inspected = JSON.parse(out);
    expect(inspected.security.verdict).toBe("dangerous");
    expect(inspected.findings.map((f: { code: string }) => f.code)).toContain("dangerous-global");
  });

  it("inspect and scan agree on a persistent id that is not a storage, in a zip and in a bare pickle", async () => {
    const data = [...PROTO2, ...binunicode("module"), 0x51, ...STOP];
    for (const file of [zipOf("persid2.pt", [["data.pkl", data]]), raw("persid2.pkl", data)]) {
      const inspected = JSON.parse((await ckpt("inspect", file, "--json")).out);
      const scanned = JSON.parse((await ckpt("scan", file, "--json")).out);
      expect(inspected.security.verdict, file).toBe("unknown");
      expect(scanned.verdict, file).toBe("unknown");
      const message = (report: { findings: Array<{ code: string; message: string }> }) =>
        report.findings.find((f) => f.code === "persistent-id-not-storage")?.message;
      expect(message(inspected), file).toBeDefined();
      expect(message(inspected), file).toBe(message(scanned));
    }
  });
});
