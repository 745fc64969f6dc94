import { ReaderError } from "../../reader/errors.js";
import { looksLikeSafetensors } from "../../reader/safetensors.js";
import {
  ItemLayouts,
  itemLayoutOf,
  type RecordCheck,
  recordChecksOf,
  WHOLE_ITEM,
} from "../../reader/sharded/dcp/itemLayout.js";
import { ItemReader } from "../../reader/sharded/dcp/itemReader.js";
import type { DcpCheckpoint, ShardedCheckpoint } from "../../reader/sharded/index.js";
import type { ByteSource } from "../../reader/source.js";
import { joinPath, type TreeSource, withOpened } from "../../reader/tree.js";
import { crc32 } from "../../reader/zip/crc32.js";
import { openZip } from "../../reader/zip.js";
import { type DataFilePlan, dataFilePlans, labelsOf } from "../sharded/dataFilePlans.js";
import { allCrcProblem, type FileProblem } from "./integrity.js";

/**
 * A DCP checkpoint's data files streamed through their CRCs, as `--verify` streams a torch file's records:
 * every item is a `torch.save` archive whose records carry CRC-32s, so a flipped bit in a tensor chunk is
 * found before a resume loads it (torch does not check). Small items are compared with the layouts already
 * seen, which give where each record and its CRC are; an item of a new layout, or a large one, is opened as
 * an archive. An item that does not open is damaged too (torch.load fails on it). The first damage is the
 * answer.
 */
async function dcpCrcProblem(checkpoint: DcpCheckpoint): Promise<FileProblem | undefined> {
  return crcPlanProblem(dcpCrcPlan(checkpoint));
}

/**
 * What checking a DCP checkpoint's items takes, kept apart from the decoded `.metadata` (a few MB for
 * 200,000 items, where the decode is hundreds): `resume-plan` keeps it from judging a step, and verifies the
 * one it chooses without decoding its `.metadata` a second time. `stamps` are the files' sizes and times
 * when it was made; a plan whose files changed since is not current.
 */
export interface DcpCrcPlan {
  readonly tree: TreeSource;
  readonly files: readonly DataFilePlan[];
  readonly labels: readonly string[];
  readonly stamps: ReadonlyArray<{ readonly path: string; readonly size: number; readonly mtimeMs?: number }>;
  /** About what keeping the plan costs: its items' columns and its labels' strings. */
  readonly bytes: number;
}

export function dcpCrcPlan(checkpoint: DcpCheckpoint): DcpCrcPlan {
  const files = dataFilePlans(checkpoint);
  const { tree } = checkpoint;
  const paths = [joinPath(checkpoint.dir, ".metadata"), ...files.map((f) => f.path)];
  const labels = labelsOf(checkpoint);
  return {
    tree,
    files,
    labels,
    stamps: paths.flatMap((path) => {
      const stat = tree.stat(path);
      return stat
        ? [{ path, size: stat.size, ...(stat.mtimeMs === undefined ? {} : { mtimeMs: stat.mtimeMs }) }]
        : [];
    }),
    bytes: planBytes(files, labels),
  };
}

/**
 * An item's columns are 22 bytes (two doubles, an int, two bytes); a label, the FQN string the decoded
 * `.metadata` would otherwise free with itself, its characters and a string's header.
 */
function planBytes(files: readonly DataFilePlan[], labels: readonly string[]): number {
  let bytes = 0;
  for (const file of files) bytes += 22 * file.columns.offsets.length;
  for (const label of labels) bytes += 24 + label.length;
  return bytes;
}

/** Whether every file the plan was made from is as it was then (a save may have replaced the step since). */
export function crcPlanIsCurrent(plan: DcpCrcPlan): boolean {
  return plan.stamps.every(({ path, size, mtimeMs }) => {
    const stat = plan.tree.stat(path);
    return stat !== undefined && stat.size === size && stat.mtimeMs === mtimeMs;
  });
}

/** The first damaged item of the plan's files, as `shardedCrcProblem` finds it. */
export async function crcPlanProblem(plan: DcpCrcPlan): Promise<FileProblem | undefined> {
  for (const file of plan.files) {
    const problem = await withOpened(plan.tree, file.path, (source) =>
      dataFileCrcProblem(source, file, plan.labels),
    );
    if (problem) return problem;
  }
  return undefined;
}

