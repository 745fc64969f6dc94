import { createRequire } from "node:module";

/**
 * Node built-ins that only some commands need, required on first use rather than imported. The CLI ships as
 * one CommonJS bundle (rolldown.config.mjs) so that V8's code cache can keep it compiled on Node 20, and a
 * bundler hoists every static import to the top of that one file: a static `import "node:http"` anywhere
 * would load http (and tls, crypto, net...) at every start, about 10 ms apiece. Worker entries, which need
 * their built-ins at once, import them statically.
 */
const require = createRequire(import.meta.url);

/** A Node built-in, required on first use. */
export function lazyBuiltin<T>(name: string): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= require(name) as T;
    return loaded;
  };
}

export const nodeCrypto = lazyBuiltin<typeof import("node:crypto")>("node:crypto");
export const nodeStream = lazyBuiltin<typeof import("node:stream")>("node:stream");
export const nodeZlib = lazyBuiltin<typeof import("node:zlib")>("node:zlib");
export const nodeWorkerThreads = lazyBuiltin<typeof import("node:worker_threads")>("node:worker_threads");
