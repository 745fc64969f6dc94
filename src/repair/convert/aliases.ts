import { compareNames } from "./safetensorsWriter.js";
import type { ConvertTensor } from "./tensors.js";

/**
 * Tensors that share bytes, handled as `safetensors.torch.save_model` handles them: tensors that are the same
 * view of the same storage (tied weights, a state dict listing one parameter twice) are written once, under
 * the first of their names in sorted order, and the others are listed as aliases of it (in `__metadata__`
 * for safetensors, as shared storages in a torch file). No two written names ever share bytes silently.
 *
 * Where save_model would drop a partial view that overlaps a complete one (or refuse when none is complete),
 * ckpt writes each distinct view as a copy of its own elements and says so: converting must not lose a tensor
 * its reader expects by name.
 */
export interface AliasedSet {
  /** The tensors to write, in source order. */
  readonly written: ConvertTensor[];
  /** Name left out -> the written name holding the same bytes. */
  readonly aliases: Map<string, string>;
  /** Groups of written names whose bytes overlapped in the source without being the same view. */
  readonly overlapping: string[][];
  /** Written tensors that were views of a larger storage, and the storage bytes left behind. */
  readonly views: { readonly tensors: number; readonly savedBytes: number };
}

interface Cluster {
  end: number;
  members: ConvertTensor[];
}

/** Source tensors of one storage, split where their byte ranges stop overlapping (safetensors' rule). */
function overlapClusters(members: ConvertTensor[]): Cluster[] {
  const sorted = [...members].sort((a, b) => (a.region?.start ?? 0) - (b.region?.start ?? 0));
  const clusters: Cluster[] = [];
  for (const tensor of sorted) {
    const region = tensor.region;
    if (!region) continue;
    const last = clusters[clusters.length - 1];
    if (last && region.start < last.end) {
      last.members.push(tensor);
      last.end = Math.max(last.end, region.end);
    } else clusters.push({ end: region.end, members: [tensor] });
  }
  return clusters;
}

export function resolveAliases(tensors: readonly ConvertTensor[]): AliasedSet {
  const byStorage = new Map<string, ConvertTensor[]>();
  for (const tensor of tensors) {
    // Empty tensors own no bytes: safetensors never counts them as shared.
    if (!tensor.region || tensor.byteLength === 0) continue;
    const list = byStorage.get(tensor.region.storage) ?? [];
    list.push(tensor);
    byStorage.set(tensor.region.storage, list);
  }
  const aliases = new Map<string, string>();
  const overlapping: string[][] = [];
  for (const members of byStorage.values()) {
    for (const cluster of overlapClusters(members)) {
      const byView = new Map<string, ConvertTensor[]>();
      for (const t of cluster.members) {
        const key = t.region?.view as string;
        byView.set(key, [...(byView.get(key) ?? []), t]);
      }
      const kept: string[] = [];
      for (const same of byView.values()) {
        const names = same.map((t) => t.name).sort(compareNames);
        const keep = names[0] as string;
        kept.push(keep);
        for (const name of names.slice(1)) aliases.set(name, keep);
      }
      if (kept.length > 1) overlapping.push(kept.sort(compareNames));
    }
  }
  const written = tensors.filter((t) => !aliases.has(t.name));
  return { written, aliases, overlapping, views: viewSavings(written) };
}

function viewSavings(written: readonly ConvertTensor[]): AliasedSet["views"] {
  const perStorage = new Map<string, { storageBytes: number; writtenBytes: number }>();
  let tensors = 0;
  for (const t of written) {
    const region = t.region;
    if (!region) continue;
    if (region.start !== 0 || t.byteLength !== region.storageBytes) tensors++;
    const entry = perStorage.get(region.storage) ?? { storageBytes: 0, writtenBytes: 0 };
    entry.storageBytes = Math.max(entry.storageBytes, region.storageBytes);
    entry.writtenBytes += t.byteLength;
    perStorage.set(region.storage, entry);
  }
  let savedBytes = 0;
  for (const { storageBytes, writtenBytes } of perStorage.values())
    savedBytes += Math.max(0, storageBytes - writtenBytes);
  return { tensors, savedBytes };
}
