import { ReaderError } from "../reader/errors.js";
import { isRemotePath } from "../reader/remote/location.js";

/**
 * The commands and options that take local paths only say so for a remote one instead of looking for a local
 * file named `s3:`: `repair` (it writes beside its input), `resume-plan --write`, and an audit of a remote
 * prefix together with other roots.
 * @throws ReaderError `remote-unsupported`
 */
export function refuseRemote(
  paths: readonly string[],
  command: string,
  why = "takes local paths only: ckpt inspect, scan, diff, resume-plan and audit read remote ones",
): void {
  const remote = paths.find(isRemotePath);
  if (remote === undefined) return;
  throw new ReaderError("remote-unsupported", `ckpt ${command} ${why}`, { file: remote });
}