async function dataFileCrcProblem(
  source: ByteSource,
  plan: DataFilePlan,
  labels: readonly string[],
): Promise<FileProblem | undefined> {
  const { columns } = plan;
  const reader = new ItemReader(source, columns.offsets.length);
  const layouts = new ItemLayouts<readonly RecordCheck[] | undefined>();
  const itemOf = (i: number) =>
    `${plan.file}: the item of ${labels[columns.labels[i] as number]} at offset ${columns.offsets[i]}`;
  for (let i = 0; i < columns.offsets.length; i++) {
    const offset = columns.offsets[i] as number;
    const length = columns.lengths[i] as number;
    // Bytes written through a storage transform (zstd, say) are not the archive until decoded: not checked.
    if (columns.transformed[i] === 1) continue;
    try {
      if (!reader.isArchive(offset, length)) {
        // SerializationFormat.SAFETENSORS: the tensors are one safetensors blob to the end of the file, which
        // carries no CRCs to check.
        const rest = source.size - offset;
        if (looksLikeSafetensors(reader.range(offset, rest).read(0, Math.min(rest, 4096)), rest)) continue;
        return {
          code: "zip-malformed",
          message: `${itemOf(i)} is neither a torch.save archive nor safetensors`,
        };
      }
      const problem = await itemCrcProblem(reader, layouts, offset, length);
      if (problem) return { ...problem, message: `${itemOf(i)}: ${problem.message}` };
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      return { code: error.code, message: `${itemOf(i)} does not open: ${error.message}` };
    }
  }
  return undefined;
}

/** One item's damage, by the layout of an alike item where one was seen, else by opening it. */
async function itemCrcProblem(
  reader: ItemReader,
  layouts: ItemLayouts<readonly RecordCheck[] | undefined>,
  offset: number,
  length: number,
): Promise<FileProblem | undefined> {
  if (length > WHOLE_ITEM) return allCrcProblem(openZip(reader.range(offset, length)));
  const known = layouts.findBytes(reader.small(offset, length));
  if (known !== undefined) return recordMismatch(reader.small(offset, length), known);
  const copy = reader.copy(offset, length);
  const records = recordChecksOf(copy);
  const layout = itemLayoutOf(copy);
  if (layout) layouts.remember(layout, records);
  // Records that are not stored plainly (compressed): the archive's own check inflates them.
  if (records === undefined) return allCrcProblem(openZip(copy));
  return recordMismatch(copy.read(0, length), records);
}

/** The first record of `item` whose bytes do not hash to the CRC its central header keeps. */
function recordMismatch(item: Uint8Array, records: readonly RecordCheck[]): FileProblem | undefined {
  const view = new DataView(item.buffer, item.byteOffset, item.byteLength);
  for (const { name, data, size, crcAt } of records) {
    const expected = view.getUint32(crcAt, true);
    // CRC 0 on a non-empty record means "not computed" (torch 2.6 can skip it): nothing to check.
    if (expected === 0 && size > 0) continue;
    const actual = crc32(item.subarray(data, data + size));
    if (actual !== expected)
      return {
        code: "zip-crc-mismatch",
        message: `record ${name}: CRC ${actual.toString(16)} where the archive says ${expected.toString(16)} (corrupted bytes)`,
        torchLoads: true,
      };
  }
  return undefined;
}

/**
 * With `--verify`, a sharded checkpoint's bytes through their CRCs: a DCP checkpoint's items, a Hugging Face
 * index's `.bin` shards (torch zips; safetensors shards carry no checksum). DeepSpeed's files are checked
 * as files (`checkFile`). The first damaged record, prefixed with its file.
 */
export async function shardedCrcProblem(checkpoint: ShardedCheckpoint): Promise<FileProblem | undefined> {
  if (checkpoint.kind === "dcp") return dcpCrcProblem(checkpoint);
  if (checkpoint.kind !== "hf-index" || checkpoint.format !== "torch") return undefined;
  for (const shard of checkpoint.shards) {
    if (!shard.present) continue;
    try {
      const problem = await withOpened(checkpoint.tree, joinPath(checkpoint.dir, shard.file), (source) =>
        allCrcProblem(openZip(source)),
      );
      if (problem) return { ...problem, message: `${shard.file}: ${problem.message}` };
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
      return { code: error.code, message: `${shard.file} does not open: ${error.message}` };
    }
  }
  return undefined;
}
