/**
 * JSON as every command prints it: what `JSON.stringify(value, null, 2)` prints, except that the items of
 * arrays under the keys in `oneLineItems` are written compact, one per line. A report of 200,000 tensors is
 * then 40 MB rather than 66 MB (4.4 million lines), each tensor stays one greppable line, and the text goes
 * to `write` in pieces of about 1 MB rather than as one string twice the size of the report.
 */
export function writeJson(
  value: unknown,
  write: (text: string) => void,
  oneLineItems: readonly string[] = [],
): void {
  const pending: string[] = [];
  let pendingLength = 0;
  const emit = (text: string): void => {
    pending.push(text);
    pendingLength += text.length;
    if (pendingLength >= CHUNK_CHARS) flush();
  };
  const flush = (): void => {
    if (pending.length === 0) return;
    write(pending.join(""));
    pending.length = 0;
    pendingLength = 0;
  };
  const oneLine = new Set(oneLineItems);

  const visit = (node: unknown, indent: string, compactItems: boolean): void => {
    if (Array.isArray(node)) {
      if (node.length === 0) {
        emit("[]");
        return;
      }
      const inner = `${indent}  `;
      emit("[");
      node.forEach((item, i) => {
        emit(i === 0 ? `\n${inner}` : `,\n${inner}`);
        if (compactItems) emit(JSON.stringify(item) ?? "null");
        else visit(item ?? null, inner, false);
      });
      emit(`\n${indent}]`);
      return;
    }
    if (node !== null && typeof node === "object" && !("toJSON" in node)) {
      const entries = Object.entries(node).filter(([, v]) => isSerializable(v));
      if (entries.length === 0) {
        emit("{}");
        return;
      }
      const inner = `${indent}  `;
      emit("{");
      entries.forEach(([key, v], i) => {
        emit(`${i === 0 ? "\n" : ",\n"}${inner}${JSON.stringify(key)}: `);
        visit(v, inner, oneLine.has(key));
      });
      emit(`\n${indent}}`);
      return;
    }
    emit(JSON.stringify(node, null, 2)?.replaceAll("\n", `\n${indent}`) ?? "null");
  };

  visit(value, "", false);
  emit("\n");
  flush();
}

const CHUNK_CHARS = 1 << 20;

/** What `JSON.stringify` keeps as an object property. */
function isSerializable(value: unknown): boolean {
  return value !== undefined && typeof value !== "function" && typeof value !== "symbol";
}
