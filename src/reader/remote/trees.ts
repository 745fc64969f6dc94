import { ReaderError } from "../errors.js";
import type { ByteSource } from "../source.js";
import { baseName, joinPath, parentPath, type TreeEntry, type TreeSource, type TreeStat } from "../tree.js";
import { outcomeError } from "./channel.js";
import { childOf, escapePath, objectTarget, type RemoteLocation } from "./location.js";
import type { Transfer } from "./protocol.js";
import { type RemoteContext, RemoteSource, type Transferring } from "./remoteSource.js";

/**
 * Remote directories as `TreeSource`s: an S3 prefix (ListObjectsV2, `/` as the delimiter), a Hub repo's
 * directory (the Hub's tree API), and a plain HTTP directory, which has no listing at all: it lists only the
 * files it was told of (those an index or a DCP `.metadata` names), each probed with one ranged GET whose first
 * 64 KiB are kept for when the file is opened. Listings are cached per directory for the tree's life.
 */

/** Listing pages are small (1,000 keys of S3, a directory of the Hub); this bounds a hostile one. */
const LISTING_BYTES = 16 * 1024 * 1024;

abstract class RemoteTree implements TreeSource, Transferring {
  readonly name: string;
  readonly transfer: Transfer = { requests: 0, bytes: 0 };
  protected readonly root: RemoteLocation;
  protected readonly context: RemoteContext;
  private readonly listings = new Map<string, TreeEntry[] | undefined>();
  private readonly opened: RemoteSource[] = [];

  constructor(root: RemoteLocation, name: string, context: RemoteContext) {
    this.root = root;
    this.name = name;
    this.context = context;
  }

  list(dir: string): TreeEntry[] | undefined {
    const key = joinPath(dir);
    if (!this.listings.has(key)) this.listings.set(key, this.fetchListing(key));
    return this.listings.get(key);
  }

  stat(path: string): TreeStat | undefined {
    const key = joinPath(path);
    if (key === "") return this.list("") ? { kind: "directory", size: 0 } : undefined;
    const entry = this.list(parentPath(key))?.find((e) => e.name === baseName(key));
    return entry ? { kind: entry.kind, size: entry.size } : undefined;
  }

  open(path: string): ByteSource {
    const key = joinPath(path);
    const target = objectTarget(childOf(this.root, key));
    const source = RemoteSource.open(target, this.childName(key), this.context, this.transfer);
    this.opened.push(source);
    return source;
  }

  /** Closes every file opened through the tree (their read-ahead counted), so `totals` is final. */
  close(): void {
    for (const source of this.opened) source.close();
  }

  /** Requests and bytes of the listings and of every file opened through the tree. */
  totals(): Transfer {
    return this.opened.reduce(
      (sum, s) => ({ requests: sum.requests + s.transfer.requests, bytes: sum.bytes + s.transfer.bytes }),
      { ...this.transfer },
    );
  }

  childName(key: string): string {
    return key === "" ? this.name : `${this.name.replace(/\/+$/, "")}/${key}`;
  }

  protected text(url: string): { body: string; next: string | undefined } | undefined {
    const auth = this.root.kind === "http" ? ({ kind: "none" } as const) : this.root.auth;
    const { outcome, body } = this.context.channel.getText(
      { url, auth },
      this.context.settings,
      LISTING_BYTES,
    );
    this.transfer.requests += outcome.transfer.requests;
    this.transfer.bytes += outcome.transfer.bytes;
    if (!outcome.ok) {
      if (outcome.code === "remote-not-found") return undefined;
      throw outcomeError(outcome, this.name);
    }
    return { body: new TextDecoder().decode(body), next: outcome.next };
  }

  /** The directory's entries sorted by name, or `undefined` when there is no such directory. */
  protected abstract fetchListing(dir: string): TreeEntry[] | undefined;
}

function sorted(entries: TreeEntry[]): TreeEntry[] {
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function xmlText(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith("#x") || name.startsWith("#X"))
      return String.fromCodePoint(Number.parseInt(name.slice(2), 16));
    if (name.startsWith("#")) return String.fromCodePoint(Number(name.slice(1)));
    return XML_ENTITIES[name] ?? whole;
  });
}

function xmlField(block: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(block);
  return match ? xmlText(match[1] as string) : undefined;
}

