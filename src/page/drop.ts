import type { TreeFile } from "../reader/web/fileTree.js";

/** What the person gave the page: one file, or a folder as a flat list of files with relative paths. */
export type Picked =
  | { readonly kind: "file"; readonly file: File }
  | { readonly kind: "folder"; readonly name: string; readonly files: TreeFile[] };

/** The files of an `<input webkitdirectory>`: `webkitRelativePath` starts with the folder's own name. */
export function fromDirectoryInput(list: FileList): Picked | undefined {
  const files = [...list];
  const first = files[0];
  if (!first) return undefined;
  const name = first.webkitRelativePath.split("/")[0] ?? "";
  return {
    kind: "folder",
    name,
    files: files.map((file) => ({ path: file.webkitRelativePath.split("/").slice(1).join("/"), file })),
  };
}

function entriesOf(reader: FileSystemDirectoryReader): Promise<FileSystemEntry[]> {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function fileOf(entry: FileSystemFileEntry): Promise<File> {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

/** Every file below a dropped directory entry (`readEntries` answers in batches until it answers none). */
async function walk(dir: FileSystemDirectoryEntry, prefix: string, out: TreeFile[]): Promise<void> {
  const reader = dir.createReader();
  for (;;) {
    const batch = await entriesOf(reader);
    if (batch.length === 0) return;
    for (const entry of batch) {
      if (entry.isFile)
        out.push({ path: prefix + entry.name, file: await fileOf(entry as FileSystemFileEntry) });
      else if (entry.isDirectory)
        await walk(entry as FileSystemDirectoryEntry, `${prefix}${entry.name}/`, out);
    }
  }
}

/** A drop: a directory entry becomes a folder, anything else its first file. */
export async function fromDrop(transfer: DataTransfer): Promise<Picked | undefined> {
  const entry = [...transfer.items].map((item) => item.webkitGetAsEntry()).find((e) => e !== null);
  if (entry?.isDirectory) {
    const files: TreeFile[] = [];
    await walk(entry as FileSystemDirectoryEntry, "", files);
    return { kind: "folder", name: entry.name, files };
  }
  const file = transfer.files[0];
  return file ? { kind: "file", file } : undefined;
}
