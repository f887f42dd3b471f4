// Downloading one file of a commit into the cache: into blobs/<etag>.incomplete (resumed with a Range
// request after a broken connection, or by the next run), checked against the etag (sha256 of an LFS
// file, git blob sha1 of any other), renamed to blobs/<etag>, then linked from snapshots/<sha>/<path>.
// The bytes come through plain fetch (our http.ts), not @huggingface/hub's WebBlob: that turns every
// failure into a bare string and accepts a 200 answer to a Range request, so it cannot resume safely.
import { createHash, type Hash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, open, rename, rm, stat, writeFile } from "node:fs/promises";
import { UserError } from "../errors.js";
import { accessAdvice, checkRemoteFile, fileUrl, hubError, type Hub, type RemoteFile } from "./api.js";
import { cacheWriteError, inside, linkIntoSnapshot, sweepStaleDownloads } from "./cache.js";
import { TransferError, backoff, sleep } from "./http.js";
import { repoUrlPath, type RepoRef } from "./names.js";

export type Progress = (file: string, done: number, total: number) => void;

/** A hash that should end equal to the etag: Python's blob names are the Hub's etags. */
function etagHash(f: RemoteFile): Hash {
  if (f.etag.length === 64) return createHash("sha256");
  return createHash("sha1").update(`blob ${f.size}\0`); // git's object id of the file
}

function rangeStart(res: Response): number | undefined {
  const m = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
  return m ? Number(m[1]) : undefined;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashExisting(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/**
 * snapshots/<sha>/<path> for a file of `repo` at commit `sha`, downloaded unless it (or its blob) is
 * already in the cache folder `dir`.
 */
export async function fetchIntoCache(
  hub: Hub,
  dir: string,
  repo: RepoRef,
  sha: string,
  file: RemoteFile,
  onProgress?: Progress,
): Promise<string> {
  const what = `${repoUrlPath(repo)}/${file.path}`;
  checkRemoteFile(file, what);
  const pointer = inside(dir, "snapshots", sha, ...file.path.split("/"));
  if (existsSync(pointer)) return pointer;
  const blobs = inside(dir, "blobs");
  const blob = inside(blobs, file.etag);
  try {
    if (!existsSync(blob)) {
      await mkdir(blobs, { recursive: true });
      await sweepStaleDownloads(blobs);
      await downloadBlob(hub, fileUrl(hub, repo, sha, file.path), blob, file, what, repo, onProgress);
    }
    await linkIntoSnapshot(pointer, blob);
  } catch (e) {
    throw cacheWriteError(e);
  }
  return pointer;
}

async function downloadBlob(
  hub: Hub,
  url: string,
  blob: string,
  file: RemoteFile,
  what: string,
  repo: RepoRef,
  onProgress?: Progress,
): Promise<void> {
  const partial = `${blob}.incomplete`;
  let have = await sizeOf(partial);
  if (have > file.size) have = 0; // not a prefix of this file: start over
  let hash = etagHash(file);
  if (have > 0) await hashExisting(hash, partial);
  let fromScratch = have === 0; // whether `have` bytes all came from this call (a stale prefix may be bad)
  let failures = 0;
  let lastFailure = "";
  onProgress?.(file.path, have, file.size);
  const startOver = () => {
    have = 0;
    hash = etagHash(file);
    fromScratch = true;
  };

  if (file.size === 0) await writeFile(partial, "");
  while (have < file.size) {
    const ranged = have > 0;
    let res: Response;
    try {
      // identity: byte offsets must be the file's own for a Range request to continue it
      const headers = { "accept-encoding": "identity", ...(ranged && { range: `bytes=${have}-` }) };
      res = await hub.fetch(url, { headers });
    } catch (e) {
      throw failed(e, "");
    }
    if (ranged && res.status === 416) {
      await res.body?.cancel().catch(() => {});
      startOver(); // the server will not continue from there: take the whole file again
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => {});
      if (res.status === 401 || res.status === 403) throw new UserError(accessAdvice(hub, repo, res.status), what);
      throw new UserError(`GET ${url} failed: HTTP ${res.status}`, what);
    }
    // A 200 to a Range request (or a 206 from elsewhere than asked) is the file from its start.
    const continues = ranged && res.status === 206 && rangeStart(res) === have;
    if (ranged && !continues) startOver();
    const before = have;
    const out = await open(partial, continues ? "a" : "w");
    try {
      if (res.body) {
        for await (const chunk of res.body) {
          if (have + chunk.length > file.size) {
            throw new UserError(`the server sent more than the ${file.size} bytes the Hub lists`, what);
          }
          await out.write(chunk);
          hash.update(chunk);
          have += chunk.length;
          onProgress?.(file.path, have, file.size);
        }
      }
      lastFailure = have < file.size ? `the response ended at byte ${have}` : "";
    } catch (e) {
      if (!(e instanceof TransferError)) {
        if (e instanceof UserError) await rm(partial, { force: true }); // bytes that cannot be this file
        throw e; // a UserError, or a file system error (a full disk): retrying would not help
      }
      lastFailure = e.message;
    } finally {
      await out.close();
    }
    if (have === file.size) break;
    failures = have > before ? 1 : failures + 1;
    if (failures > hub.retry.retries) throw failed(undefined, lastFailure);
    await sleep(backoff(hub.retry, failures));
  }

  const digest = hash.digest("hex");
  if (digest !== file.etag) {
    await rm(partial, { force: true });
    if (!fromScratch) return downloadBlob(hub, url, blob, file, what, repo, onProgress); // a bad stale prefix
    throw new UserError(
      `the downloaded bytes do not match the Hub's checksum (${file.etag.length === 64 ? "sha256" : "git sha1"} ` +
        `${file.etag}, got ${digest}); the partial file was removed`,
      what,
    );
  }
  await rename(partial, blob);

  function failed(e: unknown, reason: string): UserError {
    if (e !== undefined && !(e instanceof TransferError)) return hubError(e, hub, repo, { path: file.path });
    const why = e instanceof TransferError ? e.message : reason;
    if (have === 0) return new UserError(`download failed (${why})`, what);
    return new UserError(
      `download stopped at ${have} of ${file.size} bytes (${why}); run again to resume from ${partial}`,
      what,
    );
  }
}
