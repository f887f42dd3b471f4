// Turn what the user typed (a folder, "org/name" or "org/name@rev") into a local model folder, and a file
// of a model or data set repo into a local path, through the Hugging Face cache exactly as Python's
// huggingface_hub keeps it (src/hub/), downloading into it on request: a model's configs, tokenizer and
// safetensors weights only, or the one file asked for (a .gguf, a data set's parquet).
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import { join, resolve, sep } from "node:path";
import { UserError } from "../errors.js";
import type { NetworkOptions } from "../hub/api.js";
import { inside, localCommit, repoDir, writeRef } from "../hub/cache.js";
import type { Progress } from "../hub/download.js";
import { checkRepoId, checkRepoPath, checkRevision, isRepoId, printable, repoUrlPath } from "../hub/names.js";
import type { RepoRef, RepoType } from "../hub/names.js";
import { expandHome, hubCacheDir, isOffline } from "../hub/settings.js";

export { doctorInfo, hubCacheDir, type DoctorInfo } from "../hub/settings.js";
export type { NetworkOptions } from "../hub/api.js";
export type { RepoType } from "../hub/names.js";

export interface ResolvedModel {
  folder: string;
  modelId?: string;
  /** The commit sha, when the folder is a cache snapshot. */
  revision?: string;
}

interface CacheOptions extends NetworkOptions {
  env?: NodeJS.ProcessEnv;
  /** Download what the cache lacks; default false (the cache only). */
  download?: boolean;
  /** Never use the network; default: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is true. */
  offline?: boolean;
  /** Called as each file's bytes arrive (done counts from what an earlier run left, when resumed). */
  onProgress?: Progress;
}

export interface ResolveOptions extends CacheOptions {
  /** Branch, tag or (short) commit sha; the same as "org/name@revision". */
  revision?: string;
}

export interface RepoFileRequest extends CacheOptions {
  repoType?: RepoType;
  repo: string;
  revision?: string;
  /** The file's path inside the repo, "/"-separated. */
  path: string;
}

/** The downloading modules, loaded when needed: importing @huggingface/hub costs ~70 ms, a local run none. */
async function network() {
  const [api, download] = await Promise.all([import("../hub/api.js"), import("../hub/download.js")]);
  return { ...api, ...download };
}

const EXTRA_FILES = ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const INDEX = "model.safetensors.index.json";

/** modelId and revision when `folder` lies inside `.../models--org--name/snapshots/<sha>/`. */
function fromCachePath(folder: string): { modelId?: string; revision?: string } {
  const parts = folder.split(sep);
  // Stryker disable next-line EqualityOperator: equivalent, parts[0] of an absolute path is ""
  for (let i = parts.length - 3; i >= 0; i--) {
    if (parts[i].startsWith("models--") && parts[i + 1] === "snapshots" && parts[i + 2]) {
      return { modelId: parts[i].slice("models--".length).replace(/--/g, "/"), revision: parts[i + 2] };
    }
  }
  return {};
}

/** The shard files a model.safetensors.index.json names. */
function indexShards(text: string, file: string): string[] {
  let map: unknown;
  try {
    map = JSON.parse(text).weight_map;
  } catch (e) {
    throw new UserError(`not JSON (${(e as Error).message})`, file);
  }
  if (!map || typeof map !== "object") throw new UserError("has no weight_map object", file);
  const shards = [...new Set(Object.values(map))];
  for (const s of shards) {
    if (typeof s !== "string") throw new UserError(`weight_map holds ${JSON.stringify(s)}, not a file name`, file);
    checkRepoPath(s, file);
  }
  return shards as string[];
}

/** config.json plus weights (every shard the index names, or some *.safetensors). */
function isComplete(folder: string): boolean {
  if (!existsSync(join(folder, "config.json"))) return false;
  const indexPath = join(folder, INDEX);
  if (existsSync(indexPath)) {
    try {
      const shards = indexShards(readFileSync(indexPath, "utf8"), indexPath);
      return shards.length > 0 && shards.every((f) => existsSync(join(folder, f)));
    } catch {
      return false;
    }
  }
  return readdirSync(folder).some((f) => f.endsWith(".safetensors") && existsSync(join(folder, f)));
}

