// Downloads from a fake Hub over real HTTP on 127.0.0.1: the cache they leave is the one Python's
// huggingface_hub writes (blob names, relative snapshot symlinks, refs), only the needed files are fetched,
// the token reaches the Hub and never the CDN, and access / not-found answers become one-line UserErrors.
import { after, before, test as nodeTest } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { resolveModel, resolveRepoFile } from "../src/checkpoint/resolve.js";
import { UserError } from "../src/errors.js";
import { DEFAULT_TIMEOUTS, hubFetch } from "../src/hub/http.js";
import { FakeHub, file, gitSha1, removeTmp, sha256, tmp, tree, type FakeRepo } from "./hub-fake.js";

/** These tests talk to servers: one that hangs fails after 10 s instead of stalling the run. */
const test = (name: string, fn: () => Promise<void>) => nodeTest(name, { timeout: 10_000 }, fn);

const SHA = "0123456789abcdef0123456789abcdef01234567";
const SHA_V1 = "fedcba9876543210fedcba9876543210fedcba98";
// Anchors from git and coreutils: `printf 'hello\n' | git hash-object --stdin` and `| sha256sum`.
const HELLO = "hello\n";
const HELLO_GIT_SHA1 = "ce013625030ba8dba906f756967f9e9ca394464a";
const HELLO_SHA256 = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";

let hub: FakeHub;
const cwdBefore = readdirSync(process.cwd()).sort();
before(async () => (hub = await FakeHub.start()));
after(async () => {
  await hub.stop();
  removeTmp();
  assert.deepEqual(readdirSync(process.cwd()).sort(), cwdBefore, "nothing written to the working folder");
});

