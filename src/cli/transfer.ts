import type { Transfer } from "../reader/remote/protocol.js";
import { formatBytes, formatCount } from "./format.js";

/** What remote reads moved, in one line for people (`--json` carries the numbers as `transfer`). */
export function transferLine(transfer: Readonly<Transfer>): string {
  const requests = `${formatCount(transfer.requests)} request${transfer.requests === 1 ? "" : "s"}`;
  return `transferred: ${requests}, ${formatBytes(transfer.bytes)}\n`;
}

export function addTransfers(transfers: ReadonlyArray<Readonly<Transfer> | undefined>): Transfer | undefined {
  const present = transfers.filter((t): t is Readonly<Transfer> => t !== undefined);
  if (present.length === 0) return undefined;
  return present.reduce((sum, t) => ({ requests: sum.requests + t.requests, bytes: sum.bytes + t.bytes }), {
    requests: 0,
    bytes: 0,
  });
}