/** Whether a file starts with the GGUF magic. */
function isGguf(path: string): boolean {
  try {
    const fd = openSync(path, "r");
    try {
      const magic = Buffer.alloc(4);
      return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString("latin1") === "GGUF";
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * A folder without config.json that holds one GGUF model (an LM Studio or llama.cpp models folder): that file,
 * or the first shard of its split set. Several models: an error that lists them.
 */
function ggufInFolder(folder: string, ref: string): string | undefined {
  if (existsSync(join(folder, "config.json"))) return undefined;
  const files = readdirSync(folder)
    .filter((f) => f.toLowerCase().endsWith(".gguf"))
    .sort();
  const models = files.filter((f) => !/-(\d{5})-of-\d{5}\.gguf$/i.test(f) || /-00001-of-\d{5}\.gguf$/i.test(f));
  if (models.length === 0) return undefined;
  if (models.length > 1)
    throw new UserError(`holds ${models.length} GGUF models (${models.join(", ")}): name the file`, ref);
  return join(folder, models[0]);
}

/** A folder (or, for GGUF, a file) and, when known, its Hugging Face id and revision. */
export async function resolveModel(ref: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const asPath = resolve(expandHome(ref));
  if (existsSync(asPath)) {
    if (options.revision !== undefined) {
      throw new UserError("a revision applies to a Hugging Face model id, not a folder", ref);
    }
    if (!statSync(asPath).isDirectory()) {
      if (!isGguf(asPath))
        throw new UserError(
          "expected a model folder (config.json and *.safetensors) or a GGUF file, got another kind of file",
          ref,
        );
      return { folder: asPath };
    }
    const gguf = ggufInFolder(asPath, ref);
    return { folder: gguf ?? asPath, ...fromCachePath(asPath) };
  }
  const what = printable(ref);
  const at = ref.indexOf("@");
  // Stryker disable next-line EqualityOperator: equivalent, "@…" and "" are both refused as model ids
  const modelId = at < 0 ? ref : ref.slice(0, at);
  if (!isRepoId(modelId)) {
    throw new UserError("no such folder (and not a Hugging Face model id like org/name or org/name@revision)", what);
  }
  // Stryker disable next-line EqualityOperator: equivalent, a ref starting with "@" was refused above
  const atRev = at < 0 ? undefined : ref.slice(at + 1);
  if (atRev !== undefined && options.revision !== undefined && atRev !== options.revision) {
    throw new UserError(`two revisions given: @${printable(atRev)} and ${printable(options.revision)}`, what);
  }
  const rev = atRev ?? options.revision ?? "main";
  checkRevision(rev, what);
  const repo: RepoRef = { type: "model", id: modelId };
  const dir = repoDir(hubCacheDir(env), repo);
  const sha = localCommit(dir, rev, what);
  const snapshot = sha ? join(dir, "snapshots", sha) : undefined;
  const cached = snapshot !== undefined && existsSync(join(snapshot, "config.json"));
  const offline = options.offline ?? isOffline(env);
  if (cached && (!options.download || offline || isComplete(snapshot))) {
    return { folder: snapshot, modelId, revision: sha };
  }
  if (options.download && !offline) return downloadModel(repo, rev, dir, env, options);
  const where = snapshot
    ? `${snapshot} (revision ${rev} = ${sha}) has no config.json`
    : `no ${join(dir, "refs", rev)} or snapshot for revision ${rev}`;
  throw notCached(repo, rev, `not a folder, and not in the Hugging Face cache: ${where}`, options, what);
}

/** Downloads the files a checkpoint needs; config.json last, so that a cached config.json means complete. */
async function downloadModel(
  repo: RepoRef,
  rev: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  o: ResolveOptions,
): Promise<ResolvedModel> {
  const { openHub, remoteCommit, remoteFiles, fetchIntoCache } = await network();
  const hub = openHub(env, o);
  const sha = await remoteCommit(hub, repo, rev);
  const listed = await remoteFiles(hub, repo, sha);
  const get = (path: string) => fetchIntoCache(hub, dir, repo, sha, listed.get(path)!, o.onProgress);
  if (!listed.has("config.json")) {
    throw new UserError(`revision ${rev} has no config.json: not a transformers checkpoint`, repo.id);
  }
  const top = [...listed.keys()].filter((f) => !f.includes("/"));
  let weights = top.filter((f) => f.endsWith(".safetensors"));
  if (listed.has(INDEX)) {
    const index = await get(INDEX);
    weights = indexShards(readFileSync(index, "utf8"), `${repo.id}/${INDEX}`);
    const absent = weights.filter((w) => !listed.has(w));
    if (absent.length) {
      throw new UserError(`names shards that revision ${rev} lacks: ${absent.join(", ")}`, `${repo.id}/${INDEX}`);
    }
  } else if (weights.includes("model.safetensors")) {
    weights = ["model.safetensors"];
  }
  if (!weights.length) {
    throw new UserError(`revision ${rev} has no *.safetensors weights (only ${top.join(", ")})`, repo.id);
  }
  for (const f of [...weights, ...EXTRA_FILES.filter((f) => listed.has(f)), "config.json"]) await get(f);
  if (rev !== sha) await writeRef(dir, rev, sha);
  return { folder: inside(dir, "snapshots", sha), modelId: repo.id, revision: sha };
}

/**
 * The local path of one file of a model or data set repo (`datasets--org--name` for data sets, as Python),
 * from the cache, or downloaded into it when `download` is set and the network allowed.
 */
export async function resolveRepoFile(req: RepoFileRequest): Promise<string> {
  const env = req.env ?? process.env;
  const repo: RepoRef = { type: req.repoType ?? "model", id: req.repo };
  checkRepoId(repo);
  const rev = req.revision ?? "main";
  const what = `${repoUrlPath(repo)}/${printable(req.path)}`;
  checkRevision(rev, what);
  checkRepoPath(req.path, what);
  const dir = repoDir(hubCacheDir(env), repo);
  const sha = localCommit(dir, rev, what);
  const cached = sha ? inside(dir, "snapshots", sha, ...req.path.split("/")) : undefined;
  if (cached && existsSync(cached)) return cached;
  if (!req.download || (req.offline ?? isOffline(env))) {
    const where = cached ? `no ${cached}` : `no ${join(dir, "refs", rev)} or snapshot for revision ${rev}`;
    throw notCached(repo, rev, `not in the Hugging Face cache: ${where}`, req, what, req.path);
  }
  const { openHub, remoteCommit, remoteFile, fetchIntoCache } = await network();
  const hub = openHub(env, req);
  const commit = await remoteCommit(hub, repo, rev);
  const file = await remoteFile(hub, repo, commit, req.path);
  if (!file) throw new UserError(`no such file in revision ${rev}${rev === commit ? "" : ` (${commit})`}`, what);
  const path = await fetchIntoCache(hub, dir, repo, commit, file, req.onProgress);
  if (rev !== commit) await writeRef(dir, rev, commit);
  return path;
}

/** Not in the cache (`missing` says where we looked), and the ways to get it there. */
function notCached(
  repo: RepoRef,
  rev: string,
  missing: string,
  o: CacheOptions,
  what: string,
  path?: string,
): UserError {
  const args = [
    repo.id,
    path,
    repo.type === "dataset" ? "--repo-type dataset" : "",
    rev === "main" ? "" : `--revision ${rev}`,
  ];
  const cli = `\`huggingface-cli download ${args.filter(Boolean).join(" ")}\``;
  const offline = o.offline ?? isOffline(o.env ?? process.env);
  const why = !offline
    ? `Download it with --download, or with ${cli}`
    : `${o.offline ? "Offline mode was asked for (--offline)" : "HF_HUB_OFFLINE is set"}, so nothing was ` +
      `downloaded: ${o.offline ? "drop --offline" : "unset it"} and use --download, or run ${cli} where the Hub is ` +
      "reachable";
  return new UserError(
    `${missing}. ${why} (cache folder: HF_HUB_CACHE, else $HF_HOME/hub, ` + `else ~/.cache/huggingface/hub)`,
    what,
  );
}

/** The model id recorded in a folder's config.json `_name_or_path` when it looks like "org/name", else undefined. */
export function modelIdFromConfig(folder: string): string | undefined {
  try {
    const name = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"))._name_or_path;
    return typeof name === "string" && isRepoId(name) ? name : undefined;
  } catch {
    return undefined;
  }
}
