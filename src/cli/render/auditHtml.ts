import type { AuditReport } from "../../inspect/runs/audit.js";
import type { CandidateReport } from "../../inspect/runs/candidates.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { runLabel, runVerdict, summaryLine } from "./auditText.js";

/**
 * One self-contained HTML file (no network, no CDN, no script): the runs table and, per run, a timeline of its
 * checkpoints over the counter, coloured by verdict, with the pointer's target and the plan's choice marked.
 */
const COLORS: Record<string, string> = {
  resumable: "#2e7d32",
  incomplete: "#f9a825",
  "weights-only": "#c62828",
  "training-state-only": "#c62828",
  "not-a-training-checkpoint": "#757575",
  broken: "#000000",
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function colorOf(c: CandidateReport): string {
  return c.status !== "ok"
    ? (COLORS.broken as string)
    : (COLORS[c.verdict ?? "not-a-training-checkpoint"] ?? "#757575");
}

function timeline(plan: ResumePlan): string {
  const points = plan.candidates.filter((c) => c.counter !== null);
  const width = 640;
  const height = 56;
  if (points.length === 0) return `<p class="muted">no checkpoint carries a counter</p>`;
  const counters = points.map((c) => c.counter as number);
  const min = Math.min(0, ...counters);
  const max = Math.max(...counters, min + 1);
  const x = (v: number) => 20 + ((v - min) / (max - min)) * (width - 40);
  const pointerTarget = plan.pointer?.target ?? null;
  const marks = points
    .map((c) => {
      const cx = x(c.counter as number).toFixed(1);
      const isPointer =
        pointerTarget !== null && (pointerTarget === c.file || pointerTarget.startsWith(`${c.file}/`));
      const isChoice = plan.choice?.file === c.file;
      const title = `${c.file}: ${c.status === "ok" ? c.verdict : c.status} at ${c.counter}`;
      return [
        `<g data-file="${escapeHtml(c.file)}" data-status="${escapeHtml(c.status)}" data-verdict="${escapeHtml(c.verdict ?? "")}">`,
        `<title>${escapeHtml(title)}</title>`,
        `<circle cx="${cx}" cy="28" r="7" fill="${colorOf(c)}"${isChoice ? ` stroke="#1565c0" stroke-width="3"` : ""}/>`,
        isPointer ? `<path d="M ${cx} 6 l -5 -6 h 10 z" fill="#1565c0" class="pointer-mark"/>` : "",
        `<text x="${cx}" y="52" text-anchor="middle">${c.counter}</text>`,
        "</g>",
      ].join("");
    })
    .join("");
  return `<svg class="timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="checkpoints of ${escapeHtml(plan.runDir)}"><line x1="20" y1="28" x2="${width - 20}" y2="28" stroke="#bbb"/>${marks}</svg>`;
}

export function renderAuditHtml(report: AuditReport): string {
  const rows = report.runs
    .map((plan) => {
      const newest = plan.candidates[0];
      const verdict = runVerdict(plan);
      const problems = plan.findings
        .filter((f) => f.severity !== "info")
        .map((f) => `<li class="${f.severity}">${escapeHtml(f.message)}</li>`);
      return `<tr class="run" data-verdict="${escapeHtml(verdict)}">
  <td>${escapeHtml(runLabel(report, plan.runDir))}</td><td>${escapeHtml(plan.convention)}</td>
  <td>${escapeHtml(newest ? `${newest.file} (${newest.status})` : "-")}</td><td>${newest?.counter ?? "-"}</td>
  <td class="verdict">${escapeHtml(verdict)}</td><td>${escapeHtml(plan.pointer?.status ?? "-")}</td>
  <td>${plan.choice ? `resume from <b>${escapeHtml(plan.choice.file)}</b> at ${plan.choice.resumeAt ?? "?"}` : "-"}</td>
</tr>
<tr class="detail"><td colspan="7">${timeline(plan)}${problems.length > 0 ? `<ul>${problems.join("")}</ul>` : ""}</td></tr>`;
    })
    .join("\n");
  const legend = Object.entries(COLORS)
    .map(([name, color]) => `<span><i style="background:${color}"></i>${name}</span>`)
    .join(" ");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ckpt audit</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}.summary{font-weight:600;margin:8px 0 16px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
tr.detail td{border-bottom:2px solid #ddd}.verdict{font-weight:600}
tr[data-verdict=resumable] .verdict{color:#2e7d32}tr[data-verdict="weights-only"] .verdict,tr[data-verdict="none usable"] .verdict{color:#c62828}
tr[data-verdict=incomplete] .verdict{color:#b28704}
li.error{color:#c62828}li.warning{color:#8a6d00}.muted{color:#888}
.legend span{margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
svg text{font-size:10px;fill:#555}
</style></head>
<body>
<h1>ckpt audit</h1>
<p>Roots: ${report.roots.map(escape).join(", ")}</p>
<p class="summary">${escapeHtml(summaryLine(report.summary))}</p>
<p class="legend">${legend} <span>▼ pointer target, blue ring: the plan's choice</span></p>
<table><thead><tr><th>run</th><th>convention</th><th>newest checkpoint</th><th>counter</th><th>verdict</th><th>pointer</th><th>plan</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
