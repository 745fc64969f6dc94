// An S3-compatible store on loopback for the tests: s3rver (the S3 REST API, ranges, ListObjectsV2) behind a
// front that verifies AWS Signature V4 itself, since s3rver does not ("Signature version 4 calculation is
// unimplemeneted", lib/middleware/authentication.js). The verifier below is written from AWS's specification
// with node:crypto, independently of the signer ckpt uses (@smithy/signature-v4), so a request passes only
// when both agree. The front counts requests and body bytes. Runs in its own process (ckpt's remote reads
// block the calling thread); test/helpers/s3Server.ts forks it.
//
//   node s3ServerProcess.mjs DIR BUCKET ACCESS_KEY SECRET     (uploads every file below DIR, then says { ready })
import { createHash, createHmac } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, request } from "node:http";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import S3rver from "s3rver";

const [dir, bucket, accessKey, secret] = process.argv.slice(2);
const served = { requests: 0, bytes: 0, log: [] };

const storeDir = join(tmpdir(), `ckpt-s3rver-${process.pid}`);
const store = await new S3rver({
  port: 0,
  address: "127.0.0.1",
  silent: true,
  directory: storeDir,
  configureBuckets: [{ name: bucket }],
}).run();
const backend = store.port;

/** RFC 3986 escaping, as SigV4 wants it (`~` kept; space as %20). */
function rfc3986(text) {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const hmac = (key, text) => createHmac("sha256", key).update(text, "utf8").digest();
const sha256 = (text) => createHash("sha256").update(text, "utf8").digest("hex");

/** Why the request's signature is wrong, or undefined when it is right. */
function signatureProblem(req) {
  const header = req.headers.authorization;
  if (!header) return { code: "AccessDenied", message: "Access Denied (no Authorization header)" };
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      header,
    );
  if (!match) return { code: "AccessDenied", message: `not a SigV4 Authorization header: ${header}` };
  const [, key, date, region, signedHeaders, signature] = match;
  if (key !== accessKey) return { code: "InvalidAccessKeyId", message: `unknown access key ${key}` };
  const amzDate = req.headers["x-amz-date"];
  if (typeof amzDate !== "string" || !amzDate.startsWith(date))
    return { code: "AccessDenied", message: "x-amz-date missing or not the credential's date" };
  const when = Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, "$1-$2-$3T$4:$5:$6Z"));
  if (!(Math.abs(Date.now() - when) < 15 * 60 * 1000))
    return { code: "RequestTimeTooSkewed", message: "the request's time is too far from the server's" };
  const names = signedHeaders.split(";");
  if (!names.includes("host") || !names.includes("x-amz-date"))
    return { code: "AccessDenied", message: "host and x-amz-date must be signed" };
  const url = new URL(req.url, "http://front");
  const query = [...url.searchParams]
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const headers = names
    .map(
      (n) =>
        `${n}:${String(req.headers[n] ?? "")
          .trim()
          .replace(/\s+/g, " ")}\n`,
    )
    .join("");
  // Without the header (plain SigV4, as curl --aws-sigv4 signs), the payload hash is that of the empty body.
  const payload = req.headers["x-amz-content-sha256"] ?? sha256("");
  // S3's canonical URI is the path as sent (escaped once), not escaped again.
  const canonical = [req.method, url.pathname, query, headers, signedHeaders, payload].join("\n");
  const scope = `${date}/${region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), "s3"), "aws4_request");
  const expected = createHmac("sha256", signingKey).update(toSign, "utf8").digest("hex");
  if (expected !== signature) {
    return {
      code: "SignatureDoesNotMatch",
      message:
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    };
  }
  return undefined;
}

const front = createServer((req, res) => {
  served.requests += 1;
  const entry = { path: req.url, range: req.headers.range, status: 0 };
  served.log.push(entry);
  const problem = signatureProblem(req);
  if (problem) {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${problem.code}</Code><Message>${problem.message}</Message></Error>`;
    entry.status = 403;
    served.bytes += Buffer.byteLength(body);
    res.writeHead(403, { "content-type": "application/xml" });
    res.end(body);
    return;
  }
  // Verified here; s3rver takes the request anonymously (it would refuse a key it does not know).
  const { authorization: _a, ...headers } = req.headers;
  const upstream = request(
    {
      host: "127.0.0.1",
      port: backend,
      method: req.method,
      path: req.url,
      headers: { ...headers, host: `127.0.0.1:${backend}` },
    },
    (answer) => {
      entry.status = answer.statusCode;
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.on("data", (chunk) => {
        served.bytes += chunk.length;
      });
      answer.pipe(res);
    },
  );
  upstream.on("error", () => res.destroy());
  req.pipe(upstream);
});

/** Uploads every file below `dir` (keys relative to it), anonymously, straight to s3rver. */
async function upload(root, at = root) {
  for (const name of readdirSync(at)) {
    const path = join(at, name);
    if (statSync(path).isDirectory()) {
      await upload(root, path);
      continue;
    }
    const key = relative(root, path).split("\\").join("/");
    const body = readFileSync(path);
    await new Promise((resolve, reject) => {
      const put = request(
        {
          host: "127.0.0.1",
          port: backend,
          method: "PUT",
          path: `/${bucket}/${key.split("/").map(rfc3986).join("/")}`,
          headers: { "content-length": body.length },
        },
        (answer) => {
          answer.resume();
          answer.on("end", () =>
            answer.statusCode === 200 ? resolve() : reject(new Error(`PUT ${key}: ${answer.statusCode}`)),
          );
        },
      );
      put.on("error", reject);
      put.end(body);
    });
  }
}

await upload(dir);
process.on("message", (message) => {
  if (message.kind === "reset") {
    served.requests = 0;
    served.bytes = 0;
    served.log = [];
  }
  process.send?.({ id: message.id, served });
});
front.keepAliveTimeout = 30_000;
front.listen(0, "127.0.0.1", () => process.send?.({ ready: front.address().port }));
// Ends with the test process that started it (or its kill), leaving no objects behind.
const stop = () => {
  rmSync(storeDir, { recursive: true, force: true });
  process.exit(0);
};
process.on("disconnect", stop);
process.on("SIGTERM", stop);
