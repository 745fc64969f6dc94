import type { PickleInfo, ReaderNote, StorageBytes, TorchLegacyCheckpoint } from "../checkpoint.js";
import { ReaderError } from "../errors.js";
import { type PickleHooks, type PickleResult, parsePickle } from "../pickle/machine.js";
import { dictGet, isBoxed, type TorchStorage } from "../pickle/value.js";
import type { ByteSource } from "../source.js";
import { elementSize } from "./dtypes.js";
import { StorageTable } from "./idMap.js";
import { cachingStorageResolver, type StorageResolver, torchPickleHooks } from "./rebuild.js";

/**
 * The pre-1.6 "magic number" stream (`torch.save(..., _use_new_zipfile_serialization=False)`): five pickles
 * back to back (magic, protocol version, sys_info, the object, the sorted storage keys), then every storage as
 * an 8-byte little-endian element count and its raw bytes. Nothing is indexed, so the pickles are parsed in
 * sequence; storage bytes are skipped by arithmetic, reading only each 8-byte count.
 */

export const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
const FIRST_WINDOW = 16 * 1024;

/**
 * Parses the pickles of the stream in sequence from one window of the file, reading again only when a pickle
 * runs past the window (the window then grows fourfold), so the small header pickles cost one read together.
 */
export class PickleSequence {
  private start = 0;
  private bytes: Uint8Array = new Uint8Array(0);

  constructor(private readonly source: ByteSource) {}

  private load(offset: number, length: number): void {
    this.start = offset;
    this.bytes = this.source.read(offset, Math.min(length, this.source.size - offset));
  }

  parseAt(offset: number, hooks?: PickleHooks, scan = false): PickleResult {
    if (offset < this.start || offset >= this.start + this.bytes.length) this.load(offset, FIRST_WINDOW);
    for (;;) {
      const window = this.bytes.subarray(offset - this.start);
      try {
        const result = parsePickle(window, hooks ? { hooks, scan } : { scan });
        return { ...result, end: offset + result.end };
      } catch (error) {
        if (!(error instanceof ReaderError)) throw error;
        if (error.code === "pickle-truncated" && offset + window.length < this.source.size) {
          this.load(offset, Math.max(window.length * 4, FIRST_WINDOW));
          continue;
        }
        // Offsets inside the window become offsets in the file.
        throw new ReaderError(
          error.code,
          error.message.replace(/byte (\d+)/g, (_m, n) => `byte ${offset + Number(n)}`),
          error.offset === undefined ? {} : { offset: offset + error.offset },
        );
      }
    }
  }
}

export function looksLikeLegacy(head: Uint8Array): boolean {
  // PROTO n, an optional FRAME (protocol 4+), then LONG1 of 10 bytes holding the magic number.
  const magic = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
  if (head[0] !== 0x80) return false;
  const start = head[2] === 0x95 ? 11 : 2;
  return magic.every((b, i) => head[start + i] === b);
}

/** A view storage's bytes inside its root storage's range (undefined when they would run past it). */
function viewRange(root: StorageBytes | undefined, storage: TorchStorage): StorageBytes | undefined {
  if (!root || !storage.view || root.kind !== "range") return root;
  const start = storage.view.offset * elementSize(storage.dtype);
  if (start + storage.sizeBytes > root.length) return undefined;
  return { kind: "range", offset: root.offset + start, length: storage.sizeBytes };
}

export function loadLegacy(source: ByteSource): TorchLegacyCheckpoint {
  const notes: ReaderNote[] = [];
  const pickles = new PickleSequence(source);
  const magic = pickles.parseAt(0);
  if (magic.value !== LEGACY_MAGIC_NUMBER) {
    throw new ReaderError("legacy-malformed", "the file does not start with torch's legacy magic number", {
      offset: 0,
    });
  }
  const version = pickles.parseAt(magic.end);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new ReaderError(
      "legacy-malformed",
      `legacy protocol version ${String(version.value)} (expected ${LEGACY_PROTOCOL_VERSION})`,
      { offset: magic.end },
    );
  }
  const sysInfo = pickles.parseAt(version.end);
  if (isBoxed(sysInfo.value, "dict") && dictGet(sysInfo.value, "little_endian") === false) {
    notes.push({ code: "big-endian", detail: "sys_info says the writer was big-endian" });
  }

  // Each root storage once: views of it (torch <= 0.4) are resolved to storages of their own.
  const roots = new Map<string, { dtype: string; numel: number }>();
  const cache = cachingStorageResolver(new StorageTable());
  const resolver: StorageResolver = (request) => {
    if (!roots.has(request.key)) roots.set(request.key, { dtype: request.dtype, numel: request.numel });
    return cache(request);
  };
  const foreignPersistentIds: number[] = [];
  const main = pickles.parseAt(
    sysInfo.end,
    torchPickleHooks(resolver, foreignPersistentIds, { legacy: true }),
  );
  const keyList = pickles.parseAt(main.end);
  if (!isBoxed(keyList.value, "list") || !keyList.value.items.every((k) => typeof k === "string")) {
    throw new ReaderError("legacy-malformed", "the storage key list is not a list of strings", {
      offset: main.end,
    });
  }
  const storageKeys = keyList.value.items as string[];

  // Walk the storage area: each storage is an 8-byte element count followed by its bytes.
  const ranges = new Map<string, StorageBytes>();
  let position = keyList.end;
  for (const key of storageKeys) {
    const storage = roots.get(key);
    if (!storage) {
      throw new ReaderError("legacy-malformed", `storage key ${key} is listed but no tensor uses it`, {
        offset: position,
      });
    }
    if (position + 8 > source.size) {
      throw new ReaderError("legacy-truncated", `the file ends before storage ${key} (byte ${position})`, {
        offset: position,
      });
    }
    const head = source.read(position, 8);
    const count = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    const length = Number(count) * elementSize(storage.dtype);
    if (count < 0n || position + 8 + length > source.size) {
      throw new ReaderError(
        "legacy-truncated",
        `storage ${key} needs ${length} bytes at byte ${position + 8} but the file has ${source.size} bytes`,
        { offset: position },
      );
    }
    if (Number(count) !== storage.numel) {
      const expected = storage.numel * elementSize(storage.dtype);
      notes.push({ code: "storage-size-mismatch", key, expected, actual: length });
    }
    ranges.set(key, { kind: "range", offset: position + 8, length });
    position += 8 + length;
  }

  const pickle: PickleInfo = {
    record: "main pickle",
    protocol: main.protocol,
    globals: main.globals,
    sizeBytes: main.end - sysInfo.end,
    opcodes: main.opcodes,
    foreignPersistentIds,
  };
  return {
    format: "torch-legacy",
    source,
    notes,
    root: main.value,
    pickle,
    sysInfo: sysInfo.value,
    storageKeys,
    pickleRange: { start: sysInfo.end, end: main.end },
    byteOrder: "little",
    locate: (storage) => viewRange(ranges.get(storage.view?.root ?? storage.key), storage),
  };
}
