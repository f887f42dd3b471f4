// A fake Hub that misbehaves, over real HTTP on 127.0.0.1: a connection cut half-way (resumed with a
// Range request), a server that goes quiet or never answers (bounded by the configured timeouts),
// 5xx / 429 Retry-After / a reset (retried), truncated, oversized and corrupt bodies, a server that
// ignores Range, and the leftovers of a failed run (resumed, or swept). Every failure is a one-line UserError.
import { after, before, beforeEach, test as nodeTest } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveModel, resolveRepoFile } from "../src/checkpoint/resolve.js";
import { UserError } from "../src/errors.js";
import { FakeHub, file, json, removeTmp, sendBytes, sha256, tmp, tree, type Fault, type Seen } from "./hub-fake.js";

/** These tests talk to servers: one that hangs fails after 10 s instead of stalling the run. */
const test = (name: string, fn: () => Promise<void>) => nodeTest(name, { timeout: 10_000 }, fn);

const SHA = "0123456789abcdef0123456789abcdef01234567";
const BIG = Buffer.from(Array.from({ length: 120_000 }, (_, i) => (i * 7 + 3) & 0xff));
const OID = sha256(BIG);
const CONFIG = Buffer.from(JSON.stringify({ model_type: "llama", pad: "x".repeat(50_000) }));

let hub: FakeHub;
before(async () => {
  hub = await FakeHub.start();
  hub.add({
    type: "model",
    id: "org/m",
    sha: SHA,
    refs: { main: SHA },
    files: { "config.json": file(CONFIG), "model.safetensors": file(BIG, true) },
  });
});
beforeEach(() => (hub.faults = []));
after(async () => {
  await hub.stop();
  removeTmp();
});

const fast = { retries: 2, backoffMs: 10, timeouts: { connectMs: 2_000, idleMs: 2_000 } };

function setup() {
  const root = tmp();
  const cache = join(root, "cache");
  const env: NodeJS.ProcessEnv = { HF_HUB_CACHE: cache, HF_HOME: join(root, "home"), HF_ENDPOINT: hub.endpoint };
  const blobs = join(cache, "models--org--m", "blobs");
  const onlyCache = () =>
    assert.deepEqual(
      tree(root).filter((p) => !p.startsWith("cache/")),
      [],
    );
  return { root, cache, env, blobs, onlyCache };
}

const getWeights = (env: NodeJS.ProcessEnv, more = {}) =>
  resolveRepoFile({ repo: "org/m", path: "model.safetensors", download: true, env, ...fast, ...more });

/** The Range header (or "none") of each request since `start` to the CDN (or that `which` picks). */
const ranges = (start: number, which = (s: Seen) => s.server === "cdn") =>
  hub.seen.slice(start).flatMap((s) => (which(s) ? [s.range ?? "none"] : []));

function oneLine(e: unknown, ...patterns: RegExp[]): boolean {
  assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
  return true;
}

/** The first answer for a path ending in `name` sends the whole file's headers and `bytes` of it, then acts. */
function partly(name: string, content: Buffer, bytes: number, then: "cut" | "stall" | "end"): Fault {
  let done = false;
  return (_req, res, seen) => {
    if (!seen.path.split("?")[0].endsWith(name) || done) return false;
    done = true;
    res.writeHead(200, then === "end" ? {} : { "content-length": content.length }); // "end": chunked, ends early
    res.write(content.subarray(0, bytes), () => {
      if (then === "cut") res.socket?.destroy();
      if (then === "end") res.end();
    });
    return true;
  };
}

test("a connection cut half-way is resumed with a Range request and the file completes", async () => {
  const { env, blobs, onlyCache } = setup();
  hub.faults = [partly(OID, BIG, 60_000, "cut")];
  const start = hub.seen.length;
  const progress: number[] = [];
  const got = await getWeights(env, { onProgress: (_f: string, done: number) => progress.push(done) });
  assert.deepEqual(readFileSync(got), BIG);
  assert.deepEqual(ranges(start), ["none", "bytes=60000-"]);
  assert.equal(progress.at(-1), BIG.length);
  assert.ok(progress.every((d, i) => i === 0 || d >= progress[i - 1]));
  assert.deepEqual(tree(blobs), [OID]); // no .incomplete left
  onlyCache();
});

