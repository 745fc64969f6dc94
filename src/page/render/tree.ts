import { children, containerHeader, hiddenCount, scalarText } from "../../cli/render/inspectText.js";
import { PLAIN } from "../../cli/style.js";
import type { TreeNode } from "../../inspect/tree.js";
import { h } from "../dom.js";

/** Levels open when the tree first shows; deeper ones open on a click, and are built only then. */
const OPEN_LEVELS = 2;

/**
 * The structure tree of `ckpt inspect`, collapsible: the same wording (`inspectText.ts`'s helpers), with each
 * container a `<details>` whose children are built when it is first opened.
 */
export function structureTree(root: TreeNode): HTMLElement {
  const top = scalarText(root, PLAIN);
  if (top !== undefined) return h("div", { class: "tree" }, top);
  return h("div", { class: "tree" }, container(containerHeader(root), root, 0));
}

function container(label: string, node: TreeNode, depth: number): HTMLElement {
  const details = h("details", null, h("summary", null, label));
  let built = false;
  const build = () => {
    if (built) return;
    built = true;
    const list = h("ul");
    for (const kid of children(node)) {
      const scalar = scalarText(kid.node, PLAIN);
      list.appendChild(
        scalar !== undefined
          ? h("li", null, h("span", { class: "label" }, `${kid.label}: `), scalar)
          : h("li", null, container(`${kid.label}: ${containerHeader(kid.node)}`, kid.node, depth + 1)),
      );
    }
    const hidden = hiddenCount(node);
    if (hidden > 0) list.appendChild(h("li", { class: "muted" }, `... ${hidden} more`));
    details.appendChild(list);
  };
  details.addEventListener("toggle", () => {
    if (details.open) build();
  });
  if (depth < OPEN_LEVELS) {
    build();
    details.open = true;
  }
  return details;
}
