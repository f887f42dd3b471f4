// What we ask the Hub's API, through @huggingface/hub (it knows the endpoints, pagination and response
// shapes): the commit a revision points to, the files of a commit, one file's size and etag. Its errors
// become one-line UserErrors that say what to do (a token, a licence, a typo).
import { HubApiError, datasetInfo, listFiles, modelInfo, pathsInfo } from "@huggingface/hub";
import { UserError } from "../errors.js";
import { DEFAULT_RETRY, DEFAULT_TIMEOUTS, TransferError, hubFetch, type RetryPolicy, type Timeouts } from "./http.js";
import { FULL_SHA, checkRepoPath, printable, repoUrlPath, type RepoRef } from "./names.js";
import { hubEndpoint, hubToken } from "./settings.js";

export interface NetworkOptions {
  /** The fetch underneath (tests, proxies); default: Node's global fetch. */
  fetch?: typeof fetch;
  timeouts?: Partial<Timeouts>;
  /** Attempts after the first for a failed request or a broken download (default 5). */
  retries?: number;
  /** First wait between attempts, doubled each time up to 8 s (default 1000 ms). */
  backoffMs?: number;
}

export interface Hub {
  endpoint: string;
  fetch: typeof fetch;
  retry: RetryPolicy;
  /** Where the token came from, for error messages; never the token. */
  tokenSource?: string;
}

/** A file of one commit as the Hub lists it. `etag` names its blob: sha256 for LFS files, git sha1 otherwise. */
export interface RemoteFile {
  path: string;
  size: number;
  etag: string;
}

export function openHub(env: NodeJS.ProcessEnv, o: NetworkOptions): Hub {
  const endpoint = hubEndpoint(env);
  const token = hubToken(env);
  const retry = { retries: o.retries ?? DEFAULT_RETRY.retries, backoffMs: o.backoffMs ?? DEFAULT_RETRY.backoffMs };
  const timeouts = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
  for (const [k, v] of Object.entries({ ...timeouts, ...retry })) {
    if (!Number.isFinite(v) || v < 0) throw new UserError(`${k} must be a non-negative number, got ${v}`);
  }
  const base = o.fetch ?? fetch;
  return {
    endpoint,
    retry,
    tokenSource: token?.source,
    fetch: hubFetch({ base, endpoint, token: token?.token, timeouts, retry }),
  };
}

