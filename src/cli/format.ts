/** Number and size formatting shared by the human renderers. */

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** 243 -> "243", 25_600_000 -> "25.6M": how ML people quote parameter counts. */
export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  const units: Array<[number, string]> = [
    [1e12, "T"],
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "K"],
  ];
  for (const [size, suffix] of units) {
    if (n >= size) {
      const value = n / size;
      return `${value.toFixed(value < 10 ? 2 : 1).replace(/\.?0+$/, "")}${suffix}`;
    }
  }
  return String(n);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

export { formatKeyPath as formatPath } from "../inspect/walk.js";
