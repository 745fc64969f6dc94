import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Writes `bytes` to `path` so that a reader sees either the old file or the whole new one, never a part: a
 * temp file beside the target, fsynced, renamed over it, then the directory fsynced so the rename survives a
 * crash. On any failure the temp file is removed and the target is untouched.
 */
export function writeFileAtomic(path: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  writeFileAtomicWith(path, (fd) => {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done);
  });
}

/**
 * Streams a new file into place: `write` fills a temp file beside `path` through its descriptor; the file is
 * then fsynced and renamed over `path`, and the directory fsynced. A failure removes the temp file and leaves
 * `path` as it was: nobody ever sees half a checkpoint.
 */
export function writeFileAtomicWith<T>(path: string, write: (fd: number) => T): T {
  const temp = join(dirname(path), `.${basename(path)}.ckpt-tmp-${process.pid}-${Date.now()}`);
  let fd: number | undefined;
  try {
    fd = openSync(temp, "wx", 0o644);
    const result = write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, path);
    syncDirectory(dirname(path));
    return result;
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
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
