// A fake Hugging Face Hub on 127.0.0.1 for the download tests: real HTTP (node:http), the API endpoints
// @huggingface/hub calls (revision info, paginated tree, paths-info), resolve URLs answering as the Hub
// does (ETag / X-Linked-Etag / X-Repo-Commit, Range, a 302 to a CDN on another origin for LFS files, a
// 307 for a renamed repo), gated repos, and per-request faults a test injects.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface FakeFile {
  content: Buffer;
  /** Stored with Git LFS: served by the CDN, named by its sha256. */
  lfs: boolean;
}

export interface FakeRepo {
  type: "model" | "dataset";
  id: string;
  sha: string;
  /** Branches and tags → commit sha. */
  refs: Record<string, string>;
  files: Record<string, FakeFile>;
  /** Files need the token (the API does not). */
  gated?: boolean;
  /** Everything needs the token. */
  private?: boolean;
}

export interface Seen {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  acceptEncoding?: string;
}

/** Handles a request itself (and returns true) to simulate a fault. */
export type Fault = (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => boolean;

export const gitSha1 = (b: Buffer) => createHash("sha1").update(`blob ${b.length}\0`).update(b).digest("hex");
export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export function file(content: string | Buffer, lfs = false): FakeFile {
  return { content: Buffer.isBuffer(content) ? content : Buffer.from(content), lfs };
}

export class FakeHub {
  readonly seen: Seen[] = [];
  readonly repos: FakeRepo[] = [];
  /** Old id → new id: the Hub answers 307 to the new name. */
  readonly renamed = new Map<string, string>();
  faults: Fault[] = [];
  /** The token a gated repo accepts. */
  token = "hf_good";
  /** Tree entries per page (the Hub paginates with a Link header). */
  pageSize = 3;
  endpoint = "";
  cdn = "";
  private servers: http.Server[] = [];

  static async start(): Promise<FakeHub> {
    const hub = new FakeHub();
    const a = http.createServer((q, s) => hub.handle("hub", q, s));
    const b = http.createServer((q, s) => hub.handle("cdn", q, s));
    hub.servers.push(a, b);
    await Promise.all(hub.servers.map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r))));
    hub.endpoint = `http://127.0.0.1:${(a.address() as AddressInfo).port}`;
    hub.cdn = `http://localhost:${(b.address() as AddressInfo).port}`; // another origin, the same machine
    return hub;
  }

  async stop(): Promise<void> {
    for (const s of this.servers) s.closeAllConnections();
    await Promise.all(this.servers.map((s) => new Promise((r) => s.close(r))));
  }

  add(repo: FakeRepo): FakeRepo {
    this.repos.push(repo);
    return repo;
  }

  count(pred: (s: Seen) => boolean): number {
    return this.seen.filter(pred).length;
  }

  private handle(server: "hub" | "cdn", req: http.IncomingMessage, res: http.ServerResponse): void {
    const seen: Seen = {
      server,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      range: req.headers.range,
      authorization: req.headers.authorization,
      acceptEncoding: req.headers["accept-encoding"],
    };
    this.seen.push(seen);
    if (this.faults.some((f) => f(req, res, seen))) return;
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => (server === "cdn" ? this.cdnAnswer(seen, res) : this.hubAnswer(seen, body, res)));
  }

  private cdnAnswer(seen: Seen, res: http.ServerResponse): void {
    const m = /^\/lfs\/([0-9a-f]{64})/.exec(seen.path);
    const f = m && this.repos.flatMap((r) => Object.values(r.files)).find((f) => f.lfs && sha256(f.content) === m[1]);
    if (!f) return json(res, 404, { error: "no such object" });
    sendBytes(res, f.content, seen.range, { etag: `"${m![1]}"` });
  }

  private hubAnswer(seen: Seen, body: string, res: http.ServerResponse): void {
    const url = new URL(seen.path, this.endpoint);
    const api = /^\/api\/(models|datasets)\/(.+)\/(revision|tree|paths-info)\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const moved = this.renamed.get(decodeURIComponent(api[2]));
      if (moved) {
        res.writeHead(307, { location: `/api/${api[1]}/${moved}/${api[3]}/${api[4]}${url.search}` });
        return void res.end();
      }
      const repo = this.find(api[1], decodeURIComponent(api[2]));
      if (!repo || (repo.private && seen.authorization !== `Bearer ${this.token}`)) {
        const status = repo ? 401 : 404;
        return json(res, status, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
      }
      const sha = this.commit(repo, decodeURIComponent(api[4]));
      if (!sha) return json(res, 404, { error: `Invalid rev id: ${api[4]}` }, { "x-error-code": "RevisionNotFound" });
      if (api[3] === "revision")
        return json(res, 200, { _id: "x", id: repo.id, sha, private: false, gated: !!repo.gated });
      if (api[3] === "paths-info") {
        const paths: string[] = JSON.parse(body).paths;
        return json(
          res,
          200,
          paths.filter((p) => p in repo.files).map((p) => entry(p, repo.files[p])),
        );
      }
      const all = treeEntries(repo);
      const from = Number(url.searchParams.get("cursor") ?? 0);
      const page = all.slice(from, from + this.pageSize);
      const next = new URL(url);
      next.searchParams.set("cursor", String(from + this.pageSize));
      const link = from + this.pageSize < all.length ? { link: `<${next}>; rel="next"` } : undefined;
      return json(res, 200, page, link);
    }
    const resolve = /^\/(datasets\/)?(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (!resolve) return json(res, 404, { error: "not found" });
    const type = resolve[1] ? "datasets" : "models";
    const id = decodeURIComponent(resolve[2]);
    const newId = this.renamed.get(id);
    if (newId) {
      res.writeHead(307, { location: `/${resolve[1] ?? ""}${newId}/resolve/${resolve[3]}/${resolve[4]}` });
      return void res.end();
    }
    const repo = this.find(type, id);
    if (!repo) return json(res, 404, { error: "Repository not found" }, { "x-error-code": "RepoNotFound" });
    if ((repo.gated || repo.private) && seen.authorization !== `Bearer ${this.token}`) {
      const status = seen.authorization ? 403 : 401;
      return json(res, status, { error: `Access to model ${id} is restricted.` }, { "x-error-code": "GatedRepo" });
    }
    const sha = this.commit(repo, decodeURIComponent(resolve[3]));
    const path = resolve[4].split("/").map(decodeURIComponent).join("/");
    const f = sha ? repo.files[path] : undefined;
    if (!f) return json(res, 404, { error: "Entry not found" }, { "x-error-code": "EntryNotFound" });
    if (f.lfs) {
      const oid = sha256(f.content);
      res.writeHead(302, {
        location: `${this.cdn}/lfs/${oid}?sig=abc`,
        "x-linked-etag": `"${oid}"`,
        "x-linked-size": String(f.content.length),
        "x-repo-commit": sha!,
        etag: `"${gitSha1(pointerFile(f))}"`,
      });
      return void res.end();
    }
    sendBytes(res, f.content, seen.range, { etag: `"${gitSha1(f.content)}"`, "x-repo-commit": sha! });
  }

  private find(type: string, id: string): FakeRepo | undefined {
    return this.repos.find((r) => `${r.type}s` === type && r.id === id);
  }

  private commit(repo: FakeRepo, rev: string): string | undefined {
    if (rev in repo.refs) return repo.refs[rev];
    return /^[0-9a-f]{7,40}$/.test(rev) && repo.sha.startsWith(rev) ? repo.sha : undefined;
  }
}

