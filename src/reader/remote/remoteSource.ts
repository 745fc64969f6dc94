import { ReaderError } from "../errors.js";
import type { ByteRange, DigestKind, Digests, ParallelDigester } from "../rangeDigest.js";
import type { ByteSource } from "../source.js";
import { answered, type Channel, outcomeError, type Pending, wait } from "./channel.js";
import type { FetchOutcome, RemoteSettings, RemoteTarget, Transfer, Validator } from "./protocol.js";

/**
 * One remote object as a `ByteSource`: the same synchronous reads as a file, served by ranged GETs through the
 * I/O worker. A small cache of fetched windows makes the reader's many small reads few requests: a read
 * fetches at least 64 KiB around it (the last 64 KiB for reads near the end, where zip keeps its directory),
 * and reads that continue one another are taken as a stream, whose windows double up to 8 MiB with the next
 * one fetched while this one is consumed. Memory stays bounded by the cache (32 MiB), whatever the file's size.
 */

const FIRST_BYTES = 64 * 1024;
const MIN_FETCH = 64 * 1024;
const MAX_FETCH = 8 * 1024 * 1024;
const CACHE_BYTES = 32 * 1024 * 1024;

/** Timeouts and retries: `CKPT_REMOTE_TIMEOUT` (seconds without a byte, 30), `CKPT_REMOTE_RETRIES` (3). */
export function remoteSettings(env: Readonly<Record<string, string | undefined>> = {}): RemoteSettings {
  const number = (value: string | undefined, fallback: number) =>
    value !== undefined && value !== "" && Number.isFinite(Number(value)) && Number(value) >= 0
      ? Number(value)
      : fallback;
  return {
    timeoutMs: number(env.CKPT_REMOTE_TIMEOUT, 30) * 1000,
    retries: Math.floor(number(env.CKPT_REMOTE_RETRIES, 3)),
    backoffMs: number(env.CKPT_REMOTE_BACKOFF_MS, 250),
  };
}

/** Ranges of a remote object to digest; what the requests moved is added to `transfer`. */
export interface DigestRequest<K extends DigestKind> {
  readonly target: RemoteTarget;
  readonly expect: Validator;
  readonly settings: RemoteSettings;
  readonly ranges: readonly ByteRange[];
  readonly kind: K;
  readonly transfer: Transfer;
  readonly name: string;
}

/** Digests of ranges of a remote object, hashed where the bytes arrive (Node: `digest.ts`'s workers). */
export type RemoteDigest = <K extends DigestKind>(request: DigestRequest<K>) => Promise<Digests<K>>;

/** What remote reads go through on this platform: the channel to its I/O worker, settings, a digester if any. */
export interface RemoteContext {
  readonly channel: Channel;
  readonly settings: RemoteSettings;
  readonly digest?: RemoteDigest;
}

interface Block {
  readonly offset: number;
  readonly pending: Pending;
  /** Bytes it holds once answered (at most what was asked). */
  length: number;
  counted: boolean;
}

/** Requests and bytes moved for a source or a tree, when it is remote (`undefined` for local files). */
export interface Transferring {
  readonly transfer: Readonly<Transfer>;
}

export function transferOf(thing: unknown): Readonly<Transfer> | undefined {
  const transfer = (thing as Partial<Transferring> | undefined)?.transfer;
  return transfer && typeof transfer.requests === "number" ? transfer : undefined;
}

export class RemoteSource implements ByteSource, ParallelDigester, Transferring {
  readonly name: string;
  readonly size: number;
  readonly transfer: Transfer = { requests: 0, bytes: 0 };
  private readonly target: RemoteTarget;
  private readonly context: RemoteContext;
  private readonly settings: RemoteSettings;
  private validator: Validator;
  /** Least recently used first. */
  private blocks: Block[] = [];
  private streamEnd = -1;
  private streamWindow = MIN_FETCH;

  private constructor(name: string, target: RemoteTarget, context: RemoteContext, validator: Validator) {
    this.name = name;
    this.target = target;
    this.context = context;
    this.settings = context.settings;
    this.validator = validator;
    this.size = validator.size;
  }

  /**
   * Opens the object with one request: its first 64 KiB, which also tell its size and ETag. What a failed
   * open moved is added to `failed` (a probe's 404 is a request too).
   * @throws ReaderError with a `remote-*` code.
   */
  static open(target: RemoteTarget, name: string, context: RemoteContext, failed?: Transfer): RemoteSource {
    const pending = context.channel.postRange(target, 0, FIRST_BYTES, undefined, context.settings);
    const outcome = wait(pending);
    if (!outcome.ok) {
      if (failed) {
        failed.requests += outcome.transfer.requests;
        failed.bytes += outcome.transfer.bytes;
      }
      throw outcomeError(outcome, name);
    }
    const source = new RemoteSource(name, target, context, outcome.validator);
    source.blocks.push({ offset: 0, pending, length: outcome.length, counted: false });
    source.settle(source.blocks[0] as Block);
    return source;
  }

