import type { FileScan, ScanVerdict } from "./scan.js";

/** Worst first: one dangerous part makes the whole dangerous; a part that could not be read leaves it open. */
const ORDER: readonly ScanVerdict[] = ["dangerous", "inconclusive", "unknown", "framework", "clean"];

export function worstVerdict(verdicts: readonly ScanVerdict[]): ScanVerdict {
  return ORDER.find((v) => verdicts.includes(v)) ?? "clean";
}

/**
 * Several scans of parts of one file (the `torch.save` archives a DCP data file concatenates) as one scan of
 * that file: every global and note kept, each global's record prefixed with the part it is in.
 */
export function mergeScans(
  format: FileScan["format"],
  parts: ReadonlyArray<{ label: string; scan: FileScan }>,
): FileScan {
  // `>` marks a pickle nested in another (weightsOnly.ts skips those): a part is a sibling, so `: `. Each
  // part's record names are made once and shared by its globals, notes and pickles: the judgements look
  // records up in sets, and one string hashes once where a copy per global would be hashed again.
  const globals: FileScan["globals"][number][] = [];
  const notes: FileScan["notes"][number][] = [];
  const pickles: FileScan["pickles"][number][] = [];
  for (const { label, scan } of parts) {
    // A part's globals nearly all sit in one record (data.pkl): remembering the last name is enough.
    let last: string | undefined;
    let lastName = "";
    const at = (record: string) => {
      if (record !== last) {
        last = record;
        lastName = `${label}: ${record}`;
      }
      return lastName;
    };
    for (const g of scan.globals) globals.push({ ...g, record: at(g.record) });
    for (const n of scan.notes) notes.push("record" in n ? { ...n, record: at(n.record) } : n);
    for (const p of scan.pickles) pickles.push({ ...p, record: at(p.record) });
  }
  return {
    format,
    globals,
    notes,
    pickles,
    verdict: worstVerdict(parts.map((p) => p.scan.verdict)),
  };
}
