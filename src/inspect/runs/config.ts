import { parse } from "yaml";
import { ReaderError } from "../../reader/errors.js";
import { isAbsolute, join } from "../../reader/posixPath.js";
import type { TreeFiles } from "../treeFiles.js";

/**
 * The few keys of a detectron2/Trackron-style YAML config that decide a resume: where the run writes, which
 * weights `MODEL.WEIGHTS` loads, and where training ends.
 */
export interface TrainingConfig {
  readonly file: string;
  readonly outputDir: string | undefined;
  readonly modelWeights: string | undefined;
  readonly maxIter: number | undefined;
}

function get(node: unknown, path: readonly string[]): unknown {
  let current = node;
  for (const key of path) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

export function readTrainingConfig(file: string, fs: TreeFiles): TrainingConfig {
  const text = fs.readText(file);
  if (text === undefined) {
    const code = fs.exists(file) ? "io-error" : "file-not-found";
    throw new ReaderError(code, "cannot read the config", { file });
  }
  let document: unknown;
  try {
    document = parse(text);
  } catch (error) {
    throw new ReaderError(
      "not-a-checkpoint",
      `cannot read the config: ${(error as Error).message.split("\n")[0]}`,
      { file },
    );
  }
  const string = (v: unknown) => (typeof v === "string" ? v : undefined);
  const maxIter = get(document, ["SOLVER", "MAX_ITER"]);
  return {
    file,
    outputDir: string(get(document, ["OUTPUT_DIR"])),
    modelWeights: string(get(document, ["MODEL", "WEIGHTS"])),
    maxIter: typeof maxIter === "number" && Number.isInteger(maxIter) ? maxIter : undefined,
  };
}

/** The config the run was started with, when it sits in the run dir (detectron2 writes `config.yaml` there). */
export function findRunConfig(runDir: string, fs: TreeFiles): string | undefined {
  for (const name of ["config.yaml", "config.yml"]) {
    const path = join(runDir, name);
    if (fs.exists(path)) return path;
  }
  return undefined;
}

/** Resolves a config path value the way the training script would: relative to the working directory. */
export function resolveConfigPath(value: string, cwd: string): string {
  return isAbsolute(value) ? value : join(cwd, value);
}
