import { volume } from "../assemble.js";

/** A box of a tensor: where it starts per dimension and how far it reaches. */
export interface Box {
  readonly offsets: readonly number[];
  readonly sizes: readonly number[];
}

export type TilingProblem =
  | { readonly kind: "out-of-bounds"; readonly box: number }
  | { readonly kind: "overlap"; readonly boxes: readonly [number, number] }
  | { readonly kind: "gap"; readonly missingElements: number };

/**
 * Whether `boxes` tile a tensor of `shape` exactly: each inside the shape (an empty box may sit at the end of a
 * dimension, as FSDP's empty shards do), no two sharing an element, and together covering every element.
 * Boxes are swept in order of their first offset, so row-sharded tensors cost O(n log n), not O(n^2).
 */
export function checkTiling(shape: readonly number[], boxes: readonly Box[]): TilingProblem[] {
  const problems: TilingProblem[] = [];
  const live: number[] = [];
  boxes.forEach((box, i) => {
    if (!inBounds(shape, box)) problems.push({ kind: "out-of-bounds", box: i });
    else if (volume(box.sizes) > 0) live.push(i);
  });
  const first = (i: number) => ((boxes[i] as Box).offsets[0] ?? 0) as number;
  const end = (i: number) => first(i) + (((boxes[i] as Box).sizes[0] ?? 1) as number);
  live.sort((a, b) => first(a) - first(b));
  let overlapping = false;
  for (let a = 0; a < live.length; a++) {
    const i = live[a] as number;
    for (let b = a + 1; b < live.length && first(live[b] as number) < end(i); b++) {
      const j = live[b] as number;
      if (intersect(boxes[i] as Box, boxes[j] as Box)) {
        problems.push({ kind: "overlap", boxes: [Math.min(i, j), Math.max(i, j)] });
        overlapping = true;
      }
    }
  }
  if (!overlapping) {
    const covered = live.reduce((sum, i) => sum + volume((boxes[i] as Box).sizes), 0);
    const total = volume(shape);
    if (covered < total) problems.push({ kind: "gap", missingElements: total - covered });
  }
  return problems;
}

function inBounds(shape: readonly number[], box: Box): boolean {
  if (box.offsets.length !== shape.length || box.sizes.length !== shape.length) return false;
  return shape.every((size, d) => {
    const offset = box.offsets[d] as number;
    const extent = box.sizes[d] as number;
    return offset >= 0 && extent >= 0 && offset + extent <= size;
  });
}

function intersect(a: Box, b: Box): boolean {
  return a.offsets.every((offset, d) => {
    const other = b.offsets[d] as number;
    return offset < other + (b.sizes[d] as number) && other < offset + (a.sizes[d] as number);
  });
}
