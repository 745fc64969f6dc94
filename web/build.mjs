// Build steps of the page (src/page/), used by rolldown.config.mjs.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";

const BUILTINS = new Set(builtinModules);

/**
 * The build check of issue 17: the page's bundle imports no Node built-in. A `node:` (or bare built-in)
 * import anywhere in the page's module graph stops the build with the importing file's name.
 */
export function nodeFree() {
  return {
    name: "ckpt-node-free",
    resolveId(id, importer) {
      const name = id.startsWith("node:") ? id.slice(5) : id;
      if (!id.startsWith("node:") && !BUILTINS.has(name)) return null;
      this.error(`${importer ?? "(entry)"} imports ${id}: the page's bundle must not use Node built-ins`);
    },
  };
}

const sha256 = (text) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/**
 * The Content-Security-Policy of the page: its one script and one style by hash, its worker from a blob: URL,
 * no network at all (`ckpt view` serves a copy that may reach its own origin), no eval (no 'unsafe-eval').
 */
export function pageCsp(script, style, connect = "'none'") {
  return [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "worker-src blob:",
    `connect-src ${connect}`,
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
}

/** Script text safe inside <script>: no `</script` or `<!--` can end or change the element early. */
function inlineSafe(code) {
  return code.replace(/<(?=\/script|!--)/gi, "\\x3C");
}

/**
 * Replaces the page's script chunk with dist/web/index.html: the template with the style, the script (with
 * the worker's code as a string in it) and the CSP that names both by hash.
 */
export function webPage({ worker, out }) {
  return {
    name: "ckpt-web-page",
    generateBundle(_options, bundle) {
      const [fileName, chunk] = Object.entries(bundle).find(([, c]) => c.type === "chunk" && c.isEntry);
      const workerCode = readFileSync(worker, "utf8");
      // The minifier may quote the marker with any of the three quotes.
      const marker = /(["'`])__CKPT_WORKER_SOURCE__\1/;
      if (!marker.test(chunk.code)) this.error("the page script has no worker marker");
      const json = JSON.stringify(workerCode).replace(/</g, "\\u003c");
      const script = inlineSafe(chunk.code.replace(marker, () => json));
      const style = readFileSync("src/page/style.css", "utf8").trim();
      const template = readFileSync("src/page/index.html", "utf8");
      const html = template
        .replace("__CKPT_CSP__", () => pageCsp(script, style))
        .replace("/*__CKPT_STYLE__*/", () => style)
        .replace("__CKPT_SCRIPT__", () => script);
      delete bundle[fileName];
      this.emitFile({ type: "asset", fileName: out, source: html });
    },
  };
}
