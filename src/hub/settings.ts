// The Hugging Face settings a user sets through the environment, read the way Python's huggingface_hub
// reads them (constants.py, utils/_auth.py): cache folder, token, offline mode, endpoint.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { UserError } from "../errors.js";

export const DEFAULT_ENDPOINT = "https://huggingface.co";

export function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** $HF_HOME › $XDG_CACHE_HOME/huggingface › ~/.cache/huggingface. */
export function hfHome(env: NodeJS.ProcessEnv): string {
  if (env.HF_HOME) return resolve(expandHome(env.HF_HOME));
  return resolve(join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : join(homedir(), ".cache"), "huggingface"));
}

/** HF_HUB_CACHE › HUGGINGFACE_HUB_CACHE › $HF_HOME/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  return explicit ? resolve(expandHome(explicit)) : join(hfHome(env), "hub");
}

/** Python's `_is_true`: 1 / true / yes / on in any case, nothing else (no trimming). */
export function isTrue(value: string | undefined): boolean {
  return ["1", "ON", "YES", "TRUE"].includes((value ?? "").toUpperCase());
}

/** HF_HUB_OFFLINE, or TRANSFORMERS_OFFLINE when HF_HUB_OFFLINE is unset or empty (as Python). */
export function isOffline(env: NodeJS.ProcessEnv): boolean {
  return isTrue(env.HF_HUB_OFFLINE || env.TRANSFORMERS_OFFLINE);
}

/** HF_ENDPOINT without trailing slashes, or https://huggingface.co; refused unless http(s). */
export function hubEndpoint(env: NodeJS.ProcessEnv): string {
  const raw = (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserError(`"${raw}" is not a URL (expected e.g. ${DEFAULT_ENDPOINT})`, "HF_ENDPOINT");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UserError(`"${raw}" is not an http(s) URL`, "HF_ENDPOINT");
  }
  return raw;
}

export function tokenFile(env: NodeJS.ProcessEnv): string {
  return env.HF_TOKEN_PATH ? resolve(expandHome(env.HF_TOKEN_PATH)) : join(hfHome(env), "token");
}

export interface TokenSource {
  token: string;
  /** The variable or file it came from. */
  source: string;
}

/** HF_TOKEN › HUGGING_FACE_HUB_TOKEN › the token file ($HF_TOKEN_PATH, else $HF_HOME/token); blank = none. */
export function hubToken(env: NodeJS.ProcessEnv): TokenSource | undefined {
  // Python: clean(HF_TOKEN or HUGGING_FACE_HUB_TOKEN), and a blank one falls through to the file.
  const name = env.HF_TOKEN ? "HF_TOKEN" : env.HUGGING_FACE_HUB_TOKEN ? "HUGGING_FACE_HUB_TOKEN" : undefined;
  const fromEnv = name ? env[name]!.trim() : "";
  if (fromEnv) return { token: fromEnv, source: name! };
  const file = tokenFile(env);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return undefined;
    throw new UserError(`cannot read the Hugging Face token file (${code ?? (e as Error).message})`, file);
  }
  const token = text.trim();
  return token ? { token, source: file } : undefined;
}

export interface DoctorInfo {
  cacheDir: string;
  /** Whether a token would be sent; the token itself is never reported. */
  tokenPresent: boolean;
  /** Where the token comes from (a variable name or the token file), when present. */
  tokenSource?: string;
  /** Why the token file could not be read, when it could not. */
  tokenProblem?: string;
  offline: boolean;
  endpoint: string;
  /** Why HF_ENDPOINT was refused, when it was. */
  endpointProblem?: string;
}

export function doctorInfo(env: NodeJS.ProcessEnv = process.env): DoctorInfo {
  const info: DoctorInfo = { cacheDir: hubCacheDir(env), tokenPresent: false, offline: isOffline(env), endpoint: "" };
  try {
    const t = hubToken(env);
    if (t) Object.assign(info, { tokenPresent: true, tokenSource: t.source });
  } catch (e) {
    info.tokenProblem = (e as Error).message;
  }
  try {
    info.endpoint = hubEndpoint(env);
  } catch (e) {
    info.endpoint = env.HF_ENDPOINT ?? "";
    info.endpointProblem = (e as Error).message;
  }
  return info;
}
