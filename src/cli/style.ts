import { type TableLayout, tableLayoutFor } from "./render/table.js";

/**
 * What the output device can show, injected into renderers so that they stay pure: colour (on a TTY
 * without NO_COLOR) and how tables are laid out (fitted and boxed on a TTY, plain columns elsewhere).
 */
export interface Style {
  readonly bold: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly red: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly green: (text: string) => string;
  readonly cyan: (text: string) => string;
  /** Absent: plain columns of any width (in-process callers, tests). */
  readonly table?: TableLayout;
}

const wrap =
  (open: number, close: number) =>
  (text: string): string =>
    `\u001b[${open}m${text}\u001b[${close}m`;

export const COLOR: Style = {
  bold: wrap(1, 22),
  dim: wrap(2, 22),
  red: wrap(31, 39),
  yellow: wrap(33, 39),
  green: wrap(32, 39),
  cyan: wrap(36, 39),
};

const identity = (text: string): string => text;
export const PLAIN: Style = {
  bold: identity,
  dim: identity,
  red: identity,
  yellow: identity,
  green: identity,
  cyan: identity,
};

function colourFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Style {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return PLAIN;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return COLOR;
  return stream.isTTY ? COLOR : PLAIN;
}

export function styleFor(
  stream: { readonly isTTY?: boolean; readonly columns?: number },
  env: NodeJS.ProcessEnv = process.env,
): Style {
  return { ...colourFor(stream, env), table: tableLayoutFor(stream, env) };
}
