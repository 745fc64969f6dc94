/**
 * A virtualised list of fixed-height rows: only the rows in view (and a few either side) exist in the DOM,
 * so 200,000 tensors scroll as smoothly as 20. Fixed heights make this arithmetic, not measurement, which is
 * why it is this small (README, "In the browser": why not a library).
 */
export interface VirtualList {
  readonly element: HTMLElement;
  /** New row count (after filtering or sorting); keeps the scroll position where it can. */
  setCount(count: number): void;
  /** Re-renders the rows in view (a hash arrived). */
  refresh(): void;
}

const OVERSCAN = 8;
/** The viewport's height at most; a short list is as tall as its rows. */
const MAX_HEIGHT = 480;

export function virtualList(
  rowHeight: number,
  renderRow: (index: number) => HTMLElement,
  className: string,
): VirtualList {
  const viewport = document.createElement("div");
  viewport.className = className;
  const spacer = document.createElement("div");
  spacer.className = "spacer";
  viewport.appendChild(spacer);
  let count = 0;
  let first = -1;
  let last = -1;

  const render = (force: boolean) => {
    const height = viewport.clientHeight || MAX_HEIGHT;
    const from = Math.max(0, Math.floor(viewport.scrollTop / rowHeight) - OVERSCAN);
    const to = Math.min(count, Math.ceil((viewport.scrollTop + height) / rowHeight) + OVERSCAN);
    if (!force && from === first && to === last) return;
    first = from;
    last = to;
    const rows = document.createDocumentFragment();
    for (let i = from; i < to; i++) {
      const row = renderRow(i);
      row.style.transform = `translateY(${i * rowHeight}px)`;
      rows.appendChild(row);
    }
    spacer.replaceChildren(rows);
  };

  let pending = false;
  viewport.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render(false);
    });
  });
  new ResizeObserver(() => render(false)).observe(viewport);

  return {
    element: viewport,
    setCount(next) {
      count = next;
      spacer.style.height = `${count * rowHeight}px`;
      viewport.style.height = `${Math.min(MAX_HEIGHT, count * rowHeight)}px`;
      render(true);
    },
    refresh: () => render(true),
  };
}
