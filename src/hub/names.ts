// The names that become paths in the cache (repo ids, revisions, file paths inside a repo), checked before
// any path is built from them, and the cache folder names Python's huggingface_hub gives repos.
import { UserError } from "../errors.js";

export type RepoType = "model" | "dataset";

export interface RepoRef {
  type: RepoType;
  /** "org/name" (or a legacy "name" for data sets). */
  id: string;
}

export const FULL_SHA = /^[0-9a-f]{40}$/;
/** A commit sha or an abbreviation of one, as `git` accepts (7 hex digits or more). */
export const SHA_PREFIX = /^[0-9a-f]{7,40}$/;

// Python's validate_repo_id: word characters, '-' and '.', starting and ending with a word character,
// at most one '/', no "--" or "..", at most 96 characters.
const REPO_PART = /^\w(?:[\w.-]*\w)?$/;

/** Whether `id` is a valid repo id; `needOrg` asks for the "org/name" form. */
export function isRepoId(id: string, needOrg = true): boolean {
  const parts = id.split("/");
  if (parts.length > 2 || (needOrg && parts.length !== 2)) return false;
  return id.length <= 96 && !id.includes("--") && !id.includes("..") && parts.every((p) => REPO_PART.test(p));
}

export function checkRepoId(repo: RepoRef): void {
  if (!isRepoId(repo.id, repo.type === "model")) {
    const form = repo.type === "model" ? "org/name" : "org/name or name";
    throw new UserError(
      `not a Hugging Face ${repo.type} id (expected ${form}: letters, digits, "-", "_", ".")`,
      repo.id,
    );
  }
}

// Branch and tag names as git allows them, narrowed to characters that are safe in a path: no "..", no
// component starting with ".", no empty component (leading, trailing or doubled "/"), no ".lock" ending.
const REVISION_CHARS = /^[A-Za-z0-9._+\-/]{1,255}$/;

export function checkRevision(revision: string, what: string): void {
  const ok =
    REVISION_CHARS.test(revision) &&
    !revision.endsWith(".lock") &&
    revision.split("/").every((c) => c !== "" && !c.startsWith("."));
  if (!ok) {
    throw new UserError(
      `revision "${printable(revision)}" is not a branch, tag or commit sha ` +
        `(letters, digits, ".", "_", "-", "+" and "/" between non-empty parts; no "..")`,
      what,
    );
  }
}

/** A file path inside a repo: relative, "/"-separated, no empty, "." or ".." component, no "\" or NUL. */
export function checkRepoPath(path: string, what: string): void {
  const ok =
    path.length > 0 &&
    path.length <= 1024 &&
    !/[\\\0]/.test(path) &&
    path.split("/").every((c) => c !== "" && c !== "." && c !== "..");
  if (!ok) throw new UserError(`"${printable(path)}" is not a relative file path inside the repo`, what);
}

/** "models--org--name" / "datasets--org--name", as Python's repo_folder_name. */
export function repoFolderName(repo: RepoRef): string {
  return [`${repo.type}s`, ...repo.id.split("/")].join("--");
}

/** How the Hub's web pages and file URLs name the repo: "org/name" or "datasets/org/name". */
export function repoUrlPath(repo: RepoRef): string {
  return repo.type === "model" ? repo.id : `datasets/${repo.id}`;
}

/** Control characters shown escaped, so that an error message stays on one line. */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
