import { ReaderError } from "../../errors.js";
import type { TorchTensor } from "../../pickle/value.js";
import { elementSize } from "../../torch/dtypes.js";
import { type AssembleOptions, assembleRowMajor, type Piece, volume } from "../assemble.js";
import { float32Reader } from "../convert.js";
import { rowMajorReader } from "../tensorReader.js";
import type { DeepSpeedTensor } from "./layout.js";
import { type DeepSpeedCheckpoint, deepSpeedParsed } from "./open.js";
import type { ModelStates } from "./parse.js";

/**
 * A tensor of the fp32 state dict zero_to_fp32 rebuilds, streamed: a parameter's bytes are its segments of
 * the ranks' flat fp32 groups one after another (zero_to_fp32's `torch.cat(...).narrow(...)`), read where
 * they lie; a buffer is the module's tensor converted to float32.
 */
export function deepSpeedTensorBytes(
  checkpoint: DeepSpeedCheckpoint,
  tensor: DeepSpeedTensor,
  options: AssembleOptions = {},
): Generator<Uint8Array> {
  const state = deepSpeedParsed(checkpoint);
  switch (tensor.source) {
    case "shared": {
      const target = checkpoint.tensors.find((t) => t.name === tensor.target);
      if (!target)
        throw new ReaderError(
          "storage-missing",
          `${tensor.name} is tied to ${tensor.target}, which is not there`,
        );
      return deepSpeedTensorBytes(checkpoint, target, options);
    }
    case "module": {
      const saved = moduleTensor(state.model, tensor.name);
      const model = state.model as ModelStates;
      return whole(tensor.shape, elementSize(saved.dtype), rowMajorReader(model.checkpoint, saved), options);
    }
    case "buffer": {
      const saved = moduleTensor(state.model, tensor.name);
      const read = float32Reader(rowMajorReader((state.model as ModelStates).checkpoint, saved), saved.dtype);
      return whole(tensor.shape, 4, read, options);
    }
    case "frozen": {
      if (tensor.fragments.length === 1 && tensor.fragments[0]?.rank === null) {
        const fragment = state.model?.frozenFragments?.get(tensor.name);
        if (!fragment)
          throw new ReaderError("storage-missing", `no frozen_param_fragments entry for ${tensor.name}`);
        return whole(
          tensor.shape,
          elementSize(fragment.dtype),
          rowMajorReader((state.model as ModelStates).checkpoint, fragment),
          options,
        );
      }
      return frozenZero3(checkpoint, tensor, options);
    }
    case "param": {
      let at = 0;
      const pieces: Piece[] = tensor.segments.map((segment) => {
        const optim = state.optim[segment.rank];
        const flat = optim?.flatGroups[segment.group];
        if (!optim || !flat) {
          throw new ReaderError(
            "storage-missing",
            `${tensor.name} needs rank ${segment.rank}'s partition, which is missing`,
          );
        }
        const size = elementSize(flat.dtype);
        const read = rowMajorReader(optim.checkpoint, flat);
        const piece: Piece = {
          offsets: [at],
          sizes: [segment.numel],
          read: (start, into) => read(segment.offset * size + start, into),
        };
        at += segment.numel;
        return piece;
      });
      return assembleRowMajor([tensor.numel], elementSize(tensor.dtype), pieces, options);
    }
  }
}

function moduleTensor(model: ModelStates | undefined, name: string): TorchTensor {
  const saved = model?.module.get(name);
  if (!saved) throw new ReaderError("storage-missing", `the model states hold no ${name}`);
  return saved;
}

function whole(
  shape: readonly number[],
  size: number,
  read: Piece["read"],
  options: AssembleOptions,
): Generator<Uint8Array> {
  return assembleRowMajor(shape, size, [{ offsets: shape.map(() => 0), sizes: shape, read }], options);
}

/** ZeRO-3 frozen parameters: every rank's `frozen_param_fragments` slice, concatenated and truncated. */
function frozenZero3(
  checkpoint: DeepSpeedCheckpoint,
  tensor: Extract<DeepSpeedTensor, { source: "frozen" }>,
  options: AssembleOptions,
): Generator<Uint8Array> {
  const state = deepSpeedParsed(checkpoint);
  const numel = volume(tensor.shape);
  let at = 0;
  const pieces: Piece[] = [];
  for (const model of state.zero3Models) {
    const fragment = model?.frozenFragments?.get(tensor.name);
    if (!model || !fragment)
      throw new ReaderError("storage-missing", `a rank's fragment of ${tensor.name} is missing`);
    const take = Math.min(volume(fragment.shape), numel - at);
    if (take <= 0) break;
    pieces.push({ offsets: [at], sizes: [take], read: rowMajorReader(model.checkpoint, fragment) });
    at += take;
  }
  return assembleRowMajor([numel], elementSize(tensor.dtype), pieces, options);
}
