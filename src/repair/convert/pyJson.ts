/**
 * `json.dumps(value, indent=2, sort_keys=True)` as Python writes it, for index files that must match what
 * transformers writes byte for byte: keys sorted by code point, non-ASCII escaped as `\uXXXX`
 * (`ensure_ascii`), `", "`-free separators with indent, integers as integers.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

function quote(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const char = text[i] as string;
    if (char === '"') out += '\\"';
    else if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char === "\b") out += "\\b";
    else if (char === "\f") out += "\\f";
    else if (code < 0x20 || code > 0x7e) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += char;
  }
  return `${out}"`;
}

const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

function dump(value: JsonValue, depth: number): string {
  const pad = "  ".repeat(depth + 1);
  const close = "  ".repeat(depth);
  if (value === null) return "null";
  if (typeof value === "string") return quote(value);
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[\n${value.map((v) => pad + dump(v, depth + 1)).join(",\n")}\n${close}]`;
  }
  const keys = Object.keys(value).sort(byCodePoint);
  if (keys.length === 0) return "{}";
  return `{\n${keys.map((k) => `${pad}${quote(k)}: ${dump(value[k] as JsonValue, depth + 1)}`).join(",\n")}\n${close}}`;
}

export function pythonJsonDumps(value: JsonValue): string {
  return dump(value, 0);
}
