import { type HttpResponse, type HttpSend, TimeoutError } from "./client.js";

/**
 * GETs by the platform's `fetch`, for where there is no Node (a browser's worker). The idle timeout is an
 * abort re-armed by every chunk. `redirect: "manual"` where the platform shows the redirect (Node's fetch);
 * a browser hides it (an opaque answer), so there the request is sent again with redirects followed by the
 * platform, which drops `Authorization` when they leave the origin, as the Fetch standard says.
 */
export const fetchSend: HttpSend = async (url, headers, timeoutMs) => {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(
      () => controller.abort(new TimeoutError(`no answer from ${url.host} in ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
  };
  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
  };
  const get = (redirect: "manual" | "follow") => fetch(url, { headers, redirect, signal: controller.signal });
  arm();
  let response: Response;
  try {
    response = await get("manual");
    if (response.type === "opaqueredirect") response = await get("follow");
  } catch (error) {
    disarm();
    throw controller.signal.aborted ? controller.signal.reason : error;
  }
  const stream = response.body;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (!stream) return;
    const reader = stream.getReader();
    try {
      for (;;) {
        arm();
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } catch (error) {
      throw controller.signal.aborted ? controller.signal.reason : error;
    } finally {
      disarm();
      reader.releaseLock();
    }
  }
  disarm();
  const answer: HttpResponse = {
    status: response.status,
    header: (name) => response.headers.get(name) ?? undefined,
    body: chunks(),
    cancel: () => {
      disarm();
      controller.abort();
    },
    ...(response.redirected ? { url: response.url } : {}),
  };
  return answer;
};
