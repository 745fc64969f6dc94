import { findTensors } from "../../inspect/walk.js";
import { hasTensors, type TensorCheckpoint } from "../../reader/checkpoint.js";
import { ReaderError } from "../../reader/errors.js";
import { isBoxed, type PyValue, type TorchTensor } from "../../reader/pickle/value.js";
import { type DcpCheckpoint, type LogicalTensor, readDcpBytesItem } from "../../reader/sharded/index.js";
import type { SourceRequest } from "./source.js";
import { type ConvertTensor, checkpointTensors } from "./tensors.js";

/**
 * Tensors inside DCP bytes items (a state saved with `flatten_state_dict=False`, or an object holding tensors):
 * `dcp_to_torch_save` restores them inside the item's value, so a converted file names them by the item and
 * their path below it (`ema.0`), as flattening that value does. Each is read from the item's own archive.
 */
export interface NestedTensor {
  readonly item: string;
  readonly checkpoint: TensorCheckpoint;
  readonly tensor: TorchTensor;
}

export interface NestedTensors {
  readonly byName: ReadonlyMap<string, NestedTensor>;
  /** Items whose whole value is tensors in containers: nothing of them is left out once those are written. */
  readonly tensorsOnly: ReadonlySet<string>;
}

/** A value made of tensors only, in dicts, lists and tuples. */
function onlyTensors(value: PyValue): boolean {
  if (isBoxed(value, "tensor")) return true;
  if (isBoxed(value, "dict")) return value.values.length > 0 && value.values.every(onlyTensors);
  if (isBoxed(value, "list") || isBoxed(value, "tuple"))
    return value.items.length > 0 && value.items.every(onlyTensors);
  return false;
}

export function dcpNestedTensors(checkpoint: DcpCheckpoint): NestedTensors {
  const byName = new Map<string, NestedTensor>();
  const tensorsOnly = new Set<string>();
  for (const item of checkpoint.bytesItems) {
    if (!item.storage) continue;
    let loaded: ReturnType<typeof readDcpBytesItem>;
    try {
      loaded = readDcpBytesItem(checkpoint, item);
    } catch (error) {
      // An unreadable item is refused with the damage findings, or left out as a value.
      if (error instanceof ReaderError) continue;
      throw error;
    }
    if (!hasTensors(loaded)) continue;
    const found = findTensors(loaded.root).tensors;
    for (const { path, tensor } of found)
      byName.set([item.fqn, ...path].join("."), { item: item.fqn, checkpoint: loaded, tensor });
    if (found.length > 0 && onlyTensors(loaded.root)) tensorsOnly.add(item.fqn);
  }
  return { byName, tensorsOnly };
}

export function nestedLogical(nested: NestedTensors): LogicalTensor[] {
  return [...nested.byName].map(([name, { tensor }]) => ({ name, shape: tensor.shape, dtype: tensor.dtype }));
}

/** One nested tensor as the writer takes it; storages are keyed per item (two items' "0" records differ). */
export function nestedConvertTensor(
  nested: NestedTensor,
  name: string,
  request: SourceRequest,
): ConvertTensor {
  const [converted] = checkpointTensors(
    nested.checkpoint,
    [{ name, tensor: nested.tensor, path: [] }],
    request.target,
    request.canHold,
  );
  const out = converted as ConvertTensor;
  return out.region
    ? { ...out, region: { ...out.region, storage: `${nested.item}/${out.region.storage}` } }
    : out;
}
