import { writeFileSync } from "node:fs";
import type { Severity } from "../../inspect/findings.js";
import { audit, auditExitCode } from "../../inspect/runs/audit.js";
import type { VerifyMode } from "../../inspect/runs/plan.js";
import { ReaderError } from "../../reader/errors.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { renderAuditHtml } from "../render/auditHtml.js";
import { renderAuditText } from "../render/auditText.js";
import { writeJson } from "../render/json.js";

export interface AuditCommandOptions {
  readonly json: boolean;
  readonly verify: VerifyMode;
  readonly jobs: number;
  readonly failOn: Severity;
  readonly html: string | undefined;
}

/** A one-line progress counter on stderr, only when stderr is a terminal. */
function progress(): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  return (done, total) => {
    process.stderr.write(`\rckpt audit: ${done}/${total}${done === total ? "\n" : ""}`);
  };
}

export async function runAudit(roots: string[], options: AuditCommandOptions, io: Output): Promise<number> {
  try {
    const onProgress = progress();
    const report = await audit(roots, {
      verify: options.verify,
      jobs: options.jobs,
      ...(onProgress ? { onProgress } : {}),
    });
    if (options.html) writeFileSync(options.html, renderAuditHtml(report));
    if (options.json) writeJson(report, io.out);
    else io.out(renderAuditText(report, io.style));
    return auditExitCode(report, options.failOn);
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(roots.join(" "), error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
}
