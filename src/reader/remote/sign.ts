import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import type { RemoteAuth } from "./protocol.js";

/**
 * AWS Signature V4 for S3 GETs, by the AWS SDK's own signer (`@smithy/signature-v4`, see the README for why
 * that one). Runs in the I/O worker: the signer is asynchronous, and every network wait happens there anyway.
 */

/** The signer's hash interface over node:crypto (the SDK would otherwise bring a pure-JS SHA-256). */
class NodeSha256 {
  private hash: Hash | Hmac;
  private readonly secret: Parameters<typeof createHmac>[1] | undefined;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret = secret === undefined ? undefined : toKey(secret);
    this.hash = this.fresh();
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === "string" ? data : toKey(data));
  }

  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }

  reset(): void {
    this.hash = this.fresh();
  }

  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", this.secret);
  }
}

function toKey(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** sha256 of the empty body: S3 wants the payload's hash in `x-amz-content-sha256`, and a GET has none. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const signers = new Map<string, SignatureV4>();

function signerFor(auth: Extract<RemoteAuth, { kind: "s3" }>): SignatureV4 {
  const key = `${auth.accessKeyId}\0${auth.secretAccessKey}\0${auth.sessionToken ?? ""}\0${auth.region}`;
  let signer = signers.get(key);
  if (!signer) {
    signer = new SignatureV4({
      service: "s3",
      region: auth.region,
      credentials: {
        accessKeyId: auth.accessKeyId,
        secretAccessKey: auth.secretAccessKey,
        ...(auth.sessionToken ? { sessionToken: auth.sessionToken } : {}),
      },
      sha256: NodeSha256,
      // S3 alone takes the path as sent (already escaped once by us), not escaped a second time.
      uriEscapePath: false,
      applyChecksum: false,
    });
    signers.set(key, signer);
  }
  return signer;
}

/** The headers to send for a GET of `url`: `headers` plus what `auth` adds (signature, token). */
export async function authorise(
  url: URL,
  headers: Record<string, string>,
  auth: RemoteAuth,
): Promise<Record<string, string>> {
  switch (auth.kind) {
    case "none":
      return headers;
    case "bearer":
      return { ...headers, authorization: `Bearer ${auth.token}` };
    case "s3": {
      const query: Record<string, string> = {};
      for (const [name, value] of url.searchParams) query[name] = value;
      const signed = await signerFor(auth).sign({
        method: "GET",
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { ...headers, host: url.host, "x-amz-content-sha256": EMPTY_SHA256 },
      });
      return signed.headers as Record<string, string>;
    }
  }
}
