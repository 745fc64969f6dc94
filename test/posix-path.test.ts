import { posix } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as ours from "../src/reader/posixPath.js";

/** ckpt's browser-safe path functions behave as Node's path.posix on every path shape ckpt meets. */
const segment = fc.constantFrom("a", "b", "run", ".", "..", "", "x.pth", "checkpoint-5");
const relativePath = fc.array(segment, { minLength: 1, maxLength: 6 }).map((s) => s.join("/"));
const absolutePath = relativePath.map((p) => `/${p}`);
const anyPath = fc.oneof(relativePath, absolutePath);

describe("posixPath agrees with node:path.posix", () => {
  it("normalize, join, dirname, basename, isAbsolute", () => {
    fc.assert(
      fc.property(anyPath, anyPath, (a, b) => {
        expect(ours.normalize(a)).toBe(posix.normalize(a).replace(/(.)\/$/, "$1"));
        expect(ours.join(a, b)).toBe(posix.join(a, b).replace(/(.)\/$/, "$1"));
        expect(ours.dirname(ours.normalize(a))).toBe(
          posix.dirname(posix.normalize(a).replace(/(.)\/$/, "$1")),
        );
        expect(ours.basename(ours.normalize(a))).toBe(posix.basename(posix.normalize(a)));
        expect(ours.isAbsolute(a)).toBe(posix.isAbsolute(a));
      }),
    );
  });

  it("resolve and relative between absolute paths", () => {
    fc.assert(
      fc.property(absolutePath, anyPath, absolutePath, (base, p, other) => {
        expect(ours.resolve(base, p)).toBe(posix.resolve(base, p));
        expect(ours.relative(base, other)).toBe(posix.relative(base, other));
      }),
    );
  });
});
