import { ReaderError } from "../errors.js";
import type { ByteSource } from "../source.js";

/**
 * Bytes `[offset, offset + length)` of another source, presented as a whole input of their own: a DCP item
 * inside a `.distcp` file is a complete `torch.save` archive whose zip offsets count from the item's first
 * byte, so the existing readers open it unchanged. Closing it leaves the parent open (its owner closes it).
 */
export class RangeSource implements ByteSource {
  readonly size: number;
  private readonly parent: ByteSource;
  private readonly start: number;
  private readonly label: string | undefined;

  constructor(parent: ByteSource, offset: number, length: number, name?: string) {
    if (offset < 0 || length < 0 || offset + length > parent.size) {
      throw new ReaderError(
        "io-error",
        `bytes ${offset}..${offset + length} lie outside the ${parent.size}-byte input`,
        { offset, file: parent.name },
      );
    }
    this.parent = parent;
    this.start = offset;
    this.size = length;
    this.label = name;
  }

  /** Made when asked (for an error): a DCP scan makes a range for each of hundreds of thousands of items. */
  get name(): string {
    return this.label ?? `${this.parent.name}[${this.start}..${this.start + this.size}]`;
  }

  read(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    return this.parent.read(this.start + offset, length);
  }

  readInto(target: Uint8Array, offset: number): Uint8Array {
    this.check(offset, target.length);
    return this.parent.readInto(target, this.start + offset);
  }

  assertUnchanged(): void {
    this.parent.assertUnchanged();
  }

  close(): void {}

  private check(offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new ReaderError(
        "io-error",
        `read of ${length} bytes at offset ${offset} is outside the ${this.size}-byte input`,
        { offset, file: this.name },
      );
    }
  }
}
