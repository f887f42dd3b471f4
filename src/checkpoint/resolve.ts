// Turn what the user typed (a folder, "org/name" or "org/name@rev") into a local folder, using the
// Hugging Face cache the same way Python's huggingface_hub does, and downloading into it on request.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, open, rename, rm, symlink, copyFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { UserError } from "../errors.js";

export interface ResolvedModel {
  folder: string;
  modelId?: string;
  revision?: string;
}

export interface ResolveOptions {
  download?: boolean;
  fetch?: typeof fetch;
  onProgress?: (file: string, done: number, total: number) => void;
  env?: NodeJS.ProcessEnv;
}

const MODEL_ID = /^[\w.-]+\/[\w.-]+$/;
const SHA = /^[0-9a-f]{40}$/;
const EXTRA_FILES = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const INDEX = "model.safetensors.index.json";

function looksLikeModelId(id: string): boolean {
  return MODEL_ID.test(id) && !id.split("/").some((p) => p === "." || p === "..");
}

function truthy(v: string | undefined): boolean {
  return ["1", "true", "yes", "on"].includes((v ?? "").toLowerCase());
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** HF_HUB_CACHE › $HF_HOME/hub › $XDG_CACHE_HOME/huggingface/hub › ~/.cache/huggingface/hub (as Python). */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return resolve(expandHome(explicit));
  return resolve(join(hfHome(env), "hub"));
}

function hfHome(env: NodeJS.ProcessEnv): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  return join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), ".cache"), "huggingface");
}

