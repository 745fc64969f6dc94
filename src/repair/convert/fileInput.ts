import { type Checkpoint, hasTensors } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { openSource, readLocated, transferOf } from "../../reader/location.js";
import { type SelectOptions, selectTensors } from "./select.js";
import type { ConvertSource, SourceRequest } from "./source.js";
import { checkpointTensors } from "./tensors.js";

/** One checkpoint file (torch zip, legacy, TorchScript, safetensors) as the input of a conversion. */

function openTensorSource(path: string): Checkpoint & { root: unknown } {
  // A local file, or a remote one read by ranges (`https://`, `s3://`, `hf://`).
  const source = openSource(path);
  let checkpoint: Checkpoint;
  try {
    checkpoint = readLocated(source, path);
  } catch (error) {
    source.close();
    if (error instanceof ReaderError) error.file ??= path;
    throw error;
  }
  if (hasTensors(checkpoint)) return checkpoint;
  checkpoint.source.close();
  if (checkpoint.format === "pointer") {
    throw new ReaderError(
      "convert-refused",
      `${path} is a pointer file naming ${checkpoint.target}: convert the checkpoint it names`,
    );
  }
  throw new ReaderError("convert-refused", `${path} is a plain pickle with no tensors to convert`);
}

export function fileSource(path: string, options: SelectOptions, request: SourceRequest): ConvertSource {
  const checkpoint = openTensorSource(path) as Parameters<typeof selectTensors>[0];
  try {
    const selection = selectTensors(checkpoint, path, options);
    const kept = selection.tensors.filter((t) => !request.isDropped(t.name));
    const dropped = selection.tensors.filter((t) => request.isDropped(t.name)).map((t) => t.name);
    if (kept.length === 0) throw new ReaderError("convert-refused", "--drop left no tensor to convert");
    const transfer = transferOf(checkpoint.source);
    return {
      ...(transfer ? { transfer } : {}),
      path,
      format: checkpoint.format,
      sizeBytes: checkpoint.source.size,
      directory: undefined,
      taken: selection.taken,
      selected: selection.key,
      tensors: checkpointTensors(checkpoint, kept, request.target, request.canHold),
      dropped,
      leftOut: selection.leftOut,
      metadata: selection.metadata,
      settle: () => checkpoint.source.assertUnchanged(),
      close: () => checkpoint.source.close(),
    };
  } catch (error) {
    checkpoint.source.close();
    throw error;
  }
}