function weights(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A temp root holding only cache/ and home/ (HF_HOME, empty unless a test writes a token there). */
function setup(extra: NodeJS.ProcessEnv = {}) {
  const root = tmp();
  const cache = join(root, "cache");
  const home = join(root, "home");
  mkdirSync(home);
  const env: NodeJS.ProcessEnv = { HF_HUB_CACHE: cache, HF_HOME: home, HF_ENDPOINT: hub.endpoint + "/", ...extra };
  /** Asserts that nothing was written outside cache/ (and home/ holds only `homeFiles`). */
  const onlyCache = (homeFiles: string[] = []) => {
    const outside = tree(root).filter((p) => !p.startsWith("cache/") && p !== "home/" && !homeFiles.includes(p));
    assert.deepEqual(outside, [], "files outside the cache folder");
  };
  return { root, cache, home, env, onlyCache };
}

function oneLine(e: unknown, ...patterns: RegExp[]): boolean {
  assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
  return true;
}

test("a model download leaves Python's cache layout, fetches only the needed files, then works offline", async () => {
  const big = weights(200_000, 7);
  const repo = hub.add({
    type: "model",
    id: "org/name",
    sha: SHA,
    refs: { main: SHA },
    files: {
      "config.json": file('{"_name_or_path":"org/name"}'),
      "tokenizer.json": file(HELLO),
      "generation_config.json": file(HELLO), // same bytes: one blob
      "tokenizer_config.json": file("{}"),
      "special_tokens_map.json": file(HELLO, true), // the same bytes in LFS: named by sha256 instead
      "model.safetensors": file(big, true),
      "model.fp16.safetensors": file("w16", true),
      "pytorch_model.bin": file("bin", true),
      "README.md": file("readme"),
      "onnx/model.onnx": file("onnx", true),
    },
  });
  const { cache, env, onlyCache } = setup({ HF_TOKEN: "hf_secret" });
  const progress: [string, number, number][] = [];
  const printed: unknown[] = [];
  const saved = { debug: console.debug, info: console.info, log: console.log, warn: console.warn };
  for (const k of Object.keys(saved) as (keyof typeof saved)[]) console[k] = (...a: unknown[]) => printed.push(a);
  let r;
  try {
    r = await resolveModel("org/name", { env, download: true, onProgress: (f, d, t) => progress.push([f, d, t]) });
  } finally {
    Object.assign(console, saved);
  }
  assert.deepEqual(printed, [], "@huggingface/hub printed nothing (stdout carries --json)");

  const snap = join(cache, "models--org--name", "snapshots", SHA);
  assert.deepEqual(r, { folder: snap, modelId: "org/name", revision: SHA });
  const cfg = gitSha1(Buffer.from('{"_name_or_path":"org/name"}'));
  const empty = gitSha1(Buffer.from("{}"));
  const w = sha256(big);
  assert.deepEqual(tree(cache), [
    "models--org--name/",
    "models--org--name/blobs/",
    ...[HELLO_SHA256, HELLO_GIT_SHA1, cfg, empty, w].sort().map((b) => `models--org--name/blobs/${b}`),
    "models--org--name/refs/",
    "models--org--name/refs/main",
    "models--org--name/snapshots/",
    `models--org--name/snapshots/${SHA}/`,
    `models--org--name/snapshots/${SHA}/config.json -> ../../blobs/${cfg}`,
    `models--org--name/snapshots/${SHA}/generation_config.json -> ../../blobs/${HELLO_GIT_SHA1}`,
    `models--org--name/snapshots/${SHA}/model.safetensors -> ../../blobs/${w}`,
    `models--org--name/snapshots/${SHA}/special_tokens_map.json -> ../../blobs/${HELLO_SHA256}`,
    `models--org--name/snapshots/${SHA}/tokenizer.json -> ../../blobs/${HELLO_GIT_SHA1}`,
    `models--org--name/snapshots/${SHA}/tokenizer_config.json -> ../../blobs/${empty}`,
  ]);
  assert.equal(readFileSync(join(cache, "models--org--name", "refs", "main"), "utf8"), SHA);
  assert.deepEqual(readFileSync(join(snap, "model.safetensors")), big);
  assert.equal(readFileSync(join(snap, "special_tokens_map.json"), "utf8"), HELLO);
  onlyCache();

  const resolves = hub.seen.filter((s) => s.server === "hub" && s.path.includes("/resolve/"));
  assert.deepEqual(
    resolves.map((s) => s.path.split("/").pop()),
    [
      "model.safetensors",
      "generation_config.json",
      "tokenizer_config.json",
      "special_tokens_map.json",
      "config.json", // last: a cached config.json means a complete snapshot
    ],
  ); // no request for tokenizer.json: its blob (the bytes of generation_config.json) was there already
  assert.ok(hub.count((s) => s.path.startsWith(`/api/models/org/name/revision/main?`)) === 1);
  assert.ok(
    hub.count((s) => s.path.includes("/tree/") && s.path.includes("cursor=")) >= 3,
    "paginated listing followed",
  );
  assert.ok(hub.seen.filter((s) => s.server === "hub").every((s) => s.authorization === "Bearer hf_secret"));
  const files = hub.seen.filter((s) => s.path.includes("/resolve/") || s.server === "cdn");
  assert.ok(
    files.every((s) => s.acceptEncoding === "identity"),
    "no compression: Range offsets are file offsets",
  );
  const cdn = hub.seen.filter((s) => s.server === "cdn");
  assert.equal(cdn.length, 2); // model.safetensors and special_tokens_map.json
  assert.ok(
    cdn.every((s) => s.authorization === undefined),
    "the token never goes to the CDN",
  );

  const mine = progress.filter(([f]) => f === "model.safetensors");
  assert.deepEqual(mine[0], ["model.safetensors", 0, 200_000]);
  assert.deepEqual(mine.at(-1), ["model.safetensors", 200_000, 200_000]);
  assert.ok(mine.every(([, d], i) => i === 0 || d >= mine[i - 1][1]));

  const requests = hub.seen.length;
  const offline = await resolveModel("org/name", { env: { ...env, HF_HUB_OFFLINE: "1" }, download: true });
  assert.deepEqual(offline, r);
  assert.deepEqual(await resolveModel("org/name", { env, download: true }), r); // complete: no network
  assert.equal(hub.seen.length, requests);
  hub.repos.splice(hub.repos.indexOf(repo), 1);
});

test("a sharded model takes the shards its index names, and a missing shard is an error naming the index", async () => {
  const index = { weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } };
  const files: FakeRepo["files"] = {
    "config.json": file("{}"),
    "model.safetensors.index.json": file(JSON.stringify(index)),
    "model-00001-of-00002.safetensors": file("shard one", true),
    "model-00002-of-00002.safetensors": file("shard two", true),
    "consolidated.safetensors": file("not in the index", true),
  };
  hub.add({ type: "model", id: "org/sharded", sha: SHA, refs: { main: SHA }, files });
  const { cache, env, onlyCache } = setup();
  const before = hub.seen.length;
  const r = await resolveModel("org/sharded", { env, download: true });
  assert.deepEqual(readdirSync(r.folder).sort(), [
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
  ]);
  assert.ok(
    hub.seen.slice(before).every((s) => s.authorization === undefined),
    "no token, none sent",
  );
  onlyCache();

  const bad = { weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00009-of-00009.safetensors" } };
  hub.add({
    type: "model",
    id: "org/broken",
    sha: SHA,
    refs: { main: SHA },
    files: { ...files, "model.safetensors.index.json": file(JSON.stringify(bad)) },
  });
  await assert.rejects(resolveModel("org/broken", { env, download: true }), (e) =>
    oneLine(e, /^org\/broken\/model\.safetensors\.index\.json: names shards that revision main lacks: model-00009/),
  );
  assert.ok(!tree(cache).some((p) => p.includes("models--org--broken/refs")));
});

test("a gated repo without a token: says to set HF_TOKEN and accept the licence; the token file works", async () => {
  hub.add({
    type: "model",
    id: "org/gated",
    sha: SHA,
    refs: { main: SHA },
    gated: true,
    files: { "config.json": file("{}"), "model.safetensors": file(weights(5000, 1), true) },
  });
  const { cache, home, env, onlyCache } = setup();
  await assert.rejects(resolveModel("org/gated", { env, download: true }), (e) =>
    oneLine(
      e,
      /^org\/gated\/model\.safetensors: HTTP 401/,
      /Set HF_TOKEN/,
      /huggingface-cli login/,
      new RegExp(`accept the licence at ${hub.endpoint}/org/gated$`),
    ),
  );
  assert.deepEqual(
    tree(cache).filter((p) => !p.endsWith("/")),
    [],
    "no file written",
  );

  await assert.rejects(resolveModel("org/gated", { env: { ...env, HF_TOKEN: "hf_wrong" }, download: true }), (e) =>
    oneLine(e, /HTTP 403: the token \(from HF_TOKEN\) gives no access. Accept the licence at/),
  );

  writeFileSync(join(home, "token"), "hf_good\n");
  const before = hub.seen.length;
  const r = await resolveModel("org/gated", { env, download: true });
  assert.equal(r.revision, SHA);
  const used = hub.seen.slice(before);
  assert.ok(used.filter((s) => s.server === "hub").every((s) => s.authorization === "Bearer hf_good"));
  assert.ok(
    used.some((s) => s.server === "cdn") && used.filter((s) => s.server === "cdn").every((s) => !s.authorization),
  );
  onlyCache(["home/token"]);

  hub.add({ type: "model", id: "org/private", sha: SHA, refs: { main: SHA }, private: true, files: {} });
  await assert.rejects(resolveModel("org/private", { env: { ...env, HF_HOME: tmp() }, download: true }), (e) =>
    oneLine(e, /^org\/private: HTTP 401: the repo is gated or private and no token was sent. Set HF_TOKEN/),
  );

  const other = setup({ HF_TOKEN_PATH: join(tmp(), "my-token") });
  writeFileSync(other.env.HF_TOKEN_PATH!, "  hf_good  ");
  assert.equal((await resolveModel("org/gated", { env: other.env, download: true })).revision, SHA);
});

test("a data set file lands in datasets--org--name as in Python; a renamed repo's 307 keeps the token", async () => {
  const parquet = weights(70_000, 3);
  hub.add({
    type: "dataset",
    id: "org/data",
    sha: SHA,
    refs: { main: SHA },
    files: { "data/train-00000-of-00001.parquet": file(parquet, true), "README.md": file("# data") },
  });
  hub.renamed.set("org/old-data", "org/data");
  const { cache, env, onlyCache } = setup({ HF_TOKEN: "hf_secret" });
  const before = hub.seen.length;
  const got = await resolveRepoFile({
    repoType: "dataset",
    repo: "org/data",
    path: "data/train-00000-of-00001.parquet",
    download: true,
    env,
  });
  const dir = join(cache, "datasets--org--data");
  assert.equal(got, join(dir, "snapshots", SHA, "data", "train-00000-of-00001.parquet"));
  assert.deepEqual(readFileSync(got), parquet);
  assert.deepEqual(tree(dir), [
    "blobs/",
    `blobs/${sha256(parquet)}`,
    "refs/",
    "refs/main",
    "snapshots/",
    `snapshots/${SHA}/`,
    `snapshots/${SHA}/data/`,
    `snapshots/${SHA}/data/train-00000-of-00001.parquet -> ../../../blobs/${sha256(parquet)}`,
  ]);
  const paths = hub.seen.slice(before).map((s) => `${s.method} ${s.path.split("?")[0]}`);
  assert.deepEqual(paths, [
    "GET /api/datasets/org/data/revision/main",
    `POST /api/datasets/org/data/paths-info/${SHA}`,
    `GET /datasets/org/data/resolve/${SHA}/data/train-00000-of-00001.parquet`,
    `GET /lfs/${sha256(parquet)}`,
  ]);

  const readme = await resolveRepoFile({
    repoType: "dataset",
    repo: "org/old-data",
    path: "README.md",
    download: true,
    env,
  });
  assert.equal(readFileSync(readme, "utf8"), "# data");
  assert.ok(readme.includes("datasets--org--old-data"), "filed under the id asked for, as Python does");
  const hops = hub.seen.filter((s) => s.path.includes("/resolve/") && s.path.endsWith("README.md"));
  assert.deepEqual(
    hops.map((s) => [s.path.split("/resolve/")[0], s.authorization]),
    [
      ["/datasets/org/old-data", "Bearer hf_secret"],
      ["/datasets/org/data", "Bearer hf_secret"], // same host: the token follows the redirect
    ],
  );
  onlyCache();
});

test("one .gguf of a model repo at a tag: refs/<tag> written, then found offline by tag, sha, short sha", async () => {
  const gguf = weights(12_345, 9);
  hub.add({
    type: "model",
    id: "org/gguf",
    sha: SHA_V1,
    refs: { main: SHA_V1, "v1.0": SHA_V1 },
    files: { "model-Q4_K_M.gguf": file(gguf, true), "model-Q8_0.gguf": file("other", true) },
  });
  const { cache, env, onlyCache } = setup();
  const req = { repo: "org/gguf", path: "model-Q4_K_M.gguf", env };
  const got = await resolveRepoFile({ ...req, revision: "v1.0", download: true });
  assert.equal(got, join(cache, "models--org--gguf", "snapshots", SHA_V1, "model-Q4_K_M.gguf"));
  assert.deepEqual(readFileSync(got), gguf);
  assert.equal(readFileSync(join(cache, "models--org--gguf", "refs", "v1.0"), "utf8"), SHA_V1);
  assert.equal(
    hub.count((s) => s.path.includes("Q8_0")),
    0,
  );

  const before = hub.seen.length;
  const offline = { ...req, env: { ...env, HF_HUB_OFFLINE: "yes" }, download: true };
  assert.equal(await resolveRepoFile({ ...offline, revision: "v1.0" }), got);
  assert.equal(await resolveRepoFile({ ...offline, revision: SHA_V1 }), got);
  assert.equal(await resolveRepoFile({ ...offline, revision: SHA_V1.slice(0, 7) }), got);
  assert.equal(hub.seen.length, before);
  await assert.rejects(resolveRepoFile({ ...offline, revision: "main" }), (e) =>
    oneLine(
      e,
      /^org\/gguf\/model-Q4_K_M\.gguf: not in the Hugging Face cache/,
      /HF_HUB_OFFLINE is set/,
      /`huggingface-cli download org\/gguf model-Q4_K_M\.gguf`/,
    ),
  );
  onlyCache();
});

test("no such repo, revision or file: one-line UserErrors naming it, nothing written", async () => {
  hub.add({ type: "model", id: "org/small", sha: SHA, refs: { main: SHA }, files: { "config.json": file("{}") } });
  const { cache, env, onlyCache } = setup();
  await assert.rejects(resolveModel("org/absent", { env, download: true }), (e) =>
    oneLine(
      e,
      /^org\/absent: no such model repo, or no revision main in it on http:\/\/127\.0\.0\.1:\d+ \(if it is private/,
    ),
  );
  await assert.rejects(resolveModel("org/small@nope", { env, download: true }), (e) => oneLine(e, /no revision nope/));
  await assert.rejects(resolveRepoFile({ repo: "org/small", path: "x.gguf", env, download: true }), (e) =>
    oneLine(e, /^org\/small\/x\.gguf: no such file in revision main \(0123456789abcdef/),
  );
  await assert.rejects(resolveModel("org/small", { env, download: true }), (e) =>
    oneLine(e, /^org\/small: revision main has no \*\.safetensors weights \(only config\.json\)/),
  );
  hub.faults = [
    (_q, res, seen) => seen.path.includes("/revision/") && (res.end("<html>Please log in to the wifi</html>"), true),
  ];
  await assert.rejects(resolveModel("org/small", { env, download: true }), (e) =>
    oneLine(e, /^org\/small: unexpected answer from http:\/\/127\.0\.0\.1:\d+: SyntaxError: Unexpected token/),
  );
  hub.faults = [];
  const written = tree(cache).filter((p) => !p.endsWith("/"));
  assert.deepEqual(written, []);
  onlyCache();
});

test("the token goes to the Hub's origin only, whatever the first URL", async () => {
  const retry = { retries: 0, backoffMs: 1 };
  const get = hubFetch({ base: fetch, endpoint: hub.endpoint, token: "hf_t", timeouts: DEFAULT_TIMEOUTS, retry });
  const start = hub.seen.length;
  await (await get(`${hub.cdn}/lfs/${"0".repeat(64)}`)).text();
  await (await get(`${hub.endpoint}/api/models/org/none/revision/main`)).text();
  assert.deepEqual(
    hub.seen.slice(start).map((s) => [s.server, s.authorization]),
    [
      ["cdn", undefined],
      ["hub", "Bearer hf_t"],
    ],
  );
});

test("an index that is not JSON, has no weight_map, or names something other than a file is refused, naming it", async () => {
  const { env } = setup();
  const cases: [string, string, RegExp][] = [
    ["org/index-text", "{weight_map", /^org\/index-text\/model\.safetensors\.index\.json: not JSON \(/],
    [
      "org/index-nomap",
      '{"metadata": {}}',
      /^org\/index-nomap\/model\.safetensors\.index\.json: has no weight_map object$/,
    ],
    [
      "org/index-number",
      '{"weight_map": {"a": 5}}',
      /^org\/index-number\/model\.safetensors\.index\.json: weight_map holds 5, not a file name$/,
    ],
  ];
  for (const [id, text, message] of cases) {
    hub.add({
      type: "model",
      id,
      sha: SHA,
      refs: { main: SHA },
      files: {
        "config.json": file("{}"),
        "model.safetensors.index.json": file(text),
        "a.safetensors": file("w", true),
      },
    });
    await assert.rejects(resolveModel(id, { env, download: true }), (e) => oneLine(e, message));
  }
});
