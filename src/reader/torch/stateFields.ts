/**
 * What the tuple a class's `__getstate__` returns holds, position by position, for the torch classes whose
 * pickled state is a tuple rather than an attribute dict. Quantized modules are the ones that matter: their
 * weights live only there (torch's `state_dict()` shows packed parameters as opaque objects), so naming the
 * positions is what lets a reader list those weights under paths a person recognises.
 */

/** `torch.ao.nn.quantized.modules.conv._ConvNd.__getstate__` (also ConvReLU, ConvTranspose, torch <= 1.x paths). */
const QUANTIZED_CONV = [
  "in_channels",
  "out_channels",
  "kernel_size",
  "stride",
  "padding",
  "dilation",
  "transposed",
  "output_padding",
  "groups",
  "padding_mode",
  "weight",
  "bias",
  "scale",
  "zero_point",
  "training",
] as const;

/** `torch.ao.nn.quantized.modules.linear.LinearPackedParams.__getstate__`. */
const LINEAR_PACKED_PARAMS = ["weight", "bias", "training", "dtype"] as const;

/** The C++ `LinearPackedParamsBase` (`torch.classes.quantized`) pickles its unpacked `(weight, bias)`. */
const LINEAR_PACKED_PARAMS_BASE = ["weight", "bias"] as const;

/**
 * Field names for a class's tuple state, by its qualified name; TorchScript archives prefix classes with
 * `__torch__.`. Undefined for classes whose state is not known to be such a tuple.
 */
export function stateFieldNames(className: string): readonly string[] | undefined {
  const name = className.startsWith("__torch__.") ? className.slice("__torch__.".length) : className;
  const dot = name.lastIndexOf(".");
  const module = name.slice(0, dot);
  const cls = name.slice(dot + 1);
  if (name === "torch.classes.quantized.LinearPackedParamsBase") return LINEAR_PACKED_PARAMS_BASE;
  if (!/(?:^|\.)quantized(?:\.|$)/.test(module)) return undefined;
  if (cls === "LinearPackedParams") return LINEAR_PACKED_PARAMS;
  if (/^Conv(?:Transpose)?(?:Add)?(?:ReLU)?[123]d$|^Conv(?:Add)?ReLU[123]d$|^ConvBn/.test(cls))
    return QUANTIZED_CONV;
  return undefined;
}