test("a server that goes quiet mid-body: the idle timeout fires and the download resumes", async () => {
  const { env } = setup();
  hub.faults = [partly(OID, BIG, 50_000, "stall")];
  const start = hub.seen.length;
  const t0 = Date.now();
  const got = await getWeights(env, { timeouts: { connectMs: 2_000, idleMs: 150 } });
  assert.ok(Date.now() - t0 < 2_000, `took ${Date.now() - t0} ms`);
  assert.deepEqual(readFileSync(got), BIG);
  assert.deepEqual(ranges(start), ["none", "bytes=50000-"]);
});

test("a server that accepts and never answers: a clear error within the configured timeout", async () => {
  const { cache, env, onlyCache } = setup();
  hub.faults = [(_q, _s, seen) => seen.server === "hub"]; // never answers
  const start = hub.seen.length;
  const t0 = Date.now();
  await assert.rejects(
    resolveModel("org/m", {
      env,
      download: true,
      retries: 1,
      backoffMs: 10,
      timeouts: { connectMs: 200, idleMs: 200 },
    }),
    (e) => oneLine(e, /^org\/m: no response from 127\.0\.0\.1:\d+ within 200 ms \(HF_ENDPOINT is http:/),
  );
  const took = Date.now() - t0;
  assert.ok(took >= 380 && took < 1_500, `2 attempts of 200 ms, took ${took} ms`);
  assert.equal(hub.seen.length - start, 2);
  assert.deepEqual(tree(cache), []);
  onlyCache();
});

test("HTTP 503 and 429 are retried, the 429 after its Retry-After; a reset connection too", async () => {
  const { env } = setup();
  const once = (status: number, headers: Record<string, string> = {}): Fault => {
    let left = 1;
    return (_q, res, seen) => {
      if (seen.server !== "hub" || !seen.path.includes("/revision/") || left-- <= 0) return false;
      json(res, status, { error: "busy" }, headers);
      return true;
    };
  };
  hub.faults = [once(503)];
  let start = hub.seen.length;
  await getWeights(env);
  assert.equal(hub.seen.slice(start).filter((s) => s.path.includes("/revision/")).length, 2);

  const { env: env2 } = setup();
  hub.faults = [once(429, { "retry-after": "1" })];
  const t0 = Date.now();
  await getWeights(env2);
  assert.ok(Date.now() - t0 >= 950, `waited ${Date.now() - t0} ms for Retry-After: 1`);

  const { env: env3 } = setup();
  let resets = 1;
  hub.faults = [
    (req, _res, seen) => seen.path.includes("/paths-info/") && resets-- > 0 && (req.socket.destroy(), true),
  ];
  start = hub.seen.length;
  await getWeights(env3);
  assert.equal(hub.seen.slice(start).filter((s) => s.path.includes("/paths-info/")).length, 2);
});

test("a transfer that keeps failing: a one-line error with the byte count; the next run resumes it", async () => {
  const { env, blobs, onlyCache } = setup();
  hub.faults = [
    partly(OID, BIG, 30_000, "cut"),
    (req, _res, seen) => seen.server === "cdn" && (req.socket.destroy(), true), // then nothing at all
  ];
  await assert.rejects(getWeights(env), (e) =>
    oneLine(
      e,
      /^org\/m\/model\.safetensors: download stopped at 30000 of 120000 bytes \(could not reach localhost:\d+/,
      new RegExp(`run again to resume from .*${OID}\\.incomplete$`),
    ),
  );
  assert.equal(statSync(join(blobs, `${OID}.incomplete`)).size, 30_000);
  assert.ok(!existsSync(join(blobs, OID)));

  hub.faults = [];
  const start = hub.seen.length;
  const got = await getWeights(env);
  assert.deepEqual(readFileSync(got), BIG);
  assert.deepEqual(ranges(start), ["bytes=30000-"]);
  assert.deepEqual(tree(blobs), [OID]);
  onlyCache();
});

test("a body that ends early (no Content-Length) is resumed, a non-LFS file checked against its git sha1", async () => {
  const { env } = setup();
  hub.faults = [partly("/config.json", CONFIG, 20_000, "end")];
  const start = hub.seen.length;
  const r = await resolveModel("org/m", { env, download: true, ...fast });
  assert.deepEqual(readFileSync(join(r.folder, "config.json")), CONFIG);
  assert.deepEqual(
    ranges(start, (s) => s.path.endsWith("/config.json")),
    ["none", "bytes=20000-"],
  );
});

test("a server that ignores Range: the whole file is taken again from its start", async () => {
  const { env } = setup();
  hub.faults = [
    partly(OID, BIG, 40_000, "cut"),
    (_q, res, seen) => seen.server === "cdn" && (sendBytes(res, BIG, undefined, {}), true), // 200, whole file
  ];
  const start = hub.seen.length;
  assert.deepEqual(readFileSync(await getWeights(env)), BIG);
  assert.deepEqual(ranges(start), ["none", "bytes=40000-"]);
});

test("corrupt or oversized bytes: refused with the checksum or size, nothing kept", async () => {
  const { cache, env, blobs, onlyCache } = setup();
  const bad = Buffer.from(BIG);
  bad[77_777] ^= 1;
  hub.faults = [(_q, res, seen) => seen.server === "cdn" && (sendBytes(res, bad, seen.range, {}), true)];
  await assert.rejects(getWeights(env), (e) =>
    oneLine(
      e,
      new RegExp(
        `do not match the Hub's checksum \\(sha256 ${OID}, got ${sha256(bad)}\\); the partial file was removed$`,
      ),
    ),
  );
  assert.deepEqual(tree(blobs), []);

  hub.faults = [
    (_q, res, seen) => seen.server === "cdn" && (sendBytes(res, Buffer.concat([BIG, BIG]), undefined, {}), true),
  ];
  await assert.rejects(getWeights(env), (e) => oneLine(e, /the server sent more than the 120000 bytes the Hub lists$/));
  assert.deepEqual(tree(blobs), []);
  assert.ok(!tree(cache).some((p) => p.includes("snapshots/") && !p.endsWith("/")), "no snapshot entry");
  onlyCache();
});

test("leftovers of failed runs: a bad stale prefix is replaced; a dead process's temp file is swept", async () => {
  const { env, blobs } = setup();
  mkdirSync(blobs, { recursive: true });
  writeFileSync(join(blobs, `${OID}.incomplete`), Buffer.alloc(1_000)); // not BIG's first bytes
  const dead = spawnSync(process.execPath, ["-e", ""]).pid;
  writeFileSync(join(blobs, `model.safetensors.${dead}.incomplete`), "old-style temp file of a killed run");
  const start = hub.seen.length;
  assert.deepEqual(readFileSync(await getWeights(env)), BIG);
  assert.deepEqual(ranges(start), ["bytes=1000-", "none"]);
  assert.deepEqual(tree(blobs), [OID]);
});

test("a cache that cannot be written: a one-line UserError naming the path", async () => {
  const { env, blobs } = setup();
  mkdirSync(join(blobs, ".."), { recursive: true });
  writeFileSync(blobs, "a file where the blobs folder belongs");
  await assert.rejects(getWeights(env), (e) =>
    oneLine(e, new RegExp(`^${blobs}: cannot write the Hugging Face cache \\(EEXIST in mkdir\\)$`)),
  );
});

test("bad revisions and paths are refused before any path is built or request made", async () => {
  const { root, env } = setup();
  const start = hub.seen.length;
  for (const revision of [
    "../../etc",
    "/abs",
    "a b",
    "x\u0000y",
    "refs/../../x",
    "..",
    "a//b",
    "v1/",
    ".hidden",
    "x.lock",
    "",
  ]) {
    await assert.rejects(resolveRepoFile({ repo: "org/m", revision, path: "config.json", download: true, env }), (e) =>
      oneLine(e, /^org\/m\/config\.json: revision ".*" is not a branch, tag or commit sha/),
    );
    await assert.rejects(resolveModel(`org/m@${revision}`, { env, download: true }), (e) => e instanceof UserError);
  }
  for (const path of ["../x", "/etc/passwd", "a/../../b", "a\\b", "a//b", "./x", ""]) {
    await assert.rejects(resolveRepoFile({ repo: "org/m", path, download: true, env }), (e) =>
      oneLine(e, /is not a relative file path inside the repo$/),
    );
  }
  for (const repo of ["org/../x", "../x", "org/a/b", "org--x/y", "-org/x"]) {
    await assert.rejects(resolveRepoFile({ repo, path: "config.json", download: true, env }), (e) =>
      oneLine(e, /not a Hugging Face model id/),
    );
  }
  assert.equal(hub.seen.length, start);
  assert.deepEqual(tree(root), []);
});
