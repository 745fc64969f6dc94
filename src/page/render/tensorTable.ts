import { formatBytes, formatCount, formatPath, formatShape } from "../../cli/format.js";
import { globFilter, type TensorReport } from "../../inspect/report.js";
import { h } from "../dom.js";
import { virtualList } from "../virtualList.js";

/** What a row's hash cell shows: not asked, being computed, the digest, or why there is none. */
export type HashState =
  | { readonly state: "computing" }
  | { readonly state: "done"; readonly sha256: string; readonly ms: number }
  | { readonly state: "failed"; readonly message: string };

export interface TensorTable {
  readonly element: HTMLElement;
  setHash(index: number, hash: HashState): void;
}

type SortKey = "key" | "dtype" | "shape" | "elements" | "bytes";

interface Row {
  readonly index: number;
  readonly key: string;
  readonly tensor: TensorReport;
  readonly elements: number;
  readonly bytes: number;
}

const ROW_HEIGHT = 24;
const COLUMNS: ReadonlyArray<{ key: SortKey | "storage" | "sha256"; label: string }> = [
  { key: "key", label: "key path" },
  { key: "dtype", label: "dtype" },
  { key: "shape", label: "shape" },
  { key: "elements", label: "elements" },
  { key: "bytes", label: "bytes" },
  { key: "storage", label: "storage" },
  { key: "sha256", label: "sha256" },
];

function compare(a: Row, b: Row, key: SortKey): number {
  switch (key) {
    case "key":
      return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
    case "dtype":
      return a.tensor.dtype < b.tensor.dtype ? -1 : a.tensor.dtype > b.tensor.dtype ? 1 : 0;
    case "shape":
      return a.tensor.shape.length - b.tensor.shape.length || a.elements - b.elements;
    case "elements":
      return a.elements - b.elements;
    case "bytes":
      return a.bytes - b.bytes;
  }
}

/**
 * The tensors of a file as `ckpt inspect` lists them: sortable by column, filtered by the same key glob as
 * `--filter` (`globFilter`), virtualised, with a sha256 per row computed on request in the worker.
 */
export function tensorTable(
  tensors: readonly TensorReport[],
  requestHash: (index: number) => void,
): TensorTable {
  const all: Row[] = tensors.map((tensor, index) => ({
    index,
    key: formatPath(tensor.path),
    tensor,
    elements: tensor.shape.reduce((n, d) => n * d, 1),
    bytes: tensor.storage?.sizeBytes ?? 0,
  }));
  const hashes = new Map<number, HashState>();
  let shown = all;
  let sort: { key: SortKey; descending: boolean } | undefined;

  const hashCell = (row: Row): HTMLElement => {
    const hash = hashes.get(row.index);
    if (!hash) {
      if (!row.tensor.storage) return h("span", { class: "muted" }, "-");
      const button = h(
        "button",
        { class: "hash", type: "button", title: "sha256 of the row-major bytes, as --hash" },
        "hash",
      );
      button.addEventListener("click", () => {
        hashes.set(row.index, { state: "computing" });
        list.refresh();
        requestHash(row.index);
      });
      return button;
    }
    if (hash.state === "computing") return h("span", { class: "muted" }, "hashing…");
    if (hash.state === "failed") return h("span", { class: "error", title: hash.message }, hash.message);
    return h("code", { class: "sha256", title: `${hash.sha256} (${Math.round(hash.ms)} ms)` }, hash.sha256);
  };

  const renderRow = (i: number): HTMLElement => {
    const row = shown[i] as Row;
    const t = row.tensor;
    const storage = t.storage
      ? `${t.storage.key}${t.storage.device === "cpu" ? "" : ` @${t.storage.device}`}`
      : "-";
    return h(
      "div",
      { class: "row", role: "row", "data-index": String(row.index) },
      h(
        "span",
        { class: "key", title: row.key },
        row.key,
        t.parameter ? h("span", { class: "muted" }, " (P)") : null,
      ),
      h("span", null, t.layout === "strided" ? t.dtype : `${t.dtype} ${t.layout}`),
      h("span", null, formatShape(t.shape)),
      h("span", { class: "num" }, formatCount(row.elements)),
      h("span", { class: "num" }, t.storage ? formatBytes(row.bytes) : "-"),
      h("span", { class: "storage", title: storage }, storage),
      hashCell(row),
    );
  };

  const list = virtualList(ROW_HEIGHT, renderRow, "rows");
  const count = h("span", { class: "count" });
  const filter = h("input", {
    type: "search",
    class: "filter",
    placeholder: "filter by key glob: model.*.weight",
    "aria-label": "filter tensors by key glob",
  });
  const error = h("span", { class: "error" });

  const update = () => {
    const glob = filter.value.trim();
    error.textContent = "";
    let rows = all;
    if (glob !== "") {
      try {
        const keep = globFilter(glob);
        rows = all.filter((row) => keep(row.tensor.path));
      } catch {
        error.textContent = "not a glob";
      }
    }
    if (sort) {
      const { key, descending } = sort;
      rows = [...rows].sort(
        (a, b) => (descending ? compare(b, a, key) : compare(a, b, key)) || a.index - b.index,
      );
    }
    shown = rows;
    count.textContent =
      shown.length === all.length ? `${all.length} tensors` : `${shown.length} of ${all.length} tensors`;
    list.setCount(shown.length);
  };

  let timer: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(update, 120);
  });

  const header = h("div", { class: "row head", role: "row" });
  for (const column of COLUMNS) {
    const sortable = column.key !== "storage" && column.key !== "sha256";
    const cell = h(
      sortable ? "button" : "span",
      sortable
        ? {
            type: "button",
            "data-sort": column.key,
            ...(column.key === "elements" || column.key === "bytes" ? { class: "num" } : {}),
          }
        : null,
      column.label,
    );
    if (sortable) {
      cell.addEventListener("click", () => {
        const key = column.key as SortKey;
        sort = sort?.key === key ? { key, descending: !sort.descending } : { key, descending: false };
        for (const other of header.querySelectorAll("[data-sort]")) other.removeAttribute("aria-sort");
        cell.setAttribute("aria-sort", sort.descending ? "descending" : "ascending");
        update();
      });
    }
    header.appendChild(cell);
  }

  const element = h(
    "div",
    { class: "tensors" },
    h("div", { class: "tools" }, filter, count, error),
    header,
    list.element,
  );
  update();
  return {
    element,
    setHash(index, hash) {
      hashes.set(index, hash);
      list.refresh();
    },
  };
}
