/**
 * Renames by a prefix, found in the names only one side has: `conv.weight` in A and `module.conv.weight` in B,
 * three hundred times over, is one rename (`` -> `module.`) and not 300 removals and 300 additions. The
 * prefixes wrappers add (DataParallel's `module.`, torch.compile's `_orig_mod.`, Lightning's `model.`) are
 * found like any other: a candidate comes from two names that end alike (a common suffix starting at a key
 * boundary), and the one that explains the most names wins, then the next among those left.
 */
export interface Rename {
  /** A name `from + rest` in A is `to + rest` in B. */
  readonly from: string;
  readonly to: string;
  /** Names it explains. */
  readonly count: number;
}

export interface RenameResult {
  readonly renames: Rename[];
  /** A's name -> B's name, for every name a rename explains. */
  readonly pairs: Map<string, string>;
}

/** Names sampled to propose candidates; every candidate is then counted against all names. */
const SAMPLE = 256;
/** Renames tried at most: a real diff has one or two. */
const MAX_RENAMES = 8;
/** B names kept per suffix in the index: enough to propose the candidates that matter. */
const PER_SUFFIX = 4;

/** Where a name may be cut into prefix and rest: its start, after a dot, before an index (`state[0]`). */
function boundaries(name: string): number[] {
  const out = [0];
  for (let i = 1; i < name.length; i++) {
    if (name[i - 1] === "." || name[i] === "[") out.push(i);
  }
  return out;
}

function suffixIndex(names: Iterable<string>): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const name of names) {
    for (const cut of boundaries(name)) {
      const suffix = name.slice(cut);
      const list = index.get(suffix);
      if (!list) index.set(suffix, [name]);
      else if (list.length < PER_SUFFIX) list.push(name);
    }
  }
  return index;
}

/** Candidates from one A name: against the B names sharing its longest suffix that any B name has. */
function candidatesFor(name: string, index: Map<string, string[]>): Array<{ from: string; to: string }> {
  for (const cut of boundaries(name)) {
    const suffix = name.slice(cut);
    const matches = index.get(suffix);
    if (!matches) continue;
    return matches.map((other) => ({
      from: name.slice(0, cut),
      to: other.slice(0, other.length - suffix.length),
    }));
  }
  return [];
}

function apply(rename: { from: string; to: string }, name: string): string | undefined {
  return name.startsWith(rename.from) ? rename.to + name.slice(rename.from.length) : undefined;
}

/**
 * The renames that explain names in `onlyA` as names in `onlyB`. A rename must explain two names, or one
 * whose tensors `compatible` says agree (same dtype and shape): a single removed tensor and a single added one
 * that merely end alike are not called a rename otherwise.
 */
export function findRenames(
  onlyA: readonly string[],
  onlyB: readonly string[],
  compatible: (a: string, b: string) => boolean,
): RenameResult {
  const renames: Rename[] = [];
  const pairs = new Map<string, string>();
  let restA = [...onlyA];
  const restB = new Set(onlyB);
  for (let round = 0; round < MAX_RENAMES && restA.length > 0 && restB.size > 0; round++) {
    const index = suffixIndex(restB);
    const step = Math.max(1, Math.floor(restA.length / SAMPLE));
    const proposed = new Map<string, { from: string; to: string }>();
    for (let i = 0; i < restA.length; i += step) {
      for (const candidate of candidatesFor(restA[i] as string, index)) {
        if (candidate.from !== candidate.to)
          proposed.set(`${candidate.from}\u0000${candidate.to}`, candidate);
      }
    }
    let best: { rename: { from: string; to: string }; explained: Array<[string, string]> } | undefined;
    for (const rename of proposed.values()) {
      const explained: Array<[string, string]> = [];
      for (const name of restA) {
        const target = apply(rename, name);
        if (target !== undefined && restB.has(target)) explained.push([name, target]);
      }
      const better =
        !best ||
        explained.length > best.explained.length ||
        (explained.length === best.explained.length &&
          rename.from.length + rename.to.length < best.rename.from.length + best.rename.to.length);
      if (better) best = { rename, explained };
    }
    if (!best || best.explained.length === 0) break;
    const [first] = best.explained;
    if (best.explained.length === 1 && first && !compatible(first[0], first[1])) break;
    renames.push({ ...best.rename, count: best.explained.length });
    for (const [from, to] of best.explained) {
      pairs.set(from, to);
      restB.delete(to);
    }
    restA = restA.filter((name) => !pairs.has(name));
  }
  return { renames, pairs };
}
