/**
 * Every way an input can be unusable, as a stable code. The CLI maps these to exit code 2 and prints the
 * message; tests assert on codes, never on prose.
 */
export type ReaderErrorCode =
  | "file-not-found"
  | "not-a-file"
  | "io-error"
  | "file-changed"
  | "not-a-checkpoint"
  | "empty-file"
  | "zip-truncated"
  | "zip-malformed"
  | "zip-unsupported"
  | "zip-crc-mismatch"
  | "zip-entry-missing"
  | "zip-limit"
  | "pickle-truncated"
  | "pickle-malformed"
  | "pickle-unknown-opcode"
  | "pickle-limit"
  | "legacy-malformed"
  | "legacy-truncated"
  | "tar-unsupported"
  | "safetensors-malformed"
  | "safetensors-truncated"
  | "storage-missing"
  | "unsupported-format"
  | "no-checkpoints"
  | "checkpoint-unreadable"
  | "repair-no-change"
  | "convert-refused"
  | "invalid-shard-size"
  | "output-inside-source"
  | "stale-shards"
  | "sharded-incomplete"
  | "not-a-run-directory"
  | "output-is-input"
  | "output-required"
  | "no-edit-given"
  | "no-counter-in-name"
  | "invalid-counter"
  | "remote-timeout"
  | "remote-forbidden"
  | "remote-not-found"
  | "remote-range-ignored"
  | "remote-short-body"
  | "remote-changed"
  | "remote-error"
  | "remote-unsupported"
  | "pointer-target-missing"
  | "no-chosen-checkpoint"
  | "nothing-selected"
  | "diff-needs-two";

