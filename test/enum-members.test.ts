import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { scanSource } from "../src/inspect/security/scan.js";
import { BufferSource } from "../src/reader/source.js";
import { ckpt } from "./helpers/cli.js";
import { assemble, type Op } from "./helpers/pickleWriter.js";
import { SHARDED_DIR } from "./helpers/sharded.js";

/**
 * `builtins.getattr` is dangerous, except in a pickle whose every use of it reads an Enum member by name of a
 * class the scan vouches for, as Python 3.11+ pickles Enum members (a real torch 1.13 DCP `.metadata` does).
 * Every other use keeps it dangerous: a module's or an unknown class's attribute, a private name, a result
 * that is called, getattr handed to something else.
 */

const ENUM: Op = {
  op: "global",
  module: "torch.distributed.checkpoint.metadata",
  name: "_MEM_FORMAT_ENCODING",
};
const GETATTR: Op = { op: "global", module: "builtins", name: "getattr" };

/** `{"format": getattr(cls, name)}`, optionally with the result called with no arguments. */
function getattrPickle(cls: Op, name: string, callResult = false): Uint8Array {
  const read: Op[] = [GETATTR, cls, { op: "str", value: name }, { op: "tuple" }, { op: "reduce" }];
  const value: Op[] = callResult ? [...read, { op: "emptyTuple" }, { op: "reduce" }] : read;
  // MARK goes before the class: TUPLE takes everything above it.
  const withMark = [value[0] as Op, { op: "mark" } as Op, ...value.slice(1)];
  return assemble([
    { op: "emptyDict" },
    { op: "mark" },
    { op: "str", value: "format" },
    ...withMark,
    { op: "setitems" },
  ]);
}

function verdictOf(bytes: Uint8Array) {
  const scan = scanSource(new BufferSource(bytes));
  const getattr = scan.globals.filter((g) => g.module === "builtins" && g.name === "getattr");
  return { verdict: scan.verdict, classes: getattr.map((g) => g.class) };
}

describe("getattr reading Enum members", () => {
  it("a framework Enum's member by name: framework, not dangerous", () => {
    expect(verdictOf(getattrPickle(ENUM, "TORCH_CONTIGUOUS_FORMAT"))).toEqual({
      verdict: "framework",
      classes: ["framework"],
    });
  });

  it.each([
    ["a module's attribute", { op: "global", module: "os", name: "path" } as Op, "join", false],
    ["an unknown class's attribute", { op: "global", module: "mypkg", name: "Thing" } as Op, "A", false],
    ["a private name", ENUM, "__class__", false],
    ["a result that is called", ENUM, "TORCH_CONTIGUOUS_FORMAT", true],
  ])("%s stays dangerous", (_, cls, name, call) => {
    expect(verdictOf(getattrPickle(cls, name, call)).classes).toContain("dangerous");
    expect(verdictOf(getattrPickle(cls, name, call)).verdict).toBe("dangerous");
  });

  it("getattr handed to something else as a value stays dangerous", () => {
    const bytes = assemble([
      { op: "emptyDict" },
      { op: "mark" },
      { op: "str", value: "fn" },
      GETATTR,
      { op: "str", value: "format" },
      GETATTR,
      { op: "mark" },
      ENUM,
      { op: "str", value: "TORCH_CONTIGUOUS_FORMAT" },
      { op: "tuple" },
      { op: "reduce" },
      { op: "setitems" },
    ]);
    // getattr sits in the dict as a value (to be called by whoever loads it), beside a benign read.
    expect(verdictOf(bytes).verdict).toBe("dangerous");
  });

  it("torch 1.13's DCP .metadata scans as framework code, as newer torch's does", async () => {
    const result = await ckpt("scan", join(SHARDED_DIR, "dcp", "torch1_13"), "--json");
    const reports = JSON.parse(result.out) as Array<{ file: string; verdict: string }>;
    const metadata = reports.find((r) => r.file.endsWith(".metadata"));
    expect(metadata?.verdict).toBe("framework");
  });
});