function pointerFile(f: FakeFile): Buffer {
  return Buffer.from(
    `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.content)}\nsize ${f.content.length}\n`,
  );
}

function entry(path: string, f: FakeFile) {
  const lfs = f.lfs
    ? { oid: sha256(f.content), size: f.content.length, pointerSize: pointerFile(f).length }
    : undefined;
  return {
    type: "file",
    path,
    size: f.content.length,
    oid: gitSha1(f.lfs ? pointerFile(f) : f.content),
    ...(lfs && { lfs }),
  };
}

/** Files and the folders above them, folders first, as the tree API lists them. */
function treeEntries(repo: FakeRepo) {
  const dirs = new Set<string>();
  for (const p of Object.keys(repo.files)) {
    const parts = p.split("/");
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
  }
  return [
    ...[...dirs].map((path) => ({ type: "directory", path, size: 0, oid: "0".repeat(40) })),
    ...Object.entries(repo.files).map(([p, f]) => entry(p, f)),
  ];
}

export function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

/** 200 with the whole file, or 206 with `bytes=a-` / `bytes=a-b` of it. */
export function sendBytes(
  res: http.ServerResponse,
  content: Buffer,
  range: string | undefined,
  headers: Record<string, string>,
) {
  const m = range && /^bytes=(\d+)-(\d*)$/.exec(range);
  if (!m) {
    res.writeHead(200, { ...headers, "content-length": content.length, "accept-ranges": "bytes" });
    return void res.end(content);
  }
  const start = Number(m[1]);
  const end = m[2] ? Math.min(Number(m[2]), content.length - 1) : content.length - 1;
  if (start >= content.length) {
    res.writeHead(416, { "content-range": `bytes */${content.length}` });
    return void res.end();
  }
  res.writeHead(206, {
    ...headers,
    "content-length": end - start + 1,
    "content-range": `bytes ${start}-${end}/${content.length}`,
  });
  res.end(content.subarray(start, end + 1));
}

/** Every entry under `root` as "path" (files), "path/" (folders) or "path -> target" (symlinks). */
export function tree(root: string, under = ""): string[] {
  const out: string[] = [];
  if (!existsSync(join(root, under))) return out;
  for (const name of readdirSync(join(root, under)).sort()) {
    const rel = under ? `${under}/${name}` : name;
    const st = lstatSync(join(root, rel));
    if (st.isDirectory()) out.push(`${rel}/`, ...tree(root, rel));
    else out.push(st.isSymbolicLink() ? `${rel} -> ${readlinkSync(join(root, rel))}` : rel);
  }
  return out;
}

const made: string[] = [];
export function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "sw-hub-"));
  made.push(d);
  return d;
}
export function removeTmp(): void {
  made.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
}
