/**
 * POSIX path arithmetic without `node:path`, for code that must run in a browser too: every path inside ckpt's
 * analysis is a POSIX path in some tree (the file system, an object store's keys, a dropped folder), so these
 * few functions behave as `path.posix` does for the cases ckpt uses.
 */
export const SEP = "/";

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** Joins and normalises (`.` and empty segments dropped, `..` applied; never climbs above `/`). */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p !== "").join("/");
  return normalize(joined);
}

export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = isAbsolute(path);
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
    } else out.push(segment);
  }
  const body = out.join("/");
  return absolute ? `/${body}` : body || ".";
}

/** `path.posix.resolve(base, ...paths)`, where `base` is absolute (ckpt resolves user input once, at the edge). */
export function resolve(base: string, ...paths: string[]): string {
  let out = base;
  for (const p of paths) out = isAbsolute(p) ? p : `${out}/${p}`;
  return normalize(out);
}

export function dirname(path: string): string {
  const normal = normalize(path);
  const at = normal.lastIndexOf("/");
  if (at < 0) return ".";
  return at === 0 ? "/" : normal.slice(0, at);
}

export function basename(path: string): string {
  const trimmed = path.endsWith("/") && path.length > 1 ? path.slice(0, -1) : path;
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** `path.posix.relative(from, to)` for two absolute (or two relative) paths. */
export function relative(from: string, to: string): string {
  const segments = (p: string) =>
    normalize(p)
      .split("/")
      .filter((s) => s !== "" && s !== ".");
  const a = segments(from);
  const b = segments(to);
  let common = 0;
  while (common < a.length && common < b.length && a[common] === b[common]) common++;
  return [...a.slice(common).map(() => ".."), ...b.slice(common)].join("/");
}
