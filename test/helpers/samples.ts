import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** The bundled samples written by real torch (`samples/make_samples.py`), each with its `.truth.json`. */
export const SAMPLES_DIR = join(import.meta.dirname, "..", "..", "samples");

/** Every sample file next to its truth, parsed as `T` (each test declares the truth fields it reads). */
export function findTruths<T>(): Array<{ path: string; truth: T }> {
  if (!existsSync(SAMPLES_DIR)) return [];
  return readdirSync(SAMPLES_DIR, { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".truth.json"))
    .sort()
    .map((name) => ({
      path: join(SAMPLES_DIR, name.slice(0, -".truth.json".length)),
      truth: JSON.parse(readFileSync(join(SAMPLES_DIR, name), "utf8")) as T,
    }))
    .filter(({ path }) => existsSync(path) && statSync(path).isFile());
}
