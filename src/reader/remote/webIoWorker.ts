import { fetchSend } from "./fetchClient.js";
import type { WorkerRequest } from "./protocol.js";
import { serve } from "./serve.js";

/** The browser's I/O worker (`webChannel.ts` starts it): each request fetched by `fetch`. Portable. */
const scope = globalThis as unknown as { onmessage: ((event: { data: WorkerRequest }) => void) | null };
scope.onmessage = (event) => void serve(event.data, fetchSend);
