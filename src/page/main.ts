import type { ErrorReport } from "../cli/errors.js";
import { h } from "./dom.js";
import { fromDirectoryInput, fromDrop, type Picked } from "./drop.js";
import type { Reply, Request, ServedListing } from "./protocol.js";
import { renderFile } from "./render/file.js";
import { renderFolder } from "./render/folder.js";
import type { TensorTable } from "./render/tensorTable.js";

/**
 * The page: a drop zone and pickers, a worker that reads and judges, and renderers for what it reports. The
 * worker's code is built into this script (the build replaces the marker below), started from a blob: URL,
 * so the page is one self-contained file that works from disk, from any static host, and from `ckpt view`.
 */
const WORKER_SOURCE = "__CKPT_WORKER_SOURCE__";

const output = document.getElementById("output") as HTMLElement;
const status = document.getElementById("status") as HTMLElement;
const zone = document.getElementById("drop") as HTMLElement;
const fileInput = document.getElementById("file") as HTMLInputElement;
const folderInput = document.getElementById("folder") as HTMLInputElement;

const worker = new Worker(URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" })));
let table: TensorTable | undefined;
/** Whether the open view is a folder's, so that a file opened from it keeps a way back. */
let folderView: HTMLElement | undefined;

function send(request: Request): void {
  worker.postMessage(request);
}

function busy(text: string): void {
  status.textContent = text;
  status.className = "status busy";
}

function showError(error: ErrorReport): void {
  status.className = "status";
  status.textContent = "";
  output.replaceChildren(
    h(
      "div",
      { class: "failure", "data-code": error.code },
      h("b", null, error.file ? `${error.file}: ` : ""),
      error.message,
      h("code", null, ` [${error.code}]`),
      error.next ? h("div", { class: "muted" }, `Next: ${error.next}`) : null,
    ),
  );
}

function back(): HTMLElement | null {
  if (!folderView) return null;
  const view = folderView;
  const button = h("button", { type: "button", class: "link back" }, "← back to the folder");
  button.addEventListener("click", () => output.replaceChildren(view));
  return button;
}

worker.onmessage = (event: MessageEvent<string>) => {
  const reply = JSON.parse(event.data) as Reply;
  switch (reply.kind) {
    case "file": {
      const rendered = renderFile(reply.view, reply.ms, (index) => send({ kind: "hash", index }));
      table = rendered.table;
      output.replaceChildren(...[back(), rendered.element].filter((n) => n !== null));
      status.textContent = "";
      status.className = "status";
      document.body.dataset.state = "file";
      return;
    }
    case "folder": {
      folderView = renderFolder(reply.view, reply.ms, (path) => {
        busy(`Reading ${path}…`);
        send({ kind: "open-in-folder", path });
      });
      table = undefined;
      output.replaceChildren(folderView);
      status.textContent = "";
      status.className = "status";
      document.body.dataset.state = "folder";
      return;
    }
    case "error":
      document.body.dataset.state = "error";
      return showError(reply.error);
    case "hash":
      return table?.setHash(reply.index, { state: "done", sha256: reply.sha256, ms: reply.ms });
    case "hash-error":
      return table?.setHash(reply.index, { state: "failed", message: reply.error.message });
  }
};

worker.onerror = (event) => {
  event.preventDefault();
  showError({
    schema: "ckpt.error/1",
    file: "",
    code: "internal-error",
    message: `the reader stopped: ${event.message}`,
  });
};

function open(picked: Picked | undefined): void {
  if (!picked) return;
  document.body.dataset.state = "reading";
  if (picked.kind === "file") {
    folderView = undefined;
    busy(`Reading ${picked.file.name}…`);
    send({ kind: "open-file", file: picked.file, name: picked.file.name });
  } else {
    busy(`Reading ${picked.name}/ (${picked.files.length} files)…`);
    send({ kind: "open-folder", name: picked.name, files: picked.files });
  }
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files?.[0];
  open(file ? { kind: "file", file } : undefined);
});
folderInput.addEventListener("change", () => {
  if (folderInput.files) open(fromDirectoryInput(folderInput.files));
});
for (const name of ["dragenter", "dragover"]) {
  document.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
}
document.addEventListener("dragleave", () => zone.classList.remove("over"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  if (event.dataTransfer) void fromDrop(event.dataTransfer).then(open);
});

/** `ckpt view` marks the page it serves with where its listing is; a page from disk or a host has no mark. */
const served = document.querySelector<HTMLMetaElement>('meta[name="ckpt-view"]')?.content;
if (served) {
  busy("Reading what ckpt view serves…");
  void fetch(served)
    .then((response) => response.json() as Promise<ServedListing>)
    .then((listing) => {
      if (listing.kind === "directory") folderView = undefined;
      // Absolute URLs: the worker's own base is its blob: URL, against which no path resolves.
      const files = listing.files.map((f) => ({ ...f, url: new URL(f.url, location.href).href }));
      send({ kind: "open-served", listing: { ...listing, files } });
    })
    .catch((error: unknown) =>
      showError({
        schema: "ckpt.error/1",
        file: served,
        code: "io-error",
        message: `ckpt view did not answer: ${String(error)}`,
      }),
    );
}
