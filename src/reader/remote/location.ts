import { ReaderError } from "../errors.js";
import type { AwsSettings, Env } from "./awsConfig.js";
import type { RemoteAuth, RemoteTarget } from "./protocol.js";

/**
 * What a remote path names. `https://` and `http://` are URLs as given; `s3://BUCKET/KEY` is an S3 object or
 * prefix (the AWS endpoint of the region, or `AWS_ENDPOINT_URL` path-style); `hf://ORG/REPO[@REV]/PATH`
 * (`hf://datasets/...`, `hf://spaces/...` for those repos) is a file or directory of a Hub repo at revision
 * REV (default `main`), fetched through the Hub's resolve URLs (`HF_ENDPOINT`, default huggingface.co) with
 * `HF_TOKEN` when set.
 */
export type RemoteLocation =
  | { readonly kind: "http"; readonly url: URL }
  | {
      readonly kind: "s3";
      readonly bucket: string;
      /** Without a leading slash; empty for the bucket's root. */
      readonly key: string;
      /** The bucket's URL, ending in `/`. */
      readonly base: string;
      readonly auth: RemoteAuth;
    }
  | {
      readonly kind: "hf";
      readonly repoType: "models" | "datasets" | "spaces";
      readonly repo: string;
      readonly revision: string;
      /** In the repo, without a leading slash; empty for its root. */
      readonly path: string;
      readonly endpoint: string;
      readonly auth: RemoteAuth;
    };

export function isRemotePath(path: string): boolean {
  return /^(https?|s3|hf):\/\//i.test(path);
}

function unsupported(path: string, why: string): ReaderError {
  return new ReaderError("remote-unsupported", `${why}: ${path}`, { file: path });
}

/** RFC 3986 escaping per segment, as S3's canonical request wants it (`/` kept between segments). */
export function escapePath(path: string): string {
  return path
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment).replace(
        /[!'()*]/g,
        (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
      ),
    )
    .join("/");
}

function s3Base(bucket: string, region: string, endpoint: string | undefined): string {
  if (endpoint) return `${endpoint.replace(/\/+$/, "")}/${bucket}/`;
  // Virtual-hosted style, except for bucket names with dots, which the wildcard certificate does not cover.
  return bucket.includes(".")
    ? `https://s3.${region}.amazonaws.com/${bucket}/`
    : `https://${bucket}.s3.${region}.amazonaws.com/`;
}

/**
 * `env`: the environment (`HF_TOKEN`, `HF_ENDPOINT`); `aws`: what `awsSettings` found, asked for s3:// only.
 * @throws ReaderError `remote-unsupported` for a malformed remote path.
 */
export function parseRemote(path: string, env: Env, aws: () => AwsSettings): RemoteLocation {
  const scheme = path.slice(0, path.indexOf(":")).toLowerCase();
  if (scheme === "http" || scheme === "https") {
    try {
      return { kind: "http", url: new URL(path) };
    } catch {
      throw unsupported(path, "not a valid URL");
    }
  }
  const rest = path.slice(scheme.length + 3);
  if (scheme === "s3") {
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw unsupported(path, "not a valid S3 bucket name");
    const { credentials, region, endpoint } = aws();
    const auth: RemoteAuth = credentials ? { kind: "s3", region, ...credentials } : { kind: "none" };
    const key = slash < 0 ? "" : rest.slice(slash + 1);
    return { kind: "s3", bucket, key, base: s3Base(bucket, region, endpoint), auth };
  }
  if (scheme === "hf") {
    const parts = rest.split("/");
    const repoType = parts[0] === "datasets" || parts[0] === "spaces" ? parts[0] : "models";
    if (repoType !== "models") parts.shift();
    const [org, repoAt, ...inRepo] = parts;
    if (!org || !repoAt) throw unsupported(path, "an hf:// path names ORG/REPO first");
    const at = repoAt.indexOf("@");
    const repo = `${org}/${at < 0 ? repoAt : repoAt.slice(0, at)}`;
    const revision = at < 0 ? "main" : decodeURIComponent(repoAt.slice(at + 1));
    if (revision === "") throw unsupported(path, "an empty revision after @");
    const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
    return {
      kind: "hf",
      repoType,
      repo,
      revision,
      path: inRepo.filter((p) => p !== "").join("/"),
      endpoint: (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, ""),
      auth: token ? { kind: "bearer", token } : { kind: "none" },
    };
  }
  throw unsupported(path, "not a remote path");
}

/** The location of `relative` below a directory location. */
export function childOf(location: RemoteLocation, relative: string): RemoteLocation {
  if (relative === "") return location;
  switch (location.kind) {
    case "http": {
      const base = location.url.href.endsWith("/") ? location.url : new URL(`${location.url.href}/`);
      return { kind: "http", url: new URL(escapePath(relative), base) };
    }
    case "s3":
      return {
        ...location,
        key: [location.key.replace(/\/+$/, ""), relative].filter((p) => p !== "").join("/"),
      };
    case "hf":
      return {
        ...location,
        path: [location.path.replace(/\/+$/, ""), relative].filter((p) => p !== "").join("/"),
      };
  }
}

/** What to GET for the object at `location`. */
export function objectTarget(location: RemoteLocation): RemoteTarget {
  switch (location.kind) {
    case "http":
      return { url: location.url.href, auth: { kind: "none" } };
    case "s3":
      return { url: `${location.base}${escapePath(location.key)}`, auth: location.auth };
    case "hf": {
      const prefix = location.repoType === "models" ? "" : `${location.repoType}/`;
      const url = `${location.endpoint}/${prefix}${location.repo}/resolve/${encodeURIComponent(location.revision)}/${escapePath(location.path)}`;
      return { url, auth: location.auth };
    }
  }
}

/** The name shown for a location: the path as the user would write it. */
export function displayName(location: RemoteLocation): string {
  switch (location.kind) {
    case "http":
      return location.url.href;
    case "s3":
      return `s3://${location.bucket}/${location.key}`;
    case "hf": {
      const prefix = location.repoType === "models" ? "" : `${location.repoType}/`;
      const revision = location.revision === "main" ? "" : `@${location.revision}`;
      return `hf://${prefix}${location.repo}${revision}${location.path ? `/${location.path}` : ""}`;
    }
  }
}
