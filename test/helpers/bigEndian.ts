import { closeSync, openSync } from "node:fs";
import { findTensors } from "../../src/inspect/walk.js";
import type { TorchZipCheckpoint } from "../../src/reader/checkpoint.js";
import { openCheckpoint } from "../../src/reader/open.js";
import { elementSize } from "../../src/reader/torch/dtypes.js";
import { TorchZipWriter } from "../../src/repair/zipWriter.js";

/**
 * A big-endian copy of a torch zip checkpoint, as torch on a big-endian machine writes it: the `byteorder`
 * record says "big" and every storage's elements are byte-swapped. torch >= 2.1 loads such files on any
 * machine (it swaps them back), so real torch can judge what ckpt makes of one.
 */
export function writeBigEndianCopy(input: string, output: string): void {
  const checkpoint = openCheckpoint(input) as TorchZipCheckpoint;
  const widths = new Map<string, number>();
  for (const { tensor } of findTensors(checkpoint.root).tensors) {
    if (!tensor.storage) continue;
    const width = tensor.dtype.startsWith("complex")
      ? elementSize(tensor.dtype) / 2
      : elementSize(tensor.dtype);
    widths.set(tensor.storage.key, width);
  }
  const fd = openSync(output, "w");
  try {
    const writer = new TorchZipWriter(fd, checkpoint.archive.prefix.replace(/\/$/, "") || "archive");
    let sawByteOrder = false;
    for (const entry of checkpoint.archive.entries) {
      const record = checkpoint.archive.recordName(entry);
      if (record === undefined || record === ".data/serialization_id") continue;
      let data = Uint8Array.from(checkpoint.archive.readEntry(entry));
      if (record === "byteorder") {
        data = new TextEncoder().encode("big");
        sawByteOrder = true;
      }
      const width = record.startsWith("data/") ? (widths.get(record.slice(5)) ?? 1) : 1;
      for (let i = 0; i + width <= data.length && width > 1; i += width)
        data.subarray(i, i + width).reverse();
      writer.addRecord(record, data);
    }
    if (!sawByteOrder) writer.addRecord("byteorder", new TextEncoder().encode("big"));
    writer.finish();
  } finally {
    closeSync(fd);
    checkpoint.source.close();
  }
}
