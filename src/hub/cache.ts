// The Hugging Face cache on disk, laid out as Python's huggingface_hub lays it out:
//   <cache>/models--org--name/refs/<revision>          the commit sha a branch or tag pointed to
//   <cache>/models--org--name/snapshots/<sha>/<path>   a relative symlink into blobs/
//   <cache>/models--org--name/blobs/<etag>             the file (sha256 for LFS files, git sha1 otherwise)
//   <cache>/models--org--name/blobs/<etag>.incomplete  a download in progress, resumed by the next run
import { readFileSync, readdirSync } from "node:fs";
import { copyFile, mkdir, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { UserError } from "../errors.js";
import { FULL_SHA, SHA_PREFIX, printable, repoFolderName, type RepoRef } from "./names.js";

/** The folder of one repo in the cache; `repo` and the cache root are trusted to be checked already. */
export function repoDir(cacheDir: string, repo: RepoRef): string {
  return join(cacheDir, repoFolderName(repo));
}

/** `path` joined under `root`, refused if it would land outside (defence in depth after checkRepoPath). */
export function inside(root: string, ...parts: string[]): string {
  const p = resolve(root, ...parts);
  if (p !== resolve(root) && !p.startsWith(resolve(root) + sep)) {
    throw new UserError(`refusing to write outside the cache folder ${root}`, parts.join("/"));
  }
  return p;
}

/**
 * The commit a revision stands for in this cache: a full sha as is, else `refs/<revision>`, else the one
 * snapshot whose name starts with a short sha. Undefined when the cache does not know it.
 */
export function localCommit(dir: string, revision: string, what: string): string | undefined {
  if (FULL_SHA.test(revision)) return revision;
  const refFile = inside(dir, "refs", revision);
  let ref: string | undefined;
  try {
    ref = readFileSync(refFile, "utf8").trim();
  } catch {}
  if (ref !== undefined) {
    if (!FULL_SHA.test(ref)) throw new UserError(`holds "${printable(ref.slice(0, 60))}", not a commit sha`, refFile);
    return ref;
  }
  if (!SHA_PREFIX.test(revision)) return undefined;
  let snapshots: string[] = [];
  try {
    snapshots = readdirSync(join(dir, "snapshots"))
      .filter((s) => FULL_SHA.test(s) && s.startsWith(revision))
      .sort();
  } catch {}
  if (snapshots.length > 1) {
    throw new UserError(
      `short sha ${revision} matches ${snapshots.length} snapshots (${snapshots.join(", ")}): give more digits`,
      what,
    );
  }
  return snapshots[0];
}

/** Records that `revision` points at `sha` (Python writes this for every revision that is not the sha). */
export async function writeRef(dir: string, revision: string, sha: string): Promise<void> {
  const refFile = inside(dir, "refs", revision);
  const tmp = `${refFile}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(refFile), { recursive: true });
    await writeFile(tmp, sha);
    await rename(tmp, refFile);
  } catch (e) {
    throw cacheWriteError(e);
  }
}

/** A file system failure in the cache (permissions, a full disk, a file in a folder's place) as a UserError. */
export function cacheWriteError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof UserError || typeof err?.code !== "string" || !err.syscall) return e;
  return new UserError(`cannot write the Hugging Face cache (${err.code} in ${err.syscall})`, err.path ?? "cache");
}

/** Makes snapshots/<sha>/<path> a relative symlink to the blob (a copy where symlinks are refused). */
export async function linkIntoSnapshot(pointer: string, blob: string): Promise<void> {
  await mkdir(dirname(pointer), { recursive: true });
  const tmp = `${pointer}.${process.pid}.tmp`;
  await rm(tmp, { force: true });
  try {
    await symlink(relative(dirname(pointer), blob), tmp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw e;
    await copyFile(blob, tmp); // as Python does without symlink support (e.g. Windows without developer mode)
  }
  await rename(tmp, pointer);
}

/**
 * Removes what an earlier, killed run of ours left in blobs/: `<name>.<pid>.incomplete` files of a process
 * that is gone (Python's `<etag>.incomplete` files are kept: the next download resumes them).
 */
export async function sweepStaleDownloads(blobs: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(blobs);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.(\d+)\.incomplete$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) await rm(join(blobs, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