/** An S3 prefix: `list(dir)` is one ListObjectsV2 (per 1,000 keys) with `/` as the delimiter. */
export class S3Tree extends RemoteTree {
  protected fetchListing(dir: string): TreeEntry[] | undefined {
    if (this.root.kind !== "s3") throw new Error("S3Tree over a non-S3 location");
    const prefixKey = [this.root.key.replace(/\/+$/, ""), dir].filter((p) => p !== "").join("/");
    const prefix = prefixKey === "" ? "" : `${prefixKey}/`;
    const entries: TreeEntry[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ "list-type": "2", delimiter: "/", prefix });
      if (token) query.set("continuation-token", token);
      const page = this.text(`${this.root.base}?${query.toString().replace(/\+/g, "%20")}`);
      if (!page) return undefined;
      for (const [, block] of page.body.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = xmlField(block as string, "Key") ?? "";
        const name = key.slice(prefix.length);
        // "dir/" itself: the marker object consoles create for an empty folder.
        if (name === "" || name.includes("/")) continue;
        entries.push({ name, kind: "file", size: Number(xmlField(block as string, "Size") ?? 0) });
      }
      for (const [, block] of page.body.matchAll(/<CommonPrefixes>([\s\S]*?)<\/CommonPrefixes>/g)) {
        const name = (xmlField(block as string, "Prefix") ?? "").slice(prefix.length).replace(/\/$/, "");
        if (name !== "") entries.push({ name, kind: "directory", size: 0 });
      }
      token =
        xmlField(page.body, "IsTruncated") === "true"
          ? xmlField(page.body, "NextContinuationToken")
          : undefined;
    } while (token);
    return entries.length === 0 ? undefined : sorted(entries);
  }
}

interface HubEntry {
  readonly type: string;
  readonly path: string;
  readonly size?: number;
}

/** A directory of a Hub repo: `GET /api/{models,datasets,spaces}/REPO/tree/REV/PATH`, following `Link: rel="next"`. */
export class HfTree extends RemoteTree {
  protected fetchListing(dir: string): TreeEntry[] | undefined {
    if (this.root.kind !== "hf") throw new Error("HfTree over a non-Hub location");
    const path = [this.root.path.replace(/\/+$/, ""), dir].filter((p) => p !== "").join("/");
    const { endpoint, repoType, repo, revision } = this.root;
    let url: string | undefined =
      `${endpoint}/api/${repoType}/${repo}/tree/${encodeURIComponent(revision)}${path ? `/${escapePath(path)}` : ""}`;
    const entries: TreeEntry[] = [];
    while (url) {
      const page = this.text(url);
      if (!page) return undefined;
      let items: HubEntry[];
      try {
        items = JSON.parse(page.body) as HubEntry[];
      } catch {
        throw new ReaderError("remote-error", `the Hub's listing of ${path || "/"} is not JSON`, {
          file: this.name,
        });
      }
      if (!Array.isArray(items)) return undefined;
      for (const item of items) {
        const name = baseName(item.path);
        if (item.type === "file") entries.push({ name, kind: "file", size: item.size ?? 0 });
        else if (item.type === "directory") entries.push({ name, kind: "directory", size: 0 });
      }
      url = page.next;
    }
    return sorted(entries);
  }
}

/**
 * A plain HTTP directory: no listing exists, so it lists the files it was told of (`known`), each probed
 * with one ranged GET (found or 404) and kept open for `open`.
 */
export class HttpTree extends RemoteTree {
  private readonly known: readonly string[];
  private readonly probes = new Map<string, RemoteSource | undefined>();

  constructor(root: RemoteLocation, name: string, known: readonly string[], context: RemoteContext) {
    super(root, name, context);
    this.known = known;
  }

  override open(path: string): ByteSource {
    const key = joinPath(path);
    const probed = this.probes.get(key);
    if (probed) {
      // The probe's first window serves the first reads; it is handed over once.
      this.probes.set(key, undefined);
      return probed;
    }
    return super.open(key);
  }

  /** Any path is probed when asked for (one ranged GET), so a file's neighbours can be looked for by name. */
  override stat(path: string): TreeStat | undefined {
    const key = joinPath(path);
    if (key === "" || this.list(key)) return { kind: "directory", size: 0 };
    const source = this.probes.has(key) ? this.probes.get(key) : this.probe(key);
    return source ? { kind: "file", size: source.size } : undefined;
  }

  protected fetchListing(dir: string): TreeEntry[] | undefined {
    const entries: TreeEntry[] = [];
    for (const file of this.known.map((k) => joinPath(k))) {
      if (parentPath(file) !== dir) continue;
      const source = this.probe(file);
      if (source) entries.push({ name: baseName(file), kind: "file", size: source.size });
    }
    const dirs = new Set(
      this.known
        .map((k) => joinPath(k))
        .filter((k) => k.startsWith(dir === "" ? "" : `${dir}/`) && parentPath(k) !== dir)
        .map((k) => k.slice(dir === "" ? 0 : dir.length + 1).split("/")[0] as string),
    );
    for (const name of dirs) entries.push({ name, kind: "directory", size: 0 });
    return entries.length === 0 && dir !== "" ? undefined : sorted(entries);
  }

  private probe(key: string): RemoteSource | undefined {
    try {
      const source = super.open(key);
      this.probes.set(key, source as RemoteSource);
      return source as RemoteSource;
    } catch (error) {
      if (error instanceof ReaderError && error.code === "remote-not-found") {
        this.probes.set(key, undefined);
        return undefined;
      }
      throw error;
    }
  }
}
