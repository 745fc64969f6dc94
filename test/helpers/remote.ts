/**
 * What a local and a remote report must share: everything but where the bytes came from (the file's path or
 * URL, wherever it appears, and the remote report's `transfer`).
 */
export function withoutSource(json: string, base: string): unknown {
  const parsed = JSON.parse(json.replaceAll(base, "<base>"));
  const strip = (report: Record<string, unknown>) => {
    const { transfer: _transfer, ...rest } = report;
    if (rest.source && typeof rest.source === "object") {
      const { transfer: _t, ...source } = rest.source as Record<string, unknown>;
      rest.source = source;
    }
    return rest;
  };
  return Array.isArray(parsed) ? parsed.map(strip) : strip(parsed);
}
