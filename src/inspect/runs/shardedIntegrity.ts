import { ReaderError } from "../../reader/errors.js";
import {
  ItemLayouts,
  itemLayoutOf,
  type RecordCheck,
  recordChecksOf,
  WHOLE_ITEM,
} from "../../reader/sharded/dcp/itemLayout.js";
import { ItemWindow } from "../../reader/sharded/dcp/itemWindow.js";
import { type DcpCheckpoint, RangeSource, type ShardedCheckpoint } from "../../reader/sharded/index.js";
import { BufferSource } from "../../reader/source.js";
import { joinPath } from "../../reader/tree.js";
import { crc32 } from "../../reader/zip/crc32.js";
import { looksLikeZip, openZip } from "../../reader/zip.js";
import { closePlans, type DataFilePlan, dataFilePlans, labelsOf } from "../sharded/dataFilePlans.js";
import { allCrcProblem, type FileProblem } from "./integrity.js";

/**
 * A DCP checkpoint's data files streamed through their CRCs, as `--verify` streams a torch file's records:
 * every item is a `torch.save` archive whose records carry CRC-32s, so a flipped bit in a tensor chunk is
 * found before a resume loads it (torch does not check). Small items are read through one window and
 * compared with the layouts already seen, which give where each record and its CRC are; an item of a new
 * layout, or a large one, is opened as an archive. The first damaged record is the answer.
 */
export async function dcpCrcProblem(checkpoint: DcpCheckpoint): Promise<FileProblem | undefined> {
  const plans = dataFilePlans(checkpoint);
  try {
    const labels = labelsOf(checkpoint);
    for (const plan of plans) {
      const problem = await dataFileCrcProblem(plan, labels);
      if (problem) return problem;
    }
    return undefined;
  } finally {
    closePlans(plans);
  }
}

async function dataFileCrcProblem(
  plan: DataFilePlan,
  labels: readonly string[],
): Promise<FileProblem | undefined> {
  const { source, columns } = plan;
  const window = new ItemWindow(source);
  const layouts = new ItemLayouts<readonly RecordCheck[] | undefined>();
  const damaged = (i: number, detail: string): FileProblem => ({
    code: "zip-crc-mismatch",
    message: `${plan.file}: the item of ${labels[columns.labels[i] as number]} at offset ${columns.offsets[i]}: ${detail}`,
    torchLoads: true,
  });
  for (let i = 0; i < columns.offsets.length; i++) {
    const offset = columns.offsets[i] as number;
    const length = columns.lengths[i] as number;
    // A SerializationFormat.SAFETENSORS file has no CRCs; an item that does not open is the scan's finding.
    if (!looksLikeZip(window.view(offset, Math.min(4, source.size - offset)))) continue;
    try {
      if (length > WHOLE_ITEM) {
        const problem = await allCrcProblem(openZip(new RangeSource(source, offset, length)));
        if (problem) return damaged(i, problem.message);
        continue;
      }
      const item = window.view(offset, length);
      let records = layouts.findBytes(item);
      if (records === undefined) {
        const copy = new BufferSource(item.slice(), `${source.name}[${offset}..${offset + length}]`);
        const layout = itemLayoutOf(copy);
        records = recordChecksOf(copy);
        if (layout) layouts.remember(layout, records);
        if (records === undefined) {
          const problem = await allCrcProblem(openZip(copy));
          if (problem) return damaged(i, problem.message);
          continue;
        }
      }
      const mismatch = recordMismatch(item, records);
      if (mismatch) return damaged(i, mismatch);
    } catch (error) {
      if (!(error instanceof ReaderError)) throw error;
    }
  }
  return undefined;
}

/** The first record of `item` whose bytes do not hash to the CRC its central header keeps, described. */
function recordMismatch(item: Uint8Array, records: readonly RecordCheck[]): string | undefined {
  const view = new DataView(item.buffer, item.byteOffset, item.byteLength);
  for (const { name, data, size, crcAt } of records) {
    const expected = view.getUint32(crcAt, true);
    // CRC 0 on a non-empty record means "not computed" (torch 2.6 can skip it): nothing to check.
    if (expected === 0 && size > 0) continue;
    const actual = crc32(item.subarray(data, data + size));
    if (actual !== expected)
      return `record ${name}: CRC ${actual.toString(16)} where the archive says ${expected.toString(16)} (corrupted bytes)`;
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
    const source = checkpoint.tree.open(joinPath(checkpoint.dir, shard.file));
    try {
      const problem = await allCrcProblem(openZip(source));
      if (problem) return { ...problem, message: `${shard.file}: ${problem.message}` };
    } catch (error) {
      // A shard that does not open is the completeness checks' finding, not a CRC's.
      if (!(error instanceof ReaderError)) throw error;
    } finally {
      source.close();
    }
  }
  return undefined;
}
