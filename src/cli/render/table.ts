/**
 * Every table ckpt prints, laid out in one place. On a terminal: box drawing, fitted to its width (long
 * cells shortened with "…", columns dropped by priority when shortening is not enough). Off a terminal
 * (a pipe, a file): plain columns aligned with spaces and no box drawing, as `docker ps` prints, so that
 * grep and awk see one row per line; these are cut to a width only when COLUMNS asks for one.
 */

export interface TableLayout {
  /** Columns available; undefined: no limit. */
  readonly width: number | undefined;
  /** Box drawing (a terminal) or plain aligned columns (anything else). */
  readonly boxed: boolean;
}

/** What the in-process callers (tests, library users) get unless they ask: plain and unlimited. */
export const PLAIN_LAYOUT: TableLayout = { width: undefined, boxed: false };

export interface Column {
  readonly header: string;
  /** Dropped when the table does not fit: the highest number goes first; 0 (the default) never goes. */
  readonly drop?: number;
  /** How a cell too long for its column is shortened (paths keep both ends); undefined: never shortened. */
  readonly elide?: "middle" | "end";
  /** Narrowest an elided column becomes (default 12, never below its header). */
  readonly minWidth?: number;
  readonly align?: "left" | "right";
}

/** A cell's text, and the colour it is painted with once fitted (colour never counts towards width). */
export interface Cell {
  readonly text: string;
  readonly paint?: (text: string) => string;
}
export type CellValue = string | Cell;

const ELLIPSIS = "…";

/** Columns a string takes in a terminal: one per code point (ckpt prints no wide or combining characters). */
export function displayWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** `text` in at most `width` columns: "lightning_logs/…/last.ckpt" (middle) or "the pointer names…" (end). */
export function elide(text: string, width: number, mode: "middle" | "end"): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width <= 1) return ELLIPSIS.slice(0, width);
  const keep = width - 1;
  if (mode === "end") return `${chars.slice(0, keep).join("")}${ELLIPSIS}`;
  // A path keeps its file name whole when it fits ("che…/DiMPnet_ep0003.pth.tar"), else both ends evenly.
  const slash = chars.lastIndexOf("/");
  const nameLength = chars.length - slash; // with its slash
  if (slash > 0 && nameLength <= keep) {
    return `${chars.slice(0, keep - nameLength).join("")}${ELLIPSIS}${chars.slice(slash).join("")}`;
  }
  const head = Math.floor(keep / 2);
  return `${chars.slice(0, head).join("")}${ELLIPSIS}${chars.slice(chars.length - (keep - head)).join("")}`;
}

/** One line of prose in at most `width` columns (any length when there is no limit). */
export function fitLine(text: string, width: number | undefined): string {
  return width === undefined ? text : elide(text, width, "end");
}

/** Where this process prints tables: COLUMNS wins (as for ls), then the terminal's own width. */
export function tableLayoutFor(
  stream: { readonly isTTY?: boolean; readonly columns?: number },
  env: NodeJS.ProcessEnv = process.env,
): TableLayout {
  const fromEnv = Number(env.COLUMNS);
  const envWidth = Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined;
  const boxed = stream.isTTY === true;
  const ttyWidth = boxed && stream.columns !== undefined && stream.columns > 0 ? stream.columns : undefined;
  return { width: envWidth ?? ttyWidth, boxed };
}

function textOf(value: CellValue): Cell {
  const cell = typeof value === "string" ? { text: value } : value;
  // An empty cell would shift awk's fields: say "-" instead.
  return cell.text === "" ? { ...cell, text: "-" } : cell;
}

/** Width of the borders and gaps around `n` columns. */
function overhead(n: number, boxed: boolean): number {
  return boxed ? 3 * n + 1 : 2 * Math.max(0, n - 1);
}

function minimumOf(column: Column, natural: number): number {
  if (!column.elide) return natural;
  return Math.min(natural, Math.max(column.minWidth ?? 12, displayWidth(column.header)));
}

