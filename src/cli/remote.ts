import { ReaderError } from "../reader/errors.js";
import { isRemotePath } from "../reader/remote/location.js";

/**
 * The commands that take local paths only, for now, say so for a remote one instead of looking for a local
 * file named `s3:`: `diff`, run analysis (`resume-plan`, `audit`) and `repair`, which writes beside its input.
 * @throws ReaderError `remote-unsupported`
 */
export function refuseRemote(paths: readonly string[], command: string): void {
  const remote = paths.find(isRemotePath);
  if (remote === undefined) return;
  throw new ReaderError(
    "remote-unsupported",
    `ckpt ${command} reads local paths only: ckpt inspect and ckpt scan read remote ones`,
    { file: remote },
  );
}