function hfToken(env: NodeJS.ProcessEnv): string | undefined {
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (token) return token;
  try {
    return readFileSync(env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : join(hfHome(env), "token"), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** modelId and revision when `folder` lies inside `.../models--org--name/snapshots/<sha>/`. */
function fromCachePath(folder: string): { modelId?: string; revision?: string } {
  const parts = folder.split(sep);
  for (let i = parts.length - 3; i >= 0; i--) {
    if (parts[i].startsWith("models--") && parts[i + 1] === "snapshots" && parts[i + 2]) {
      return { modelId: parts[i].slice("models--".length).replace(/--/g, "/"), revision: parts[i + 2] };
    }
  }
  return {};
}

/** config.json plus weights (every shard the index names, or some *.safetensors). */
function isComplete(folder: string): boolean {
  if (!existsSync(join(folder, "config.json"))) return false;
  const indexPath = join(folder, INDEX);
  if (existsSync(indexPath)) {
    try {
      const shards = new Set(Object.values(JSON.parse(readFileSync(indexPath, "utf8")).weight_map ?? {}) as string[]);
      return shards.size > 0 && [...shards].every((f) => existsSync(join(folder, f)));
    } catch {
      return false;
    }
  }
  return readdirSync(folder).some((f) => f.endsWith(".safetensors") && existsSync(join(folder, f)));
}

export async function resolveModel(ref: string, options: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const asPath = resolve(expandHome(ref));
  if (existsSync(asPath)) {
    if (!statSync(asPath).isDirectory()) throw new UserError("expected a model folder (holding config.json and *.safetensors), got a file", ref);
    return { folder: asPath, ...fromCachePath(asPath) };
  }
  const at = ref.indexOf("@");
  const modelId = at < 0 ? ref : ref.slice(0, at);
  const rev = at < 0 ? "main" : ref.slice(at + 1);
  if (!looksLikeModelId(modelId) || rev === "") {
    throw new UserError("no such folder (and not a Hugging Face model id like org/name or org/name@revision)", ref);
  }
  const repoDir = join(hubCacheDir(env), `models--${modelId.replace(/\//g, "--")}`);
  let sha = SHA.test(rev) ? rev : undefined;
  if (!sha) {
    try {
      sha = readFileSync(join(repoDir, "refs", rev), "utf8").trim();
    } catch {}
  }
  const snapshot = sha ? join(repoDir, "snapshots", sha) : undefined;
  const cached = snapshot !== undefined && existsSync(join(snapshot, "config.json"));
  const offline = truthy(env.HF_HUB_OFFLINE);
  if (cached && (!options.download || offline || isComplete(snapshot))) return { folder: snapshot, modelId, revision: sha };
  if (options.download && !offline) {
    return download(modelId, rev, repoDir, env, options);
  }
  const revArg = rev === "main" ? "" : ` --revision ${rev}`;
  const where = snapshot ? `${snapshot} (revision ${rev} = ${sha}) has no config.json` : `no ${join(repoDir, "refs", rev)} or snapshot for revision ${rev}`;
  const why = options.download && offline ? "HF_HUB_OFFLINE is set, so nothing was downloaded. Unset it to download, or run" : "Download it with --download, or with";
  throw new UserError(
    `not a folder, and not in the Hugging Face cache: ${where}. ${why} \`huggingface-cli download ${modelId}${revArg}\` ` +
      `(cache folder: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)`,
    ref,
  );
}

/** The files worth fetching: configs, tokenizer, and the safetensors weights (the index's shards when there is one). */
function wantedFiles(siblings: string[], indexJson?: string): string[] {
  const top = siblings.filter((f) => !f.includes("/"));
  let weights = top.filter((f) => f.endsWith(".safetensors"));
  if (indexJson !== undefined) {
    const shards = new Set(Object.values(JSON.parse(indexJson).weight_map ?? {}) as string[]);
    weights = [...shards].filter((f) => !f.includes("..") && !f.startsWith("/"));
  } else if (weights.includes("model.safetensors")) {
    weights = ["model.safetensors"];
  }
  return [...top.filter((f) => EXTRA_FILES.includes(f)), ...weights];
}

async function download(modelId: string, rev: string, repoDir: string, env: NodeJS.ProcessEnv, options: ResolveOptions): Promise<ResolvedModel> {
  const fetchFn = options.fetch ?? fetch;
  const endpoint = (env.HF_ENDPOINT || "https://huggingface.co").replace(/\/+$/, "");
  const token = hfToken(env);
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  const get = async (url: string, what: string): Promise<Response> => {
    let res: Response;
    try {
      res = await fetchFn(url, { headers });
    } catch (e) {
      throw new UserError(`could not reach ${endpoint} (${(e as Error).message}); set HF_ENDPOINT or download it another way`, what);
    }
    if (res.ok) return res;
    const hint = res.status === 401 || res.status === 403 ? " (private or gated: accept its terms on the Hub and set HF_TOKEN)"
      : res.status === 404 ? " (no such model, revision or file)" : "";
    throw new UserError(`GET ${url} failed: HTTP ${res.status}${hint}`, what);
  };

  const info = (await (await get(`${endpoint}/api/models/${modelId}/revision/${encodeURIComponent(rev)}`, modelId)).json()) as {
    sha?: string;
    siblings?: { rfilename: string }[];
  };
  if (!info.sha || !SHA.test(info.sha)) throw new UserError(`the Hub gave no commit sha for revision ${rev}`, modelId);
  const sha = info.sha;
  const siblings = (info.siblings ?? []).map((s) => s.rfilename);
  const snapshot = join(repoDir, "snapshots", sha);
  const blobs = join(repoDir, "blobs");
  await mkdir(snapshot, { recursive: true });
  await mkdir(blobs, { recursive: true });

  const fetchFile = async (file: string): Promise<void> => {
    const target = join(snapshot, file);
    if (existsSync(target)) return;
    const res = await get(`${endpoint}/${modelId}/resolve/${sha}/${file.split("/").map(encodeURIComponent).join("/")}`, `${modelId}/${file}`);
    const total = Number(res.headers.get("content-length") ?? 0) || 0;
    const tmp = join(blobs, `${file.replace(/\W/g, "_")}.${process.pid}.incomplete`);
    const hash = createHash("sha256");
    let done = 0;
    options.onProgress?.(file, 0, total);
    const out = await open(tmp, "w");
    try {
      if (res.body) {
        const reader = res.body.getReader();
        for (;;) {
          const { done: end, value } = await reader.read();
          if (end) break;
          hash.update(value);
          await out.write(value);
          done += value.length;
          options.onProgress?.(file, done, total);
        }
      }
      await out.close();
      if (total && !res.headers.get("content-encoding") && done !== total) {
        throw new UserError(`download truncated: got ${done} of ${total} bytes`, `${modelId}/${file}`);
      }
      const blob = join(blobs, hash.digest("hex"));
      await rename(tmp, blob);
      const link = `${target}.${process.pid}.incomplete`;
      await mkdir(dirname(target), { recursive: true });
      try {
        await symlink(relative(dirname(target), blob), link);
      } catch {
        await copyFile(blob, link); // no symlinks (e.g. Windows without developer mode): copy, as Python does
      }
      await rename(link, target);
    } finally {
      await out.close().catch(() => {});
      await rm(tmp, { force: true });
    }
  };

  const files = wantedFiles(siblings);
  if (siblings.includes(INDEX)) {
    await fetchFile(INDEX);
    files.splice(0, files.length, ...wantedFiles(siblings, readFileSync(join(snapshot, INDEX), "utf8")));
  }
  if (!files.includes("config.json")) throw new UserError(`revision ${rev} has no config.json: not a transformers checkpoint`, modelId);
  if (!files.some((f) => f.endsWith(".safetensors"))) {
    throw new UserError(`revision ${rev} has no *.safetensors weights (only ${siblings.join(", ") || "no files"})`, modelId);
  }
  for (const f of files) await fetchFile(f);
  if (rev !== sha) {
    const refPath = join(repoDir, "refs", rev);
    await mkdir(dirname(refPath), { recursive: true });
    await writeFile(`${refPath}.${process.pid}.incomplete`, sha);
    await rename(`${refPath}.${process.pid}.incomplete`, refPath);
  }
  return { folder: snapshot, modelId, revision: sha };
}

/** The model id recorded in a folder's config.json `_name_or_path` when it looks like "org/name", else undefined. */
export function modelIdFromConfig(folder: string): string | undefined {
  try {
    const name = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"))._name_or_path;
    return typeof name === "string" && looksLikeModelId(name) ? name : undefined;
  } catch {
    return undefined;
  }
}