/** The URL of a file of a commit (the Hub answers with the file, or a redirect to its CDN). */
export function fileUrl(hub: Hub, repo: RepoRef, sha: string, path: string): string {
  return `${hub.endpoint}/${repoUrlPath(repo)}/resolve/${sha}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function libParams(hub: Hub, repo: RepoRef, revision: string) {
  return { repo: { type: repo.type, name: repo.id }, revision, hubUrl: hub.endpoint, fetch: hub.fetch };
}

/** An entry of the tree or paths-info API: an LFS file is named by its LFS oid, as Python names its blob. */
function asRemote(e: { path: string; size: number; oid?: string; lfs?: { oid: string; size: number } }): RemoteFile {
  return { path: e.path, size: e.lfs?.size ?? e.size, etag: e.lfs?.oid ?? e.oid ?? "" };
}

/** The full commit sha that `revision` (branch, tag, sha or short sha) points to on the Hub. */
export async function remoteCommit(hub: Hub, repo: RepoRef, revision: string): Promise<string> {
  const params = {
    name: repo.id,
    revision,
    hubUrl: hub.endpoint,
    fetch: hub.fetch,
    additionalFields: ["sha" as const],
  };
  let sha: unknown;
  try {
    sha = (repo.type === "model" ? await modelInfo(params) : await datasetInfo(params)).sha;
  } catch (e) {
    throw hubError(e, hub, repo, { revision });
  }
  if (typeof sha !== "string" || !FULL_SHA.test(sha)) {
    throw new UserError(`${hub.endpoint} gave no commit sha for revision ${revision}`, repo.id);
  }
  return sha;
}

/** Every file of commit `sha`, by path. */
export async function remoteFiles(hub: Hub, repo: RepoRef, sha: string): Promise<Map<string, RemoteFile>> {
  const files = new Map<string, RemoteFile>();
  try {
    for await (const e of listFiles({ ...libParams(hub, repo, sha), recursive: true })) {
      if (e.type === "file") files.set(e.path, asRemote(e));
    }
  } catch (e) {
    throw hubError(e, hub, repo, { revision: sha });
  }
  return files;
}

/** One file of commit `sha`; undefined when the commit has no such file. */
export async function remoteFile(hub: Hub, repo: RepoRef, sha: string, path: string): Promise<RemoteFile | undefined> {
  let infos;
  try {
    infos = await pathsInfo({ ...libParams(hub, repo, sha), paths: [path] });
  } catch (e) {
    throw hubError(e, hub, repo, { revision: sha, path });
  }
  const info = infos.find((i) => i.path === path);
  if (info && info.type !== "file") {
    throw new UserError(`is a ${info.type}, not a file`, `${repoUrlPath(repo)}/${path}`);
  }
  return info && asRemote(info);
}

/** A listed file checked before its path and etag become file names in the cache. */
export function checkRemoteFile(f: RemoteFile, what: string): void {
  checkRepoPath(f.path, what);
  if (!/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(f.etag)) {
    throw new UserError(`the Hub lists it with etag "${printable(f.etag.slice(0, 80))}", not a sha1 or sha256`, what);
  }
  if (!Number.isSafeInteger(f.size) || f.size < 0) throw new UserError(`the Hub lists it with size ${f.size}`, what);
}

/** The licence / access page of a repo. */
export function repoPage(hub: Hub, repo: RepoRef): string {
  return `${hub.endpoint}/${repoUrlPath(repo)}`;
}

function oneLine(s: string): string {
  return printable(s.replace(/\s+/g, " ").trim()).slice(0, 300);
}

/** Any failure of a Hub request as a UserError naming the repo (and file) and what to do about it. */
export function hubError(e: unknown, hub: Hub, repo: RepoRef, at: { revision?: string; path?: string }): UserError {
  if (e instanceof UserError) return e;
  const what = at.path ? `${repoUrlPath(repo)}/${at.path}` : repoUrlPath(repo);
  if (e instanceof TransferError) return new UserError(`${e.message} (HF_ENDPOINT is ${hub.endpoint})`, what);
  if (!(e instanceof HubApiError)) {
    return new UserError(`unexpected answer from ${hub.endpoint}: ${oneLine(String(e))}`, what);
  }
  const status = e.statusCode;
  if (status === 401 || status === 403) return new UserError(accessAdvice(hub, repo, status), what);
  if (status === 404) {
    const missing = at.path
      ? `no file ${at.path} at revision ${at.revision}`
      : `no such ${repo.type} repo, or no revision ${at.revision} in it`;
    const hint = hub.tokenSource ? "" : " (if it is private, set HF_TOKEN or run `huggingface-cli login`)";
    return new UserError(`${missing} on ${hub.endpoint}${hint}`, what);
  }
  return new UserError(`${hub.endpoint} answered HTTP ${status}: ${oneLine(stripTrailer(e.message))}`, what);
}

/** What to do about HTTP 401/403: get a token, or get access with the one you have. */
export function accessAdvice(hub: Hub, repo: RepoRef, status: number): string {
  const page = repoPage(hub, repo);
  if (!hub.tokenSource) {
    return (
      `HTTP ${status}: the repo is gated or private and no token was sent. Set HF_TOKEN (or run ` +
      `\`huggingface-cli login\`), and accept the licence at ${page}`
    );
  }
  return (
    `HTTP ${status}: the token (from ${hub.tokenSource}) gives no access. Accept the licence at ${page} ` +
    `with that account, or use a token with read access`
  );
}

/** @huggingface/hub appends ". URL: …. Request ID: …" to its messages. */
function stripTrailer(message: string): string {
  return message.replace(/\. URL: .*$/, "");
}
