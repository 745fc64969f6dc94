import { attentionText, summaryLine } from "../../cli/render/auditSummary.js";
import { renderResumePlanText } from "../../cli/render/resumePlanText.js";
import { fixFor, runVerdict, topProblem } from "../../cli/render/runAdvice.js";
import { TIMELINE_HEIGHT, TIMELINE_WIDTH, timelineMarks, VERDICT_COLORS } from "../../cli/render/timeline.js";
import { PLAIN } from "../../cli/style.js";
import type { AuditReport } from "../../inspect/runs/audit.js";
import type { ResumePlan } from "../../inspect/runs/plan.js";
import { h, section, svg } from "../dom.js";

/**
 * What `ckpt audit` and `ckpt resume-plan` say of a dropped folder: the summary line, then each run with its
 * verdict, its timeline (the audit HTML report's geometry, `timeline.ts`), the fix, and its whole plan in the
 * wording `resume-plan` prints (`renderResumePlanText`).
 */
function timeline(plan: ResumePlan, label: string): Element {
  const marks = timelineMarks(plan);
  if (marks.length === 0) return h("p", { class: "muted" }, "no checkpoint carries a counter");
  return svg(
    "svg",
    {
      class: "timeline",
      width: "100%",
      viewBox: `0 0 ${TIMELINE_WIDTH} ${TIMELINE_HEIGHT}`,
      preserveAspectRatio: "xMinYMid meet",
      role: "img",
      "aria-label": `checkpoints of ${label}`,
    },
    svg("line", { x1: 20, y1: 28, x2: TIMELINE_WIDTH - 20, y2: 28, stroke: "#bbb" }),
    ...marks.map((m) =>
      svg(
        "g",
        { "data-file": m.file, "data-status": m.status, "data-verdict": m.verdict },
        svg("title", {}, m.title),
        svg("circle", {
          cx: m.x.toFixed(1),
          cy: 28,
          r: 7,
          fill: m.color,
          ...(m.choice ? { stroke: "#1565c0", "stroke-width": 3 } : {}),
        }),
        m.pointer
          ? svg("path", { d: `M ${m.x.toFixed(1)} 6 l -5 -6 h 10 z`, fill: "#1565c0", class: "pointer-mark" })
          : null,
        svg("text", { x: m.x.toFixed(1), y: 52, "text-anchor": "middle" }, String(m.counter)),
      ),
    ),
  );
}

function run(plan: ResumePlan, label: string): HTMLElement {
  const verdict = runVerdict(plan);
  const top = topProblem(plan);
  const fix = fixFor(plan, label);
  const problems = plan.findings.filter((f) => f.severity !== "info");
  return h(
    "div",
    { class: "run", "data-run": label, "data-verdict": verdict },
    h(
      "div",
      { class: "run-head" },
      h("b", { class: "path", title: label }, label),
      h("span", { class: "verdict" }, verdict),
      h("span", { class: "muted" }, plan.conventionLabel),
      plan.choice
        ? h(
            "span",
            null,
            `resumes from ${plan.choice.file}`,
            plan.choice.resumeAt !== null ? ` at ${plan.choice.resumeAt}` : "",
          )
        : null,
      plan.pointer ? h("span", { class: "muted" }, `pointer ${plan.pointer.status}`) : null,
    ),
    top ? h("p", { class: `problem ${top.severity}` }, top.message) : null,
    timeline(plan, label),
    problems.length > 1
      ? h("ul", { class: "findings" }, ...problems.map((f) => h("li", { class: f.severity }, f.message)))
      : null,
    fix ? h("p", { class: "fix" }, "Fix: ", h("code", null, fix)) : null,
    h(
      "details",
      { class: "plan" },
      h("summary", null, "resume-plan"),
      h("pre", null, renderResumePlanText({ ...plan, runDir: label }, [], PLAIN)),
    ),
  );
}

/** `root`: the folder's name, which run directories (absolute in the folder's tree) are shown under. */
export function renderAudit(report: AuditReport, root: string): HTMLElement {
  const label = (dir: string) => (dir === "/" ? root : `${root}${dir}`);
  const names = new Map(
    [...report.runs.map((r) => r.runDir), ...report.files.map((f) => f.file)].map((dir) => [
      dir,
      { label: label(dir), path: label(dir) },
    ]),
  );
  const attention = attentionText(report, names);
  const legend = Object.entries(VERDICT_COLORS).map(([name, color]) => {
    const dot = h("i");
    dot.style.background = color;
    return h("span", null, dot, name);
  });
  return section(
    "Audit",
    h("p", { class: "summary" }, summaryLine(report.summary)),
    attention ? h("p", { class: "attention" }, attention) : null,
    h("p", { class: "legend" }, ...legend, h("span", null, "▼ pointer target, blue ring: the plan's choice")),
    h("div", { class: "runs" }, ...report.runs.map((plan) => run(plan, label(plan.runDir)))),
    report.files.length > 0
      ? h(
          "table",
          { class: "loose" },
          h(
            "thead",
            null,
            h("tr", null, ...["checkpoint file", "format", "status", "verdict"].map((t) => h("th", null, t))),
          ),
          h(
            "tbody",
            null,
            ...report.files.map((f) =>
              h(
                "tr",
                null,
                h("td", { class: "path" }, label(f.file)),
                h("td", null, f.format ?? "-"),
                h("td", null, f.status),
                h("td", null, f.verdict ?? "-"),
              ),
            ),
          ),
        )
      : null,
  );
}
