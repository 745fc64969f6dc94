/**
 * A minimal protocol-2 pickle assembler for building torch-shaped pickles byte by byte in tests (never by
 * pickling anything). Only the opcodes torch.save itself emits.
 */
export type Op =
  | { op: "global"; module: string; name: string }
  | { op: "str"; value: string }
  | { op: "int"; value: number | bigint }
  | { op: "bool"; value: boolean }
  /** BINPUT / BINGET of memo entry `index` (below 256). */
  | { op: "put" | "get"; index: number }
  | {
      op:
        | "none"
        | "mark"
        | "tuple"
        | "emptyTuple"
        | "emptyDict"
        | "emptyList"
        | "reduce"
        | "setitems"
        | "appends"
        | "binpersid"
        | "build";
    };

function intBytes(value: number | bigint): number[] {
  const big = BigInt(value);
  if (big >= -(2n ** 31n) && big < 2n ** 31n) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(Number(big));
    return [0x4a, ...b];
  }
  // LONG1: little-endian two's complement, minimal length
  const out: number[] = [];
  let v = big;
  for (;;) {
    const byte = Number(v & 0xffn);
    out.push(byte);
    v >>= 8n;
    if ((v === 0n && byte < 0x80) || (v === -1n && byte >= 0x80)) break;
  }
  return [0x8a, out.length, ...out];
}

export function assemble(ops: readonly Op[]): Uint8Array {
  const out: number[] = [0x80, 0x02];
  for (const o of ops) {
    switch (o.op) {
      case "global":
        out.push(0x63, ...Buffer.from(`${o.module}\n${o.name}\n`, "utf8"));
        break;
      case "str": {
        const b = Buffer.from(o.value, "utf8");
        const n = Buffer.alloc(4);
        n.writeUInt32LE(b.length);
        out.push(0x58, ...n, ...b);
        break;
      }
      case "int":
        out.push(...intBytes(o.value));
        break;
      case "bool":
        out.push(o.value ? 0x88 : 0x89);
        break;
      case "put":
        out.push(0x71, o.index);
        break;
      case "get":
        out.push(0x68, o.index);
        break;
      case "none":
        out.push(0x4e);
        break;
      case "mark":
        out.push(0x28);
        break;
      case "tuple":
        out.push(0x74);
        break;
      case "emptyTuple":
        out.push(0x29);
        break;
      case "emptyDict":
        out.push(0x7d);
        break;
      case "emptyList":
        out.push(0x5d);
        break;
      case "reduce":
        out.push(0x52);
        break;
      case "setitems":
        out.push(0x75);
        break;
      case "appends":
        out.push(0x65);
        break;
      case "binpersid":
        out.push(0x51);
        break;
      case "build":
        out.push(0x62);
        break;
    }
  }
  out.push(0x2e);
  return Uint8Array.from(out);
}

const g = (module: string, name: string): Op => ({ op: "global", module, name });
const s = (value: string): Op => ({ op: "str", value });
const i = (value: number | bigint): Op => ({ op: "int", value });
const tuple = (items: Op[]): Op[] => [{ op: "mark" }, ...items, { op: "tuple" }];

export interface TensorSpec {
  readonly name: string;
  readonly storageClass: string;
  readonly key: string;
  readonly numel: number | bigint;
  readonly shape: number[];
  readonly stride: number[];
  readonly offset?: number;
  /** The saved location, `cpu` by default (`cuda:0` for a GPU save). */
  readonly device?: string;
  /** The legacy format's 6-tuple storage id (a trailing `None` view_metadata). */
  readonly legacy?: boolean;
}

/** `OrderedDict(name -> _rebuild_tensor_v2(...))`, as `torch.save(model.state_dict())` writes it. */
export function stateDictPickle(tensors: readonly TensorSpec[]): Uint8Array {
  const ops: Op[] = [g("collections", "OrderedDict"), { op: "emptyTuple" }, { op: "reduce" }, { op: "mark" }];
  for (const t of tensors) {
    ops.push(
      s(t.name),
      g("torch._utils", "_rebuild_tensor_v2"),
      ...tuple([
        ...tuple([
          s("storage"),
          g("torch", t.storageClass),
          s(t.key),
          s(t.device ?? "cpu"),
          i(t.numel),
          ...(t.legacy ? [{ op: "none" } as Op] : []),
        ]),
        { op: "binpersid" },
        i(t.offset ?? 0),
        ...tuple(t.shape.map(i)),
        ...tuple(t.stride.map(i)),
        { op: "bool", value: false },
        g("collections", "OrderedDict"),
        { op: "emptyTuple" },
        { op: "reduce" },
      ]),
      { op: "reduce" },
    );
  }
  ops.push({ op: "setitems" });
  return assemble(ops);
}
