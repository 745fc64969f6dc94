import { elementSize } from "../../reader/torch/dtypes.js";
import type { TorchZipWriter } from "../zipWriter.js";
import type { AliasedSet } from "./aliases.js";
import { hasTypedStorage, type PickledTensor, stateDictPickle } from "./stateDictPickle.js";
import type { ConvertTensor } from "./tensors.js";

/**
 * A state dict as `torch.save(state_dict, path)` writes it (torch >= 2.7 record set and order): `data.pkl`,
 * `.format_version`, `.storage_alignment`, `byteorder`, one `data/<n>` record per written tensor, `version`.
 * Aliases share their tensor's storage record, as tied weights do in a file torch saved.
 */
export function writeTorchStateDict(
  writer: TorchZipWriter,
  order: readonly ConvertTensor[],
  set: AliasedSet,
  onTensor: (tensor: ConvertTensor) => void,
): void {
  const keyOf = new Map(set.written.map((t, i) => [t.name, String(i)]));
  const byName = new Map(set.written.map((t) => [t.name, t]));
  const pickled: PickledTensor[] = order.map((t) => {
    const owner = byName.get(set.aliases.get(t.name) ?? t.name) as ConvertTensor;
    const elements = owner.byteLength / elementSize(owner.dtype);
    return {
      name: t.name,
      storageKey: keyOf.get(owner.name) as string,
      dtype: owner.dtype,
      shape: owner.shape,
      storageNumel: hasTypedStorage(owner.dtype) ? elements : owner.byteLength,
    };
  });
  const text = (s: string) => new TextEncoder().encode(s);
  writer.addRecord("data.pkl", stateDictPickle(pickled));
  writer.addRecord(".format_version", text("1"));
  writer.addRecord(".storage_alignment", text("64"));
  writer.addRecord("byteorder", text("little"));
  for (const t of set.written) {
    writer.addRecordStream(`data/${keyOf.get(t.name)}`, t.byteLength, t.bytes());
    onTensor(t);
  }
  writer.addRecord("version", text("3\n"));
  writer.finish();
}
