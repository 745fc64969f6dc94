import { type Checkpoint, hasTensors } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { openCheckpoint } from "../../reader/open.js";
import { type SelectOptions, selectTensors } from "./select.js";
import type { ConvertSource, SourceRequest } from "./source.js";
import { checkpointTensors } from "./tensors.js";

/** One checkpoint file (torch zip, legacy, TorchScript, safetensors) as the input of a conversion. */

function openTensorSource(path: string): Checkpoint & { root: unknown } {
  const checkpoint = openCheckpoint(path);
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
    return {
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
