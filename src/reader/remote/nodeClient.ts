import http from "node:http";
import https from "node:https";
import { type HttpResponse, type HttpSend, TimeoutError } from "./client.js";

/**
 * GETs on Node's `http`/`https` with keep-alive agents: a ranged read of a checkpoint is many requests to one
 * host, and a new TCP and TLS handshake each would cost more than the bytes. Node-only (the I/O workers).
 */

const agents = {
  "http:": new http.Agent({ keepAlive: true, maxSockets: 16 }),
  "https:": new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

export const nodeSend: HttpSend = (url, headers, timeoutMs) => {
  const secure = url.protocol === "https:";
  const transport = secure ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    const request = transport.request(
      url,
      { method: "GET", headers, agent: secure ? agents["https:"] : agents["http:"] },
      (response) => {
        resolve({
          status: response.statusCode ?? 0,
          header: (name) => {
            const value = response.headers[name];
            return Array.isArray(value) ? value[0] : value;
          },
          body: response,
          cancel: () => response.destroy(),
        });
      },
    );
    // An idle timer, re-armed by every byte: a slow but moving transfer of a large range is not a timeout.
    request.setTimeout(timeoutMs, () => {
      request.destroy(new TimeoutError(`no answer from ${url.host} in ${timeoutMs / 1000} s`));
    });
    request.on("error", reject);
    request.end();
  });
};
