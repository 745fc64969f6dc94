import { ReaderError } from "../../reader/errors.js";
import type { ZipArchive, ZipEntry } from "../../reader/zip.js";
import { scanNpy } from "./scanNumpy.js";
import { Scanner } from "./scanner.js";

/**
 * Every member of a zip archive (a torch.save or torch.jit.save file, an `.npz`, any zip) that could be
 * unpickled: `.pkl` members, TorchScript's `.debug_pkl` debug records, `.npy` arrays, and (`deep`) any other
 * member that turns out to be a whole pickle naming globals. Members flagged encrypted are read as they lie
 * (a flag is not encryption), and a member that cannot be read makes the verdict inconclusive.
 */

/** Members read whole to probe; larger ones are probed by their head first. */
const PROBE_WHOLE_BYTES = 16 * 1024 * 1024;
const PROBE_HEAD_BYTES = 64 * 1024;
/** The largest member scanned at all (a pickle this big is a hostile file's or a tensor record). */
const MAX_SCANNED_BYTES = 256 * 1024 * 1024;

type MemberKind = "pickle" | "debug-pickle" | "npy" | "other";

function memberKind(name: string): MemberKind {
  if (/\.pkl$/.test(name)) return "pickle";
  if (/\.debug_pkl$/.test(name)) return "debug-pickle";
  if (/\.npy$/.test(name)) return "npy";
  return "other";
}

/** The member's bytes, inflated: a member flagged encrypted is taken as it lies when stored. */
function memberBytes(archive: ZipArchive, entry: ZipEntry): Uint8Array {
  if (entry.encrypted && entry.method === 0)
    return archive.source.read(archive.dataOffset(entry), entry.compressedSize);
  return archive.readEntry(entry, MAX_SCANNED_BYTES);
}

function memberHead(archive: ZipArchive, entry: ZipEntry): Uint8Array {
  if (entry.encrypted && entry.method === 0) {
    return archive.source.read(archive.dataOffset(entry), Math.min(PROBE_HEAD_BYTES, entry.compressedSize));
  }
  return archive.readHead(entry, PROBE_HEAD_BYTES);
}

/** Whether the member is a pickle hidden where torch never looks: read only as far as it takes to tell. */
function probeHidden(archive: ZipArchive, entry: ZipEntry): Uint8Array | "too-large" | undefined {
  if (entry.uncompressedSize <= PROBE_WHOLE_BYTES) {
    const bytes = memberBytes(archive, entry);
    return Scanner.isPickle(bytes) ? bytes : undefined;
  }
  if (!Scanner.couldBePickle(memberHead(archive, entry))) return undefined;
  if (entry.uncompressedSize > MAX_SCANNED_BYTES) return "too-large";
  const bytes = memberBytes(archive, entry);
  return Scanner.isPickle(bytes) ? bytes : undefined;
}

export function scanArchive(archive: ZipArchive, scanner: Scanner, deep: boolean): void {
  const counts = new Map<string, number>();
  for (const entry of archive.entries) counts.set(entry.name, (counts.get(entry.name) ?? 0) + 1);
  for (const name of archive.duplicates) scanner.notes.push({ code: "zip-duplicate-member", name });
  if (archive.junkBefore > 0) scanner.notes.push({ code: "zip-junk-before", bytes: archive.junkBefore });
  const torchscript = archive.get("constants.pkl") !== undefined;
  const copies = new Map<string, number>();
  for (const entry of archive.entries) {
    const record = archive.recordName(entry);
    if (record === undefined) scanner.notes.push({ code: "zip-member-outside-archive", name: entry.name });
    try {
      if (!archive.localHeader(entry).nameMatches)
        scanner.notes.push({ code: "zip-name-mismatch", name: entry.name });
    } catch {
      continue; // a record past the end of the file: the reader reports it
    }
    const copy = (copies.get(entry.name) ?? 0) + 1;
    copies.set(entry.name, copy);
    const label =
      (counts.get(entry.name) ?? 1) > 1 ? `${record ?? entry.name} (copy ${copy})` : (record ?? entry.name);
    const kind = memberKind(entry.name);
    if (kind === "other" && !deep && !entry.encrypted) continue;
    // torch executes the first data.pkl only (torch.jit.load also constants.pkl); the others are reported
    // for what they could do in another loader.
    const executed = copy === 1 && (record === "data.pkl" || (torchscript && record === "constants.pkl"));
    try {
      scanMember(archive, entry, kind, label, executed, scanner);
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      scanner.unscanned({ code: "zip-member-unreadable", name: entry.name, detail: error.message });
    }
  }
}

function scanMember(
  archive: ZipArchive,
  entry: ZipEntry,
  kind: MemberKind,
  label: string,
  executed: boolean,
  scanner: Scanner,
): void {
  // A member flagged encrypted is never clean: torch refuses it, and a loader with a password reads other bytes.
  if (entry.encrypted)
    scanner.unscanned({ code: "zip-encrypted-member", name: entry.name, scanned: entry.method === 0 });
  switch (kind) {
    case "pickle":
    case "debug-pickle":
      if (entry.uncompressedSize > MAX_SCANNED_BYTES) {
        scanner.unscanned({ code: "too-large-to-scan", record: label, bytes: entry.uncompressedSize });
        break;
      }
      scanner.scanPickles(memberBytes(archive, entry), label, { executedByTorch: executed });
      break;
    case "npy":
      scanNpy(memberBytes(archive, entry), label, scanner);
      break;
    case "other": {
      const hidden = probeHidden(archive, entry);
      if (hidden === "too-large") {
        scanner.unscanned({ code: "too-large-to-scan", record: label, bytes: entry.uncompressedSize });
      } else if (hidden) {
        scanner.notes.push({ code: "hidden-pickle", record: label });
        scanner.scanPickles(hidden, label, { executedByTorch: false });
      }
      break;
    }
  }
}
