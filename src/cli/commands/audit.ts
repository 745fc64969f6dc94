import { writeFileSync } from "node:fs";
import type { Severity } from "../../inspect/findings.js";
import type { AuditOptions } from "../../inspect/runs/audit.js";
import { auditExitCode } from "../../inspect/runs/audit.js";
import { audit, auditStreamed } from "../../inspect/runs/node.js";
import type { VerifyMode } from "../../inspect/runs/plan.js";
import { auditRemote } from "../../inspect/runs/remoteRuns.js";
import { ReaderError } from "../../reader/errors.js";
import { isRemotePath } from "../../reader/remote/location.js";
import type { Transfer } from "../../reader/remote/protocol.js";
import { errorReport, formatErrorLine } from "../errors.js";
import type { Output } from "../output.js";
import { refuseRemote } from "../remote.js";
import { renderAuditHtml } from "../render/auditHtml.js";
import { renderAuditText } from "../render/auditText.js";
import { JsonObjectStream, writeJson } from "../render/json.js";
import { transferLine } from "../transfer.js";

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
    // Erased when done: the counter is for watching, not for the scrollback.
    process.stderr.write(done === total ? "\r\u001b[K" : `\rckpt audit: ${done}/${total}`);
  };
}

/**
 * `audit --json` of local roots: each run is written as it is planned and then dropped, so memory does not
 * grow with the tree. The text table and the HTML page lay out every run at once and keep the whole report.
 * An error after the first run is out cannot take the JSON back: the output stops short (not valid JSON), the
 * error goes to stderr, and the exit code is 2.
 */
async function streamJson(
  roots: string[],
  auditOptions: AuditOptions,
  options: AuditCommandOptions,
  io: Output,
): Promise<number> {
  const json = new JsonObjectStream(io.out);
  let begun = false;
  try {
    const outline = await auditStreamed(roots, auditOptions, {
      begin: (head) => {
        begun = true;
        json.field("schema", head.schema);
        json.field("roots", head.roots);
        json.beginArray("runs");
      },
      run: (plan) => json.item(plan),
    });
    json.endArray();
    json.field("files", outline.files);
    json.field("summary", outline.summary);
    json.end();
    return auditExitCode(outline, options.failOn);
  } catch (error) {
    if (!begun) throw error;
    json.abandon();
    io.err(`${formatErrorLine(errorReport(roots.join(" "), error))}\n`);
    return 2;
  }
}

export async function runAudit(roots: string[], options: AuditCommandOptions, io: Output): Promise<number> {
  try {
    const onProgress = progress();
    const auditOptions = {
      verify: options.verify,
      jobs: options.jobs,
      ...(onProgress ? { onProgress } : {}),
    };
    const remote = roots.find(isRemotePath);
    // One remote prefix, alone: mixing it with local roots would make one report of two trees.
    if (remote !== undefined && roots.length > 1)
      refuseRemote(roots, "audit", "takes a remote prefix alone: audit it and the local roots separately");
    if (options.json && !options.html && remote === undefined)
      return await streamJson(roots, auditOptions, options, io);
    const report =
      remote !== undefined ? await auditRemote(remote, auditOptions) : await audit(roots, auditOptions);
    if (options.html) {
      writeFileSync(options.html, renderAuditHtml(report, roots));
      // On stderr: stdout stays the table or the JSON, whichever was asked for.
      io.err(`ckpt audit: wrote ${options.html}\n`);
    }
    if (options.json) writeJson(report, io.out);
    else {
      io.out(renderAuditText(report, io.style, roots));
      if ("transfer" in report) io.out(transferLine(report.transfer as Transfer));
    }
    return auditExitCode(report, options.failOn);
  } catch (error) {
    if (process.env.CKPT_DEBUG && !(error instanceof ReaderError)) console.error(error);
    const report = errorReport(roots.join(" "), error);
    if (options.json) writeJson(report, io.out);
    else io.err(`${formatErrorLine(report)}\n`);
    return 2;
  }
}
