import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { describe, expect, it } from "vitest";
import type { Checkpoint } from "../src/reader/checkpoint.js";
import { FileSource } from "../src/reader/fileSource.js";
import { openCheckpoint } from "../src/reader/open.js";
import {
  classifyPointerTarget,
  MAX_POINTER_SIZE,
  type PointerFile,
  readPointer,
  resolvePointerTarget,
} from "../src/reader/pointer.js";
import { BufferSource } from "../src/reader/source.js";
import { findTruths } from "./helpers/samples.js";

function pointerOf(content: string | Uint8Array): PointerFile | undefined {
  const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
  return readPointer(new BufferSource(bytes, "last_checkpoint"));
}

describe("readPointer", () => {
  it("reads an fvcore/detectron2 last_checkpoint (basename, no newline)", () => {
    expect(pointerOf("model_0004999.pth")).toEqual({
      content: "model_0004999.pth",
      target: "model_0004999.pth",
      style: "basename",
      hasTrailingNewline: false,
    });
    expect(pointerOf("model_final.pth")?.style).toBe("basename");
  });

  it("reads an mmengine last_checkpoint (absolute path), with a trailing newline", () => {
    expect(pointerOf("/work/runs/exp1/epoch_12.pth\n")).toEqual({
      content: "/work/runs/exp1/epoch_12.pth\n",
      target: "/work/runs/exp1/epoch_12.pth",
      style: "absolute-path",
      hasTrailingNewline: true,
    });
    expect(pointerOf("/work/runs/exp1/iter_4000.pth")?.hasTrailingNewline).toBe(false);
    expect(pointerOf("C:\\runs\\exp1\\epoch_1.pth\r\n")).toMatchObject({
      target: "C:\\runs\\exp1\\epoch_1.pth",
      style: "absolute-path",
      hasTrailingNewline: true,
    });
    expect(pointerOf("s3://bucket/work_dirs/epoch_12.pth")?.style).toBe("uri");
  });

  it("reads a DeepSpeed latest (tag naming a directory)", () => {
    expect(pointerOf("global_step300")).toEqual({
      content: "global_step300",
      target: "global_step300",
      style: "tag",
      hasTrailingNewline: false,
    });
    expect(pointerOf("global_step300\r")?.hasTrailingNewline).toBe(true);
  });

  it("reads relative paths and strips surrounding spaces like Python's strip()", () => {
    expect(pointerOf("checkpoints/epoch=3-step=100.ckpt")?.style).toBe("relative-path");
    expect(pointerOf("../run1/last.ckpt")?.style).toBe("relative-path");
    expect(pointerOf("  model_0000999.pth \n")).toMatchObject({
      target: "model_0000999.pth",
      style: "basename",
    });
    expect(pointerOf("/data/My Drive/run 1/epoch_2.pth")?.target).toBe("/data/My Drive/run 1/epoch_2.pth");
    expect(pointerOf("модель_0001.pth")?.style).toBe("basename");
  });

  it("rejects empty, blank and multi-line files", () => {
    for (const text of [
      "",
      "\n",
      "   ",
      " \r\n",
      "a\nb",
      "model.pth\n\n",
      "model.pth\n\r\n",
      "\nmodel.pth",
    ]) {
      expect(pointerOf(text), JSON.stringify(text)).toBeUndefined();
    }
    expect(
      pointerOf("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n"),
    ).toBeUndefined();
  });

  it("rejects binary files: zip, pickles, legacy torch, safetensors, NUL and control bytes", () => {
    const zip = Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x14, 0, 0, 0, 0, 0]);
    const emptyZip = Uint8Array.from([0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
    const pickle = Uint8Array.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e]);
    const pickle4 = Uint8Array.from([0x80, 0x04, 0x95, 0x05, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0x94, 0x2e]);
    const legacyMagic = Uint8Array.from([
      0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8,
    ]);
    const safetensors = Uint8Array.from([
      8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    ]);
    for (const bytes of [zip, emptyZip, pickle, pickle4, legacyMagic, safetensors]) {
      expect(pointerOf(bytes)).toBeUndefined();
    }
    expect(pointerOf("model\u0000.pth")).toBeUndefined();
    expect(pointerOf("model\t.pth")).toBeUndefined();
    expect(pointerOf("model.pth\u007f")).toBeUndefined();
    expect(pointerOf("\ufeffmodel.pth")).toBeUndefined();
    expect(pointerOf(Uint8Array.from([0x6d, 0xc3, 0x28]))).toBeUndefined(); // invalid UTF-8
  });

  it("rejects protocol-0 pickles, JSON and markup", () => {
    for (const text of [
      "N.",
      "(dp0\n.",
      "ccollections\nOrderedDict\np0\n",
      '{"step": 300}',
      "{}",
      '["a"]',
      '"model.pth"',
      "<html><body>404</body></html>",
      "model_*.pth",
      ".",
      "..",
    ]) {
      expect(pointerOf(text), JSON.stringify(text)).toBeUndefined();
    }
  });

  it("rejects files larger than MAX_POINTER_SIZE", () => {
    expect(pointerOf(`/${"a".repeat(MAX_POINTER_SIZE - 5)}.pth`)?.style).toBe("absolute-path");
    expect(pointerOf(`/${"a".repeat(MAX_POINTER_SIZE)}.pth`)).toBeUndefined();
  });

  it("works on files on disk", () => {
    const dir = mkdtempSync(join(tmpdir(), "ckpt-pointer-"));
    try {
      const path = join(dir, "latest");
      writeFileSync(path, "global_step500");
      const source = FileSource.open(path);
      const pointer = readPointer(source);
      source.close();
      expect(pointer?.style).toBe("tag");
      expect(pointer && resolvePointerTarget(path, pointer)).toBe(join(dir, "global_step500"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("classifyPointerTarget", () => {
  it("decides by shape", () => {
    const table: Array<[string, string]> = [
      ["model_0004999.pth", "basename"],
      ["last.ckpt", "basename"],
      ["DiMPnet_ep0050.pth.tar", "basename"],
      ["global_step300", "tag"],
      ["v1.0", "tag"],
      ["step-10", "tag"],
      ["/abs/epoch_1.pth", "absolute-path"],
      ["D:/runs/epoch_1.pth", "absolute-path"],
      ["\\\\server\\share\\epoch_1.pth", "absolute-path"],
      ["sub/model.pth", "relative-path"],
      ["sub\\model.pth", "relative-path"],
      ["./model.pth", "relative-path"],
      ["s3://bucket/a.pth", "uri"],
      ["petrel://bucket/a.pth", "uri"],
    ];
    for (const [target, style] of table) expect(classifyPointerTarget(target), target).toBe(style);
  });
});

describe("resolvePointerTarget", () => {
  const pointer = (content: string): PointerFile => {
    const parsed = pointerOf(content);
    if (parsed === undefined) throw new Error(`not a pointer: ${content}`);
    return parsed;
  };

  it("joins basenames, tags and relative paths to the pointer's directory", () => {
    expect(resolvePointerTarget("/out/last_checkpoint", pointer("model_0004999.pth"))).toBe(
      `/out${sep}model_0004999.pth`,
    );
    expect(resolvePointerTarget("/ds/ckpt/latest", pointer("global_step300"))).toBe(
      `/ds/ckpt${sep}global_step300`,
    );
    expect(resolvePointerTarget("/a/b/last_checkpoint", pointer("../c/m.pth\n"))).toBe(
      `/a/b${sep}../c/m.pth`,
    );
    expect(resolvePointerTarget("last_checkpoint", pointer("model_final.pth"))).toBe(
      `.${sep}model_final.pth`,
    );
    expect(resolvePointerTarget("/last_checkpoint", pointer("model_final.pth"))).toBe("/model_final.pth");
  });

  it("returns absolute paths and URIs unchanged (mmengine does not join)", () => {
    expect(resolvePointerTarget("/elsewhere/last_checkpoint", pointer("/work/exp/epoch_12.pth\n"))).toBe(
      "/work/exp/epoch_12.pth",
    );
    expect(resolvePointerTarget("/x/last_checkpoint", pointer("s3://bucket/epoch_1.pth"))).toBe(
      "s3://bucket/epoch_1.pth",
    );
  });
});

// Samples from samples/make_samples.py, when present: pointer files read as their truth says, and no other
// sample (checkpoints of every format) reads as a pointer. Runs over zero files when there are none.

interface Truth {
  format?: string;
  pointer?: { content: string; target: string };
}

describe("pointer samples", () => {
  it("recognise exactly the pointer files, with the truth's content and an existing target", () => {
    for (const { path, truth } of findTruths<Truth>()) {
      let checkpoint: Checkpoint | undefined;
      try {
        checkpoint = openCheckpoint(path);
      } catch {
        // Not a checkpoint of any kind (a note, text): certainly not a pointer.
      }
      checkpoint?.source.close();
      if (truth.format !== "pointer") {
        expect(checkpoint?.format, path).not.toBe("pointer");
        continue;
      }
      expect(checkpoint?.format, path).toBe("pointer");
      if (checkpoint?.format !== "pointer") continue;
      expect(checkpoint.pointer.content, path).toBe(truth.pointer?.content);
      // The truth names what the framework opens (Megatron's "10" is iter_0000010/).
      expect(checkpoint.target.endsWith(truth.pointer?.target ?? "?"), path).toBe(true);
      expect(existsSync(checkpoint.target), path).toBe(true);
    }
  });
});
