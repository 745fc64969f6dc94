import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Writes `bytes` to `path` so that a reader sees either the old file or the whole new one, never a part: a
 * temp file beside the target, fsynced, renamed over it, then the directory fsynced so the rename survives a
 * crash. On any failure the temp file is removed and the target is untouched.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const temp = join(dirname(path), `.${basename(path)}.ckpt-tmp-${process.pid}-${Date.now()}`);
  const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  let fd: number | undefined;
  try {
    fd = openSync(temp, "wx", 0o644);
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  syncDirectory(dirname(path));
}

/** fsync a directory so a rename in it is durable (best effort: some filesystems refuse). */
export function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not supported here (e.g. some network filesystems); the rename itself is still atomic.
  }
}
