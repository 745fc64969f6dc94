import { CachedTree } from "../../reader/cachedTree.js";
import { ReaderError } from "../../reader/errors.js";
import { openLocation, type RemoteTreeSource } from "../../reader/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { type TreeFiles, treeFiles } from "../treeFiles.js";
import { type AuditOptions, type AuditReport, auditTree } from "./audit.js";
import { type PlanOptions, planRun, type ResumePlan } from "./plan.js";

/**
 * Run analysis of a remote prefix (an S3 prefix, a Hub repo's directory): the same planner and audit as for
 * a local directory, over the remote tree (listings and pointer files read remotely, checkpoints by ranges).
 * The tree's root is the URL; paths in the report are URLs, so that they say where each file is.
 */

/** `rel` (a path in the remote tree, "." for its root) as a URL under `url`. */
function atUrl(url: string, rel: string): string {
  const base = url.replace(/\/+$/, "");
  return rel === "." || rel === "" ? base : `${base}/${rel}`;
}

/** The plan's own paths (its directory, the config it read) as URLs; candidates stay relative to the run. */
function located(url: string, plan: ResumePlan): ResumePlan {
  return {
    ...plan,
    runDir: atUrl(url, plan.runDir),
    config: plan.config === null ? null : { ...plan.config, file: atUrl(url, plan.config.file) },
  };
}

function remoteDirectory(url: string, command: string): RemoteTreeSource {
  const opened = openLocation(url);
  if (opened.kind === "file") {
    opened.source.close();
    throw new ReaderError(
      "not-a-run-directory",
      `a file, not a run directory: ckpt ${command} wants the prefix a training run writes to`,
      { file: url },
    );
  }
  return opened.tree as RemoteTreeSource;
}

/** Runs `use` on the remote directory at `url`, with its files cached as an audit reads them; then closes it. */
async function withRemoteDirectory<T>(
  url: string,
  command: string,
  use: (fs: TreeFiles) => Promise<T>,
): Promise<T & { readonly transfer: Transfer }> {
  const tree = remoteDirectory(url, command);
  try {
    const result = await use(treeFiles(new CachedTree(tree)));
    return { ...result, transfer: tree.totals() };
  } finally {
    tree.close();
  }
}

export function planRemoteResume(
  url: string,
  options: PlanOptions,
): Promise<ResumePlan & { readonly transfer: Transfer }> {
  return withRemoteDirectory(url, "resume-plan", async (fs) =>
    located(url, await planRun("", { ...options, fs, displayDir: url })),
  );
}

export function auditRemote(
  url: string,
  options: AuditOptions,
): Promise<AuditReport & { readonly transfer: Transfer }> {
  // One thread: the remote tree's reads go through this process's I/O worker.
  return withRemoteDirectory(url, "audit", async (fs) => {
    const report = await auditTree([""], { ...options, fs });
    return {
      ...report,
      roots: [url],
      runs: report.runs.map((run) => located(url, run)),
      files: report.files.map((file) => ({ ...file, file: atUrl(url, file.file) })),
    };
  });
}
