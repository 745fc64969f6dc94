import { formatBytes, formatShape } from "../../cli/format.js";
import { h, section } from "../dom.js";
import type { FolderView } from "../protocol.js";
import { renderAudit } from "./runs.js";

/** A dropped folder: what the sharded readers make of it, and its files, each of which opens on a click. */
export function renderFolder(view: FolderView, ms: number, openFile: (path: string) => void): HTMLElement {
  const sharded = view.sharded;
  const files = h(
    "table",
    { class: "files" },
    h("thead", null, h("tr", null, h("th", null, "file"), h("th", null, "bytes"))),
    h(
      "tbody",
      null,
      ...view.files.map((file) => {
        const button = h("button", { type: "button", class: "link", "data-path": file.path }, file.path);
        button.addEventListener("click", () => openFile(file.path));
        return h("tr", null, h("td", null, button), h("td", { class: "num" }, formatBytes(file.size)));
      }),
    ),
  );
  return h(
    "article",
    { class: "folder" },
    h(
      "h2",
      { class: "name" },
      `${view.name}/`,
      h("span", { class: "muted" }, `  ${view.files.length} files · read in ${Math.round(ms)} ms`),
    ),
    view.audit ? renderAudit(view.audit, view.name) : null,
    view.auditError && view.auditError.code !== "no-checkpoints"
      ? h("p", { class: "error" }, `Not audited: ${view.auditError.message} [${view.auditError.code}]`)
      : null,
    sharded
      ? section(
          `Sharded checkpoint: ${sharded.kind}`,
          h(
            "p",
            { class: "tensor-count", "data-count": String(sharded.tensors.length) },
            `${sharded.tensors.length} tensors`,
          ),
          sharded.findings.length > 0
            ? h(
                "ul",
                { class: "findings" },
                ...sharded.findings.map((f) =>
                  h(
                    "li",
                    { class: f.severity },
                    h("b", null, f.code),
                    `: ${JSON.stringify({ ...f, code: undefined, severity: undefined })}`,
                  ),
                ),
              )
            : h("p", { class: "good" }, "complete: every shard the metadata names is there"),
          h(
            "table",
            { class: "sharded" },
            h("thead", null, h("tr", null, ...["tensor", "dtype", "shape"].map((t) => h("th", null, t)))),
            h(
              "tbody",
              null,
              ...sharded.tensors
                .slice(0, 2000)
                .map((t) =>
                  h(
                    "tr",
                    null,
                    h("td", null, t.name),
                    h("td", null, t.dtype),
                    h("td", null, formatShape(t.shape)),
                  ),
                ),
            ),
          ),
          sharded.tensors.length > 2000
            ? h("p", { class: "muted" }, `first 2000 of ${sharded.tensors.length}`)
            : null,
        )
      : null,
    view.shardedError
      ? h(
          "p",
          { class: "error" },
          `Not readable as a sharded checkpoint: ${view.shardedError.message} [${view.shardedError.code}]`,
        )
      : null,
    section("Files", h("p", { class: "muted" }, "Click a file to inspect it."), files),
  );
}
