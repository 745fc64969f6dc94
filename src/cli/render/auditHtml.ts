import type { AuditReport } from "../../inspect/runs/audit.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { attentionText, auditNames, summaryLine } from "./auditText.js";
import { fixFor, runVerdict, topProblem } from "./runAdvice.js";
import { nameOf, type RunName } from "./runNames.js";
import { TIMELINE_HEIGHT, TIMELINE_WIDTH, timelineMarks, VERDICT_COLORS } from "./timeline.js";

/**
 * One self-contained HTML file (no network, no CDN, no script): the runs table and, per run, a timeline of its
 * checkpoints over the counter, coloured by verdict, with the pointer's target and the plan's choice marked.
 * It fits the window it is opened in: long paths wrap (the whole path is also their hover title), and the
 * timelines are SVGs that scale with the page.
 */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A path with the whole of it as its hover title, which wraps after a "/" or "_" where it can (<wbr>) and
 * anywhere when a piece is still too long for its column.
 */
function pathHtml(path: string): string {
  const pieces = path.split(/(?<=[/_])/).map(escapeHtml);
  return `<span class="path" title="${escapeHtml(path)}">${pieces.join("<wbr>")}</span>`;
}

function timeline(plan: ResumePlan): string {
  const marks = timelineMarks(plan);
  if (marks.length === 0) return `<p class="muted">no checkpoint carries a counter</p>`;
  const body = marks
    .map((m) => {
      const cx = m.x.toFixed(1);
      return [
        `<g data-file="${escapeHtml(m.file)}" data-status="${escapeHtml(m.status)}" data-verdict="${escapeHtml(m.verdict)}">`,
        `<title>${escapeHtml(m.title)}</title>`,
        `<circle cx="${cx}" cy="28" r="7" fill="${m.color}"${m.choice ? ` stroke="#1565c0" stroke-width="3"` : ""}/>`,
        m.pointer ? `<path d="M ${cx} 6 l -5 -6 h 10 z" fill="#1565c0" class="pointer-mark"/>` : "",
        `<text x="${cx}" y="52" text-anchor="middle">${m.counter}</text>`,
        "</g>",
      ].join("");
    })
    .join("");
  const [width, height] = [TIMELINE_WIDTH, TIMELINE_HEIGHT];
  // viewBox and a width of 100%: the timeline scales with the window instead of being 640 px wide.
  return `<svg class="timeline" width="100%" viewBox="0 0 ${width} ${height}" preserveAspectRatio="xMinYMid meet" role="img" aria-label="checkpoints of ${escapeHtml(plan.runDir)}"><line x1="20" y1="28" x2="${width - 20}" y2="28" stroke="#bbb"/>${body}</svg>`;
}

function runRows(plan: ResumePlan, name: RunName): string {
  const verdict = runVerdict(plan);
  const top = topProblem(plan);
  const fix = fixFor(plan, name.path);
  const problems = plan.findings
    .filter((f) => f.severity !== "info")
    .map((f) => `<li class="${f.severity}">${escapeHtml(f.message)}</li>`);
  const choice = plan.choice;
  return `<tr class="run" data-verdict="${escapeHtml(verdict)}">
  <td class="name">${pathHtml(name.label)}</td><td class="convention">${escapeHtml(plan.convention)}</td>
  <td class="name">${choice ? pathHtml(choice.file) : "-"}</td><td>${choice?.resumeAt ?? "-"}</td>
  <td class="verdict">${escapeHtml(verdict)}</td><td>${escapeHtml(plan.pointer?.status ?? "-")}</td>
  <td class="problem ${top?.severity ?? ""}">${top ? escapeHtml(top.message) : "-"}</td>
</tr>
<tr class="detail"><td colspan="7">${timeline(plan)}${problems.length > 1 ? `<ul>${problems.join("")}</ul>` : ""}${fix ? `<p class="fix">Fix: <code>${escapeHtml(fix)}</code></p>` : ""}</td></tr>`;
}

/** `args`: the arguments as typed, which run names are relative to (default: the audited roots). */
export function renderAuditHtml(report: AuditReport, args: readonly string[] = report.roots): string {
  const names = auditNames(report, args);
  const rows = report.runs.map((plan) => runRows(plan, nameOf(names, plan.runDir))).join("\n");
  const legend = Object.entries(VERDICT_COLORS)
    .map(([name, color]) => `<span><i style="background:${color}"></i>${name}</span>`)
    .join(" ");
  const attention = attentionText(report, names);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ckpt audit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:20px}.summary{font-weight:600;margin:8px 0 16px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
.path,code,.problem,.roots{overflow-wrap:anywhere}td.name{min-width:14ch}td.problem{min-width:24ch}
@media (max-width:900px){.convention{display:none}}
tr.detail td{border-bottom:2px solid #ddd}.verdict{font-weight:600}
tr[data-verdict=resumable] .verdict{color:#2e7d32}tr[data-verdict="weights-only"] .verdict,tr[data-verdict="none usable"] .verdict{color:#c62828}
tr[data-verdict=incomplete] .verdict{color:#b28704}
li.error,.problem.error{color:#c62828}li.warning,.problem.warning{color:#8a6d00}.muted{color:#888}
.legend span{margin-right:12px;white-space:nowrap}.legend i{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
svg.timeline{display:block;max-width:1000px;height:auto}svg text{font-size:10px;fill:#555}
.fix code{background:#f3f3f3;padding:1px 4px}
</style></head>
<body>
<h1>ckpt audit</h1>
<p class="roots">Roots: ${report.roots.map(pathHtml).join(", ")}</p>
<p class="summary">${escapeHtml(summaryLine(report.summary))}</p>
${attention ? `<p class="attention">${escapeHtml(attention)}</p>` : ""}
<p class="legend">${legend} <span>▼ pointer target, blue ring: the plan's choice</span></p>
<table><thead><tr><th>run</th><th class="convention">convention</th><th>resumes from</th><th>at</th><th>verdict</th><th>pointer</th><th>problem</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
