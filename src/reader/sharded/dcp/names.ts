/** The file `FileSystemWriter.finish` writes last (`_metadata_fn`): its presence marks a finished save. */
export const DCP_METADATA_FILE = ".metadata";
/** `__<rank>_<n>.distcp`; torch 1.13 dev builds wrote the same names without the suffix. */
const DATA_FILE = /^__(\d+)_(\d+)(?:\.distcp)?$/;
/** What a save that did not finish leaves: the metadata half-written, or per-rank metadata (no collectives). */
const PARTIAL_METADATA = /^(?:\.metadata\.tmp|__\d+\.metadata(?:\.tmp)?)$/;

export function isDcpDataFile(name: string): boolean {
  return DATA_FILE.test(name);
}

export function isPartialMetadata(name: string): boolean {
  return PARTIAL_METADATA.test(name);
}

/** The rank and the writer's file counter a data file's name encodes, or null for another name. */
export function dataFileNumbers(name: string): { readonly rank: number; readonly index: number } | null {
  const match = DATA_FILE.exec(name);
  return match ? { rank: Number(match[1]), index: Number(match[2]) } : null;
}

export function rankOfFile(name: string): number | null {
  return dataFileNumbers(name)?.rank ?? null;
}
