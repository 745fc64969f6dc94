import type { WeightsOnlyVerdict } from "../../inspect/security/weightsOnly.js";

/** The answer to "does torch.load(weights_only=True) load it?", for inspect's and scan's text. */
export function weightsOnlyText(verdict: WeightsOnlyVerdict, options: { detail: boolean }): string {
  if (verdict.loads) return "loads with torch.load(weights_only=True)";
  const other = verdict.blockers.find((b) => b.kind === "format" || b.kind === "not-loadable");
  const detail = other && options.detail ? ` (${other.detail})` : "";
  if (other?.kind === "format") return `weights_only does not apply${detail}`;
  if (other?.kind === "not-loadable") return `torch.load cannot read it${detail}`;
  return options.detail ? "does not load with weights_only=True" : "needs weights_only=False (see findings)";
}