/** Which columns stay and how wide each is, for a table whose natural widths are `natural`. */
function fitColumns(columns: readonly Column[], natural: readonly number[], layout: TableLayout) {
  let shown = columns.map((_, i) => i);
  const width = layout.width;
  if (width === undefined) return { shown, widths: [...natural] };
  const minimum = columns.map((c, i) => minimumOf(c, natural[i] ?? 0));
  const total = (indices: readonly number[], of: readonly number[]) =>
    indices.reduce((sum, i) => sum + (of[i] ?? 0), 0) + overhead(indices.length, layout.boxed);
  while (total(shown, minimum) > width) {
    const droppable = shown.filter((i) => (columns[i]?.drop ?? 0) > 0);
    if (droppable.length === 0) break;
    // The highest drop number goes first; of equals, the rightmost.
    const victim = droppable.reduce((a, b) => ((columns[b]?.drop ?? 0) >= (columns[a]?.drop ?? 0) ? b : a));
    shown = shown.filter((i) => i !== victim);
  }
  const widths = [...natural];
  let excess = total(shown, widths) - width;
  // Shorten to each column's minimum first; only a terminal too narrow for those goes below them.
  const floors = [minimum, columns.map((c) => (c.elide ? Math.max(5, displayWidth(c.header)) : Infinity))];
  for (const floor of floors) {
    while (excess > 0) {
      // The widest column that can still give loses a column: long cells lose a little each, short ones nothing.
      let widest = -1;
      for (const i of shown) {
        if ((widths[i] ?? 0) <= (floor[i] ?? 0)) continue;
        if (widest < 0 || (widths[i] ?? 0) > (widths[widest] ?? 0)) widest = i;
      }
      if (widest < 0) break;
      widths[widest] = (widths[widest] ?? 0) - 1;
      excess--;
    }
  }
  return { shown, widths };
}

function pad(cell: Cell, width: number, column: Column): string {
  const text = displayWidth(cell.text) > width ? elide(cell.text, width, column.elide ?? "end") : cell.text;
  const gap = " ".repeat(Math.max(0, width - displayWidth(text)));
  const painted = cell.paint ? cell.paint(text) : text;
  return column.align === "right" ? `${gap}${painted}` : `${painted}${gap}`;
}

/** The table as lines (no trailing newline), laid out for `layout`. */
export function renderTable(
  columns: readonly Column[],
  rows: ReadonlyArray<readonly CellValue[]>,
  layout: TableLayout,
): string {
  const header = columns.map((c) => ({ text: layout.boxed ? c.header : c.header.toUpperCase() }));
  const body = rows.map((row) => columns.map((_, i) => textOf(row[i] ?? "")));
  const natural = columns.map((_, i) =>
    Math.max(displayWidth(header[i]?.text ?? ""), ...body.map((row) => displayWidth(row[i]?.text ?? ""))),
  );
  const { shown, widths } = fitColumns(columns, natural, layout);
  const line = (cells: readonly Cell[]) =>
    shown.map((i) => pad(cells[i] ?? { text: "" }, widths[i] ?? 0, columns[i] as Column));
  if (!layout.boxed) return [header, ...body].map((cells) => line(cells).join("  ").trimEnd()).join("\n");
  const rule = (left: string, mid: string, right: string) =>
    `${left}${shown.map((i) => "─".repeat((widths[i] ?? 0) + 2)).join(mid)}${right}`;
  return [
    rule("┌", "┬", "┐"),
    `│ ${line(header).join(" │ ")} │`,
    rule("├", "┼", "┤"),
    ...body.map((cells) => `│ ${line(cells).join(" │ ")} │`),
    rule("└", "┴", "┘"),
  ].join("\n");
}

/** A cell painted with `paint` when there is one (no colour otherwise). */
export function painted(text: string, paint: ((text: string) => string) | undefined): Cell {
  return paint ? { text, paint } : { text };
}
