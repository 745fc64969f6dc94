import type { SignatureV4 } from "@smithy/signature-v4";
import type { RemoteAuth } from "./protocol.js";

/**
 * AWS Signature V4 for S3 GETs, by the AWS SDK's own signer (`@smithy/signature-v4`, see the README for why
 * that one). Portable: its hashes are the platform's WebCrypto (`crypto.subtle`, in Node >= 20 and every
 * browser), so nothing here imports Node. Runs in the I/O worker: the signer is asynchronous. Imported on the
 * first s3:// request only: the SDK's modules are a quarter of the bundle every command would compile and
 * evaluate at start-up.
 */

type Data = string | ArrayBuffer | ArrayBufferView;

function bytes(data: Data): Uint8Array {
  if (typeof data === "string") return new TextEncoder().encode(data);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The signer's `Checksum` interface (SHA-256, or HMAC-SHA-256 with a secret) over WebCrypto. */
class WebSha256 {
  private readonly secret: Uint8Array | undefined;
  private parts: Uint8Array[] = [];

  constructor(secret?: Data) {
    this.secret = secret === undefined ? undefined : bytes(secret);
  }

  update(data: Data): void {
    this.parts.push(bytes(data).slice());
  }

  async digest(): Promise<Uint8Array> {
    const input = new Uint8Array(this.parts.reduce((sum, p) => sum + p.length, 0));
    let at = 0;
    for (const part of this.parts) {
      input.set(part, at);
      at += part.length;
    }
    const { subtle } = globalThis.crypto;
    if (!this.secret) return new Uint8Array(await subtle.digest("SHA-256", input));
    const key = await subtle.importKey("raw", this.secret, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ]);
    return new Uint8Array(await subtle.sign("HMAC", key, input));
  }

  reset(): void {
    this.parts = [];
  }
}

/** sha256 of the empty body: S3 wants the payload's hash in `x-amz-content-sha256`, and a GET has none. */
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const signers = new Map<string, SignatureV4>();

async function signerFor(auth: Extract<RemoteAuth, { kind: "s3" }>): Promise<SignatureV4> {
  const key = `${auth.accessKeyId}\0${auth.secretAccessKey}\0${auth.sessionToken ?? ""}\0${auth.region}`;
  let signer = signers.get(key);
  if (!signer) {
    const { SignatureV4 } = await import("@smithy/signature-v4");
    signer = new SignatureV4({
      service: "s3",
      region: auth.region,
      credentials: {
        accessKeyId: auth.accessKeyId,
        secretAccessKey: auth.secretAccessKey,
        ...(auth.sessionToken ? { sessionToken: auth.sessionToken } : {}),
      },
      sha256: WebSha256,
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
      const signed = await (await signerFor(auth)).sign({
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
