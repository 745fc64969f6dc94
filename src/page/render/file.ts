import { formatBytes, formatCount } from "../../cli/format.js";
import { formatLine, partLines, resumeLines } from "../../cli/render/inspectText.js";
import { weightsOnlyText } from "../../cli/render/weightsOnlyText.js";
import { PLAIN } from "../../cli/style.js";
import type { ScanReport } from "../../inspect/security/report.js";
import { type Child, h, section } from "../dom.js";
import type { FileView } from "../protocol.js";
import { type TensorTable, tensorTable } from "./tensorTable.js";
import { structureTree } from "./tree.js";

/** Verdicts coloured as in the audit HTML report (`auditHtml.ts`). */
const SECURITY_CLASS: Record<ScanReport["verdict"], string> = {
  clean: "good",
  framework: "good",
  unknown: "warn",
  dangerous: "bad",
  inconclusive: "bad",
};

export interface RenderedFile {
  readonly element: HTMLElement;
  readonly table: TensorTable | undefined;
}

function facts(rows: ReadonlyArray<readonly [string, Child]>): HTMLElement {
  return h(
    "dl",
    { class: "facts" },
    ...rows.flatMap(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
  );
}

function verdicts(view: FileView): HTMLElement {
  const { inspect, scan } = view;
  const rows: Array<readonly [string, Child]> = [];
  if (inspect.resume && inspect.convention) {
    const [conventionLine, resumeLine, ...rest] = resumeLines(inspect, PLAIN);
    rows.push(["Convention", (conventionLine ?? "").replace(/^Convention\s+/, "")]);
    rows.push([
      "Resume",
      h(
        "span",
        null,
        h(
          "b",
          { class: `verdict v-${inspect.resume.verdict}`, "data-verdict": inspect.resume.verdict },
          inspect.resume.verdict,
        ),
        (resumeLine ?? "").replace(/^Resume\s+\S+/, ""),
        ...rest.map((line) => h("div", { class: "muted" }, line.trim())),
      ),
    ]);
  }
  rows.push([
    "Security",
    h(
      "span",
      null,
      h(
        "b",
        { class: `security ${SECURITY_CLASS[scan.verdict]}`, "data-verdict": scan.verdict },
        scan.verdict,
      ),
      `; ${weightsOnlyText(scan.weightsOnly, { detail: true })}`,
    ),
  ]);
  return facts(rows);
}

/**
 * One row per distinct global and record, with how many times the pickle names it: a pickle written without
 * memoising names `_rebuild_tensor_v2` once per tensor (200,000 rows, and a spread that overflows the stack).
 */
function globalsTable(scan: ScanReport): HTMLElement | null {
  if (scan.globals.length === 0) return null;
  const rows = new Map<string, { global: ScanReport["globals"][number]; count: number }>();
  for (const g of scan.globals) {
    const key = `${g.module}.${g.name}\u0000${g.record}`;
    const row = rows.get(key);
    if (row) row.count++;
    else rows.set(key, { global: g, count: 1 });
  }
  const body = h("tbody");
  for (const { global: g, count } of rows.values()) {
    body.appendChild(
      h(
        "tr",
        { "data-class": g.class },
        h("td", null, h("code", null, `${g.module}.${g.name}`)),
        h("td", { class: `g-${g.class}` }, g.class),
        h("td", null, g.reason),
        h("td", { class: "muted" }, `${g.record} @${g.offset}${count > 1 ? ` (and ${count - 1} more)` : ""}`),
      ),
    );
  }
  return h(
    "table",
    { class: "globals" },
    h("thead", null, h("tr", null, ...["global", "class", "why", "where"].map((t) => h("th", null, t)))),
    body,
  );
}

function findings(view: FileView): HTMLElement | null {
  const all = view.inspect.findings;
  if (all.length === 0) return null;
  return section(
    "Findings",
    h(
      "ul",
      { class: "findings" },
      ...all.map((f) => h("li", { class: f.severity }, h("b", null, f.code), `: ${f.message}`)),
    ),
  );
}

function bar(share: number): HTMLElement {
  const fill = h("i");
  fill.style.width = `${Math.max(0, Math.min(100, share * 100)).toFixed(1)}%`;
  return h("span", { class: "bar" }, fill);
}

function sizes(view: FileView): HTMLElement | null {
  const { summary } = view.inspect;
  const dtypes = Object.entries(summary.byDtype);
  if (dtypes.length === 0) return null;
  const total = dtypes.reduce((n, [, d]) => n + d.bytes, 0) || 1;
  const parts = summary.parts.reduce((n, p) => n + p.bytes, 0) || 1;
  return section(
    "Sizes",
    h(
      "div",
      { class: "sizes" },
      h(
        "table",
        { class: "parts" },
        h("thead", null, h("tr", null, ...["part", "tensors", "bytes", ""].map((t) => h("th", null, t)))),
        h(
          "tbody",
          null,
          ...summary.parts.map((p, i) =>
            h(
              "tr",
              { "data-part": p.part },
              h(
                "td",
                { title: partLines(summary.parts)[i]?.trim() ?? "" },
                p.part,
                p.key && p.key !== "(root)" ? h("span", { class: "muted" }, ` ${p.key}`) : null,
              ),
              h("td", { class: "num" }, String(p.tensors)),
              h("td", { class: "num" }, formatBytes(p.bytes)),
              h("td", null, bar(p.bytes / parts)),
            ),
          ),
        ),
      ),
      h(
        "table",
        { class: "dtypes" },
        h(
          "thead",
          null,
          h("tr", null, ...["dtype", "tensors", "elements", "bytes", ""].map((t) => h("th", null, t))),
        ),
        h(
          "tbody",
          null,
          ...dtypes.map(([dtype, d]) =>
            h(
              "tr",
              { "data-dtype": dtype },
              h("td", null, dtype),
              h("td", { class: "num" }, String(d.tensors)),
              h("td", { class: "num" }, formatCount(d.elements)),
              h("td", { class: "num" }, formatBytes(d.bytes)),
              h("td", null, bar(d.bytes / total)),
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "muted" }, ...partLines(summary.parts).map((line) => h("div", null, line))),
  );
}

/** One file's report, in the order `ckpt inspect` prints it. */
export function renderFile(view: FileView, ms: number, requestHash: (index: number) => void): RenderedFile {
  const { inspect, scan } = view;
  const s = inspect.summary;
  const head = facts([
    ["Format", h("span", { class: "format" }, formatLine(inspect))],
    ...(inspect.pointer
      ? [
          [
            "Points to",
            `${inspect.pointer.target} ${inspect.pointer.targetExists ? "(exists)" : "(not beside it here)"}`,
          ] as const,
        ]
      : [
          [
            "Tensors",
            h(
              "span",
              { class: "tensor-count", "data-count": String(s.tensorCount) },
              `${s.tensorCount} tensor${s.tensorCount === 1 ? "" : "s"}, ${formatCount(s.elementCount)} elements, ${formatBytes(s.storageBytes)} of storage`,
            ),
          ] as const,
        ]),
  ]);
  const table = inspect.tensors.length > 0 ? tensorTable(inspect.tensors, requestHash) : undefined;
  const element = h(
    "article",
    { class: "file" },
    h(
      "h2",
      { class: "name" },
      inspect.file,
      h(
        "span",
        { class: "muted read", "data-bytes": String(view.read.bytes), "data-reads": String(view.read.reads) },
        `  ${formatBytes(inspect.sizeBytes)} · read in ${Math.round(ms)} ms, ${formatBytes(view.read.bytes)} of it in ${view.read.reads} slices`,
      ),
    ),
    head,
    verdicts(view),
    globalsTable(scan),
    findings(view),
    sizes(view),
    table ? section("Tensors", table.element) : null,
    inspect.tree ? section("Structure", structureTree(inspect.tree)) : null,
  );
  return { element, table };
}
