import { NodeTree } from "../../reader/nodeTree.js";
import { type TreeFiles, treeFiles } from "../treeFiles.js";

/**
 * The file system as a tree, paths absolute: what single-file commands (inspect) need of `node.ts`, in a
 * module of its own so that they load none of run analysis (layouts, plans, the YAML parser).
 */
let local: TreeFiles | undefined;

export function localFiles(): TreeFiles {
  local ??= treeFiles(new NodeTree("/"));
  return local;
}
