import { concatBytes } from "../../reader/bytes.js";
import { ReaderError } from "../../reader/errors.js";
import { dictGet, dictSet, isBoxed, type PyDict, type PyValue, pyDict } from "../../reader/pickle/value.js";
import {
  type DcpBytesItem,
  type DcpCheckpoint,
  type DcpTensor,
  logicalTensorBytes,
  readDcpBytesItem,
} from "../../reader/sharded/index.js";
import { DCP_KEYS } from "../resume/conventions.js";

/**
 * The state dict a DCP checkpoint would load into, as the nested dict the saving code passed to `dcp.save`:
 * each tensor a `true` placeholder (the verdict needs to know it is there, not its values), each bytes item
 * its value as `torch.load` returns it, and 0-d integer tensors (torchtitan's `train_state.step`) their value.
 * Values are read only for small items, so a judgement reads kilobytes.
 */
const MAX_ITEM_BYTES = 64 * 1024;
const SCALAR_DTYPES = new Set(["int64", "int32", "int16", "int8", "uint8"]);

/** The keys a value is found at: planner data when the save recorded it, else the FQN's dotted parts. */
function keysOf(item: { readonly fqn: string; readonly path: ReadonlyArray<string | number> | null }) {
  return item.path && item.path.length > 0 ? item.path.map(String) : item.fqn.split(".");
}

function setAt(root: PyDict, keys: readonly string[], value: PyValue): void {
  let node = root;
  for (const key of keys.slice(0, -1)) {
    let next = dictGet(node, key);
    if (!isBoxed(next, "dict")) {
      next = pyDict();
      dictSet(node, key, next);
    }
    node = next;
  }
  dictSet(node, keys[keys.length - 1] as string, value);
}

function scalarValue(checkpoint: DcpCheckpoint, tensor: DcpTensor): PyValue {
  if (tensor.shape.length !== 0 || !SCALAR_DTYPES.has(tensor.dtype)) return true;
  try {
    const bytes = concatBytes([...logicalTensorBytes(checkpoint, tensor.fqn)]);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    switch (tensor.dtype) {
      case "int64":
        return Number(view.getBigInt64(0, true));
      case "int32":
        return view.getInt32(0, true);
      case "int16":
        return view.getInt16(0, true);
      case "int8":
        return view.getInt8(0);
      default:
        return view.getUint8(0);
    }
  } catch (error) {
    if (error instanceof ReaderError) return true;
    throw error;
  }
}

function itemValue(checkpoint: DcpCheckpoint, item: DcpBytesItem): PyValue {
  if (!item.storage || item.storage.length > MAX_ITEM_BYTES) return true;
  try {
    const loaded = readDcpBytesItem(checkpoint, item);
    return "root" in loaded ? loaded.root : true;
  } catch (error) {
    // An unreadable item is reported by the completeness findings; here it only counts as present.
    if (error instanceof ReaderError) return true;
    throw error;
  }
}

export function dcpStateDict(checkpoint: DcpCheckpoint): PyDict {
  const root = pyDict();
  for (const tensor of checkpoint.tensors) setAt(root, keysOf(tensor), scalarValue(checkpoint, tensor));
  for (const item of checkpoint.bytesItems) setAt(root, keysOf(item), itemValue(checkpoint, item));
  return root;
}

/** The top-level keys DCP saves hold beside the model (see `DCP_KEYS`). */
export const DCP_TRAINING_GROUPS: readonly string[] = [
  ...DCP_KEYS.optimizer,
  ...DCP_KEYS.scheduler,
  ...DCP_KEYS.training,
];

const MODEL_KEYS: readonly string[] = DCP_KEYS.model;

/**
 * The state in the shape the `dcp` convention is judged on: torchtitan flattens the model's FQNs to the top
 * level (`fc1.weight`), `get_state_dict` keeps them under `model`; either way the model is what is not a
 * training group. The PyTorch DCP recipe saves `{"app": AppState}`, so everything sits one level down
 * (`app.model`, `app.optim`): a lone top-level key whose value holds a model or an optimizer is looked into.
 */
export function dcpJudgedState(checkpoint: DcpCheckpoint): { state: PyDict; wrapper: string | null } {
  const state = dcpStateDict(checkpoint);
  const wrapper = wrapperKey(state);
  const inner = wrapper === null ? state : (dictGet(state, wrapper) as PyDict);
  return { state: judgedShape(inner), wrapper };
}

/** The lone top-level key the whole state is saved under (the recipe's `app`), or null. */
function wrapperKey(state: PyDict): string | null {
  const [key] = state.keys;
  const inner = state.values[0];
  if (state.keys.length !== 1 || typeof key !== "string" || !isBoxed(inner, "dict")) return null;
  // `{"model": sd}` is the model itself, whatever its parameters are called (a root-level `step` buffer).
  if (MODEL_KEYS.includes(key) || DCP_TRAINING_GROUPS.includes(key)) return null;
  const holdsParts = inner.keys.some(
    (k) => typeof k === "string" && (MODEL_KEYS.includes(k) || DCP_TRAINING_GROUPS.includes(k)),
  );
  return holdsParts ? key : null;
}

function judgedShape(state: PyDict): PyDict {
  if (MODEL_KEYS.some((k) => dictGet(state, k) !== undefined)) return state;
  // A set: torchtitan's flat model has one key per parameter, tens of thousands in a large model.
  const others = new Set(state.keys.filter((k) => typeof k === "string" && !DCP_TRAINING_GROUPS.includes(k)));
  if (others.size === 0) return state;
  const judged = pyDict();
  const model = pyDict();
  state.keys.forEach((key, i) => {
    if (others.has(key)) dictSet(model, key, state.values[i] as PyValue);
    else dictSet(judged, key, state.values[i] as PyValue);
  });
  dictSet(judged, "model", model);
  return judged;
}
