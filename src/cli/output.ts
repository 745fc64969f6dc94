import type { Style } from "./style.js";

/** Where a command prints: injected so commands can be run and observed in-process by tests. */
export interface Output {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly style: Style;
}