  read(offset: number, length: number): Uint8Array {
    return this.readInto(new Uint8Array(length), offset);
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    const length = target.length;
    if (offset < 0 || offset + length > this.size) {
      throw new ReaderError(
        "io-error",
        `read of ${length} bytes at offset ${offset} is outside the ${this.size}-byte input`,
        { offset, file: this.name },
      );
    }
    const sequential = offset === this.streamEnd && offset > 0;
    let done = 0;
    while (done < length) {
      const at = offset + done;
      const block = this.blockAt(at) ?? this.fetch(at, length - done, sequential);
      this.settle(block);
      const from = at - block.offset;
      const n = Math.min(block.length - from, length - done);
      if (n <= 0) {
        throw new ReaderError("remote-short-body", `no bytes at offset ${at} of ${this.name}`, {
          offset: at,
        });
      }
      target.set(block.pending.data.subarray(from, from + n), done);
      done += n;
      this.touch(block);
    }
    this.streamEnd = offset + length;
    if (sequential) this.readAhead(offset + length);
    return target;
  }

  /** Every answer was checked against the first one's size and ETag: a change was already an error. */
  assertUnchanged(): void {}

  /** `--hash` of a remote file: I/O workers hash each range as its body arrives. */
  async digestRanges<K extends DigestKind>(ranges: readonly ByteRange[], kind: K): Promise<Digests<K>> {
    const { digest } = this.context;
    if (!digest)
      throw new ReaderError("remote-unsupported", "no digest workers on this platform", { file: this.name });
    const { target, validator, settings, transfer, name } = this;
    return digest({ target, expect: validator, settings, ranges, kind, transfer, name });
  }

  close(): void {
    // Read-ahead still in flight moved bytes too: wait for it, so the transfer reported is the whole of it.
    for (const block of this.blocks) this.count(block, wait(block.pending));
    this.blocks = [];
  }

  private blockAt(at: number): Block | undefined {
    for (let i = this.blocks.length - 1; i >= 0; i--) {
      const block = this.blocks[i] as Block;
      if (at >= block.offset && at < block.offset + block.length) return block;
    }
    return undefined;
  }

  /** Posts the window that serves a read at `at` of `want` bytes. */
  private fetch(at: number, want: number, sequential: boolean): Block {
    let window = sequential
      ? Math.min(MAX_FETCH, Math.max(this.streamWindow * 2, want))
      : Math.max(MIN_FETCH, Math.min(want, MAX_FETCH));
    if (sequential) this.streamWindow = window;
    window = Math.min(window, this.size);
    // A read near the end takes the window that ends at the end: zip's records there are read backwards.
    const start = !sequential && at + window > this.size ? this.size - window : at;
    return this.post(start, Math.min(window, this.size - start));
  }

  private readAhead(end: number): void {
    if (end >= this.size || this.blockAt(end)) return;
    // Start where the block holding the read's last byte ends, so windows do not overlap.
    const last = this.blockAt(end - 1);
    const start = last ? last.offset + last.length : end;
    if (start >= this.size || this.blockAt(start)) return;
    this.streamWindow = Math.min(MAX_FETCH, this.streamWindow * 2);
    this.post(start, Math.min(this.streamWindow, this.size - start));
  }

  private post(offset: number, length: number): Block {
    const pending = this.context.channel.postRange(
      this.target,
      offset,
      length,
      this.validator,
      this.settings,
    );
    const block: Block = { offset, pending, length, counted: false };
    this.blocks.push(block);
    this.evict();
    return block;
  }

  /** Waits for the block and throws its failure; its transfer is counted once. */
  private settle(block: Block): void {
    const outcome = wait(block.pending);
    this.count(block, outcome);
    if (!outcome.ok) {
      this.blocks = this.blocks.filter((b) => b !== block);
      throw outcomeError(outcome, this.name);
    }
    block.length = outcome.length;
    if (outcome.validator.url !== this.validator.url)
      this.validator = { ...this.validator, url: outcome.validator.url };
  }

  private count(block: Block, outcome: FetchOutcome): void {
    if (block.counted) return;
    block.counted = true;
    this.transfer.requests += outcome.transfer.requests;
    this.transfer.bytes += outcome.transfer.bytes;
  }

  private touch(block: Block): void {
    const at = this.blocks.indexOf(block);
    if (at >= 0 && at !== this.blocks.length - 1) {
      this.blocks.splice(at, 1);
      this.blocks.push(block);
    }
  }

  /** Drops the least recently used answered windows beyond the cache's size (never one still in flight). */
  private evict(): void {
    let total = this.blocks.reduce((sum, b) => sum + b.pending.data.length, 0);
    for (let i = 0; total > CACHE_BYTES && i < this.blocks.length; ) {
      const block = this.blocks[i] as Block;
      if (!answered(block.pending) || this.blocks.length <= 2) {
        i++;
        continue;
      }
      this.count(block, wait(block.pending));
      total -= block.pending.data.length;
      this.blocks.splice(i, 1);
    }
  }
}
