import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { TorchZipWriter } from "../../src/repair/zipWriter.js";
import { stateDictPickle } from "./pickleWriter.js";

/**
 * A torch zip state dict with a small tensor and a big one whose bytes are a hole (a sparse file: a 6 GiB
 * checkpoint costs no disk), CRC "not computed" (0) as torch 2.6+ allows. What laziness is measured on.
 */
export function writeSparseCheckpoint(dir: string, name: string, bigElements: number): string {
  const path = join(dir, `${name}.pt`);
  const fd = openSync(path, "w");
  try {
    const writer = new TorchZipWriter(fd, name);
    const tensors = [
      {
        name: "small.weight",
        storageClass: "FloatStorage",
        key: "0",
        numel: 16,
        shape: [4, 4],
        stride: [4, 1],
      },
      {
        name: "big.weight",
        storageClass: "FloatStorage",
        key: "1",
        numel: bigElements,
        shape: [bigElements / 1024, 1024],
        stride: [1024, 1],
      },
    ];
    writer.addRecord("data.pkl", stateDictPickle(tensors));
    writer.addRecord("data/0", new Uint8Array(64));
    // The big record is a hole: declared size, no bytes written, CRC "not computed" (0) as torch 2.6+ allows.
    writer.addRecordStream("data/1", bigElements * 4, [bigElements * 4], 0);
    writer.addRecord("version", new TextEncoder().encode("3\n"));
    writer.finish();
  } finally {
    closeSync(fd);
  }
  return path;
}
