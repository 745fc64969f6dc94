import { ReaderError } from "../reader/errors.js";

/** The `ckpt.error/1` contract: what an unusable input looks like to a machine. */
export interface ErrorReport {
  readonly schema: "ckpt.error/1";
  readonly file: string;
  readonly code: string;
  readonly message: string;
  readonly next?: string;
}

/** Any failure as a report: reader errors keep their code; anything else is a bug of ours, said plainly. */
export function errorReport(file: string, error: unknown): ErrorReport {
  if (error instanceof ReaderError) {
    return { schema: "ckpt.error/1", file, code: error.code, message: error.message, next: error.nextStep };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    schema: "ckpt.error/1",
    file,
    code: "internal-error",
    message: `ckpt failed unexpectedly: ${message}`,
    next: "please report this with the file if you can; CKPT_DEBUG=1 shows the stack",
  };
}

/** One line for people: file, problem, code, what to do. */
export function formatErrorLine(report: ErrorReport): string {
  return `ckpt: ${report.file}: ${report.message} [${report.code}]${report.next ? `. Next: ${report.next}` : ""}`;
}
