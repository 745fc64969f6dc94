import type { KeyPath } from "./walk.js";

/**
 * The part of `path` below the dotted key `prefix` (`model`, `model_ema.module`, `model.backbone`), or
 * undefined when it is not below it. The prefix is matched on the dotted path, so it may end inside a key that
 * holds dots: `model.backbone` finds `model` > `backbone.conv.weight` (a state dict's key) and leaves
 * `conv.weight`. A path equal to the prefix (a tensor selected itself) keeps its last segment as its name.
 */
export function pathBelow(path: KeyPath, prefix: string): KeyPath | undefined {
  if (prefix === "") return path;
  const full = path.map(String).join(".");
  if (full === prefix) return path.slice(-1);
  if (!full.startsWith(`${prefix}.`)) return undefined;
  let end = -1;
  for (let i = 0; i < path.length; i++) {
    const segment = String(path[i]);
    const start = end + 1;
    end = start + segment.length;
    if (end === prefix.length) return path.slice(i + 1);
    if (end > prefix.length) return [segment.slice(prefix.length - start + 1), ...path.slice(i + 1)];
  }
  return undefined;
}