/** What the user should do next, per code: kept here so every error carries a hint without repeating it. */
const NEXT_STEP: Record<ReaderErrorCode, string> = {
  "file-not-found": "check the path",
  "not-a-file": "pass a checkpoint file or a run directory",
  "io-error": "check the file's permissions and the disk",
  "file-changed": "the file is still being written; wait for the writer to finish and retry",
  "not-a-checkpoint": "pass a file written by torch.save, torch.jit.save or safetensors",
  "empty-file": "an empty checkpoint comes from an interrupted save; use an earlier checkpoint",
  "zip-truncated": "use an earlier checkpoint, or wait if a trainer is still writing this one",
  "zip-malformed": "the archive is damaged; use an earlier checkpoint or re-download it",
  "zip-unsupported": "the archive uses a zip feature torch never writes; re-save it with torch.save",
  "zip-crc-mismatch": "a record's bytes were corrupted after writing; use an earlier checkpoint",
  "zip-entry-missing": "the archive lacks a record torch needs; use an earlier checkpoint",
  "zip-limit": "a record is larger than ckpt reads into memory at once; the file may be damaged or hostile",
  "pickle-truncated": "the pickle was cut short; use an earlier checkpoint",
  "pickle-malformed": "the pickle is damaged; use an earlier checkpoint",
  "pickle-unknown-opcode": "the pickle uses an opcode no Python protocol defines; the file is damaged",
  "pickle-limit": "the pickle exceeds a safety limit; it may be hostile, do not torch.load it",
  "legacy-malformed": "the legacy-format file is damaged; use an earlier checkpoint",
  "legacy-truncated": "the legacy-format file was cut short; use an earlier checkpoint",
  "tar-unsupported":
    "this is the tar format of torch <= 0.1.9; load it with an old torch and re-save it with torch.save",
  "safetensors-malformed": "the safetensors header is invalid; re-export the file",
  "safetensors-truncated": "the safetensors file was cut short; re-download or re-export it",
  "storage-missing": "a tensor's storage record is absent; the file is incomplete",
  "unsupported-format": "this format is recognised but not readable by ckpt yet",
  "convert-refused":
    "see the file's parts and dtypes with ckpt inspect FILE --all, then leave the tensor out (--drop NAME) or convert another part (--select KEY)",
  "invalid-shard-size":
    "write the limit as a size, e.g. --max-shard-size 5GB (10^9 bytes, as the Hub counts) or 4GiB",
  "output-inside-source":
    "write the output outside the checkpoint directory: a file added there would be read as part of the checkpoint",
  "stale-shards":
    "write into an empty directory, or remove the old weight files first: a reader would mix them with the new ones",
  "sharded-incomplete":
    "copy the missing or short files back from where the save ran, or convert an earlier checkpoint: ckpt writes nothing from a checkpoint torch could not load whole",
  "repair-no-change":
    "look at the keys the edit would touch (ckpt inspect FILE --all) and give a prefix or key the file has",
  "checkpoint-unreadable":
    "fix the file's permissions or the disk, or wait for the writer to finish, then run again: ckpt moves a pointer only away from bytes it has proven damaged",
  "no-checkpoints":
    "check the path: pass a training run's output tree (OUTPUT_DIR, work_dir, lightning_logs, checkpoint-N dirs) or checkpoint files",
  "not-a-run-directory":
    "pass the directory the run writes to (OUTPUT_DIR, work_dir, output_dir); `ckpt inspect FILE` reads one checkpoint",
  "output-is-input": "name another -o path: ckpt writes a new file and never modifies its input",
  "output-required": "add -o OUT, the file to write: ckpt never modifies its input",
  "no-edit-given":
    "add --set-counter, --counter-from-filename, --strip-prefix, --add-prefix or --drop, or pass a run directory to apply its resume plan",
  "no-counter-in-name": "give the counter yourself: --set-counter NAME=VALUE (e.g. iteration=59999)",
  "invalid-counter": "write it as NAME=INTEGER, e.g. --set-counter iteration=59999",
  "remote-timeout":
    "the server did not answer in time, even after retries; check the URL and the network, or allow longer with CKPT_REMOTE_TIMEOUT=SECONDS",
  "remote-forbidden":
    "check the credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE for s3://, HF_TOKEN for a private or gated hf:// repo",
  "remote-not-found": "check the URL: bucket and key, repo, revision and path, or the server's path",
  "remote-range-ignored":
    "the server does not serve byte ranges; download the file (curl -O URL) and run ckpt on the local copy",
  "remote-short-body":
    "the server sent fewer bytes than it promised; retry, or download the file and run ckpt on the local copy",
  "remote-changed": "the remote file was replaced while being read; run again once it stops changing",
  "remote-error": "the server or the connection failed; retry, and check the URL and the server",
  "remote-unsupported":
    "name a remote file (https://HOST/PATH, s3://BUCKET/KEY, hf://ORG/REPO[@REV]/PATH) or an s3:// or hf:// directory; write outputs to a local path",
  "pointer-target-missing":
    "the pointer names a checkpoint that is not there; pass a checkpoint file, or fix the pointer with ckpt resume-plan --write RUN_DIR",
  "no-chosen-checkpoint":
    "ckpt resume-plan RUN_DIR says why none of the run's checkpoints is usable; pass a checkpoint file instead",
  "nothing-selected":
    "see the keys it has with ckpt inspect FILE, then --select one of them (a dotted key such as model or state_dict_ema)",
  "diff-needs-two":
    "pass two checkpoints (files, sharded directories or run directories), or one with --select-a KEY and --select-b KEY to compare two parts of it",
};

/** An input problem with a stable code, the file it concerns, and a byte offset when one is known. */
export class ReaderError extends Error {
  readonly code: ReaderErrorCode;
  readonly offset: number | undefined;
  file: string | undefined;
  /** A next step that names this input's own way out, in place of the code's general one. */
  private readonly next: string | undefined;

  constructor(
    code: ReaderErrorCode,
    message: string,
    options: { offset?: number; file?: string; next?: string } = {},
  ) {
    super(message);
    this.name = "ReaderError";
    this.code = code;
    this.offset = options.offset;
    this.file = options.file;
    this.next = options.next;
  }

  get nextStep(): string {
    return this.next ?? NEXT_STEP[this.code];
  }
}

export function isReaderError(error: unknown): error is ReaderError {
  return error instanceof ReaderError;
}
