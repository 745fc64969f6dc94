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
  // `>` marks a pickle nested in another (weightsOnly.ts skips those): a part is a sibling, so `: `.
  const at = (label: string, record: string) => `${label}: ${record}`;
  return {
    format,
    globals: parts.flatMap(({ label, scan }) =>
      scan.globals.map((g) => ({ ...g, record: at(label, g.record) })),
    ),
    notes: parts.flatMap(({ label, scan }) =>
      scan.notes.map((n) => ("record" in n ? { ...n, record: at(label, n.record) } : n)),
    ),
    pickles: parts.flatMap(({ label, scan }) =>
      scan.pickles.map((p) => ({ ...p, record: at(label, p.record) })),
    ),
    verdict: worstVerdict(parts.map((p) => p.scan.verdict)),
  };
}
