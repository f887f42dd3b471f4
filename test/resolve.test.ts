// Resolving folders, model ids and repo files against Hugging Face caches built by hand the way Python's
// huggingface_hub writes them, and the settings read from the environment (all without a network).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  doctorInfo,
  hubCacheDir,
  modelIdFromConfig,
  resolveModel,
  resolveRepoFile,
} from "../src/checkpoint/resolve.js";
import { hubToken, isOffline } from "../src/hub/settings.js";
import { UserError } from "../src/errors.js";
import { gitSha1, sha256 } from "./hub-fake.js";

const SHA1 = "a".repeat(40);
const SHA2 = "b".repeat(40);
const SHA3 = "abcdef0" + "1".repeat(33); // shares its first 6 digits with SHA4
const SHA4 = "abcdef9" + "2".repeat(33);

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "sw-resolve-"));
  made.push(d);
  return d;
}

/** A cache entry as Python writes it: blobs named by etag (sha256 for LFS, git sha1 otherwise), relative links. */
function addToCache(
  cache: string,
  id: string,
  sha: string,
  refs: string[],
  files: Record<string, string>,
  type = "models",
  lfs = [".safetensors"],
): string {
  const repo = join(cache, `${type}--${id.replace("/", "--")}`);
  const snap = join(repo, "snapshots", sha);
  mkdirSync(join(repo, "blobs"), { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const etag = lfs.some((e) => name.endsWith(e)) ? sha256(Buffer.from(text)) : gitSha1(Buffer.from(text));
    writeFileSync(join(repo, "blobs", etag), text);
    const depth = name.split("/").length;
    mkdirSync(join(snap, name, ".."), { recursive: true });
    symlinkSync(`${"../".repeat(depth + 1)}blobs/${etag}`, join(snap, name));
  }
  for (const r of refs) {
    mkdirSync(join(repo, "refs", r, ".."), { recursive: true });
    writeFileSync(join(repo, "refs", r), sha);
  }
  return snap;
}

const MODEL = { "config.json": '{"model_type":"llama"}', "model.safetensors": "weights" };
const noNetwork = (async () => assert.fail("no request may be made")) as typeof fetch;

function oneLine(e: unknown, ...patterns: RegExp[]): boolean {
  assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
  assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
  for (const p of patterns) assert.match(e.message, p);
  return true;
}

test("an existing folder resolves to itself, without a model id; a revision with a folder is refused", async () => {
  const dir = tmp();
  assert.deepEqual(await resolveModel(dir, { env: {} }), { folder: dir });
  await assert.rejects(resolveModel(dir, { env: {}, revision: "main" }), (e) =>
    oneLine(e, /applies to a Hugging Face model id/),
  );
});

test("a folder inside an HF cache gives the model id and revision", async () => {
  const cache = tmp();
  const snap = addToCache(cache, "org/some--name", SHA1, [], MODEL);
  const r = await resolveModel(snap, { env: {} });
  // "--" maps back to "/" as Python does
  assert.deepEqual(r, { folder: snap, modelId: "org/some/name", revision: SHA1 });
  const snap2 = addToCache(cache, "Org/Model-1.5B", SHA2, [], MODEL);
  assert.equal((await resolveModel(snap2 + "/", { env: {} })).modelId, "Org/Model-1.5B");
});

test("org/name resolves through refs/main; HF_HUB_CACHE › HF_HOME/hub › XDG_CACHE_HOME", async () => {
  const home = tmp();
  const other = tmp();
  const inHome = addToCache(join(home, "hub"), "org/name", SHA1, ["main"], MODEL);
  const inOther = addToCache(other, "org/name", SHA2, ["main"], MODEL);
  const r = await resolveModel("org/name", { env: { HF_HOME: home }, fetch: noNetwork });
  assert.deepEqual(r, { folder: inHome, modelId: "org/name", revision: SHA1 });
  assert.equal((await resolveModel("org/name", { env: { HF_HOME: home, HF_HUB_CACHE: other } })).folder, inOther);
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/x/cache" }), "/x/cache/huggingface/hub");
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/x/cache", HF_HOME: "/y" }), "/y/hub");
  assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/z" }), "/z");
});

test("revisions: branch and tag via refs/, a full sha, a unique short sha; an ambiguous one is refused", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  addToCache(cache, "org/name", SHA1, ["main"], MODEL);
  const v2 = addToCache(cache, "org/name", SHA2, ["v2", "refs/pr/1"], MODEL);
  const s3 = addToCache(cache, "org/name", SHA3, [], MODEL);
  addToCache(cache, "org/name", SHA4, [], MODEL);
  assert.equal((await resolveModel("org/name@v2", { env })).folder, v2);
  assert.equal((await resolveModel("org/name", { env, revision: "refs/pr/1" })).folder, v2);
  assert.equal((await resolveModel("org/name@v2", { env, revision: "v2" })).folder, v2);
  assert.equal((await resolveModel("org/name", { env })).revision, SHA1);
  assert.deepEqual(await resolveModel(`org/name@${SHA2}`, { env }), {
    folder: v2,
    modelId: "org/name",
    revision: SHA2,
  });
  assert.deepEqual(await resolveModel("org/name@bbbbbbb", { env }), {
    folder: v2,
    modelId: "org/name",
    revision: SHA2,
  });
  assert.equal((await resolveModel("org/name@abcdef0", { env })).folder, s3);
  // 6 digits are too few for a short sha
  await assert.rejects(resolveModel("org/name@abcdef", { env }), (e) => oneLine(e, /no .*refs\/abcdef or snapshot/));
  await assert.rejects(resolveModel("org/name@abcdef02", { env }), /refs\/abcdef02 or snapshot/);
  await assert.rejects(resolveRepoFile({ repo: "org/name", revision: "abcdef", path: "config.json", env }), UserError);
  mkdirSync(join(cache, "models--org--name", "snapshots", "abcdef0" + "3".repeat(33)));
  await assert.rejects(resolveModel("org/name@abcdef0", { env }), (e) =>
    oneLine(
      e,
      /^org\/name@abcdef0: short sha abcdef0 matches 2 snapshots \(abcdef01.*, abcdef03.*\): give more digits$/,
    ),
  );
  await assert.rejects(resolveModel("org/name@v2", { env, revision: "main" }), (e) =>
    oneLine(e, /two revisions given/),
  );
});

test("a refs file that holds no sha is an error naming it", async () => {
  const cache = tmp();
  addToCache(cache, "org/name", SHA1, [], MODEL);
  mkdirSync(join(cache, "models--org--name", "refs"));
  writeFileSync(join(cache, "models--org--name", "refs", "main"), "<html>proxy error</html>");
  await assert.rejects(resolveModel("org/name", { env: { HF_HUB_CACHE: cache } }), (e) =>
    oneLine(e, /refs\/main: holds "<html>proxy error<\/html>", not a commit sha$/),
  );
});

test("files of a Python-written cache are found by resolveRepoFile, nested ones and data sets too", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  const files = { "data/train-00000-of-00001.parquet": "PAR1...", "README.md": "# x" };
  const snap = addToCache(cache, "org/data", SHA1, ["main"], files, "datasets", [".parquet"]);
  const got = await resolveRepoFile({
    repoType: "dataset",
    repo: "org/data",
    path: "data/train-00000-of-00001.parquet",
    env,
  });
  assert.equal(got, join(snap, "data", "train-00000-of-00001.parquet"));
  assert.equal(readFileSync(got, "utf8"), "PAR1...");
  const gguf = addToCache(cache, "org/gguf", SHA2, ["main"], { "m-Q8_0.gguf": "GGUF" }, "models", [".gguf"]);
  assert.equal(
    await resolveRepoFile({ repo: "org/gguf", path: "m-Q8_0.gguf", env, fetch: noNetwork }),
    join(gguf, "m-Q8_0.gguf"),
  );
  await assert.rejects(
    resolveRepoFile({ repoType: "dataset", repo: "org/data", path: "data/test.parquet", env }),
    (e) =>
      oneLine(
        e,
        /^datasets\/org\/data\/data\/test\.parquet: not in the Hugging Face cache: no .*test\.parquet\./,
        /`huggingface-cli download org\/data data\/test\.parquet --repo-type dataset`/,
      ),
  );
});

test("not found: a UserError naming where it looked and how to download", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  await assert.rejects(resolveModel("org/missing", { env }), (e) => {
    oneLine(
      e,
      /^org\/missing: not a folder, and not in the Hugging Face cache: /,
      /--download/,
      /huggingface-cli download org\/missing`/,
    );
    assert.ok((e as Error).message.includes(join(cache, "models--org--missing", "refs", "main")));
    return true;
  });
  await assert.rejects(resolveModel("org/missing@v1", { env }), /huggingface-cli download org\/missing --revision v1`/);
  await assert.rejects(resolveModel("./no/such/dir", { env }), (e) => oneLine(e, /no such folder/));
  await assert.rejects(resolveModel("/no/such/dir", { env }), /no such folder/);
  assert.deepEqual(readdirSync(cache), [], "nothing created");
});

test("HF_HUB_OFFLINE: 1/true/yes/on in any case block downloads with a helpful error; nothing else does", async () => {
  for (const v of ["1", "true", "TRUE", "True", "yes", "YES", "on", "On"])
    assert.equal(isOffline({ HF_HUB_OFFLINE: v }), true, v);
  for (const v of ["0", "false", "no", "off", "", " 1", "1 ", "2", "y", "enabled"]) {
    assert.equal(isOffline({ HF_HUB_OFFLINE: v }), false, JSON.stringify(v));
  }
  assert.equal(isOffline({ TRANSFORMERS_OFFLINE: "1" }), true); // as Python: HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE
  assert.equal(isOffline({ HF_HUB_OFFLINE: "", TRANSFORMERS_OFFLINE: "1" }), true);
  assert.equal(isOffline({ HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" }), false);

  let calls = 0;
  const down = (async () => {
    calls++;
    throw new TypeError("fetch failed", {
      cause: { code: "ECONNREFUSED", message: "connect ECONNREFUSED 1.2.3.4:443" },
    });
  }) as typeof fetch;
  const base = { HF_HUB_CACHE: tmp(), HF_HOME: tmp() };
  await assert.rejects(
    resolveModel("org/name", { env: { ...base, HF_HUB_OFFLINE: "On" }, download: true, fetch: down }),
    (e) =>
      oneLine(
        e,
        /HF_HUB_OFFLINE is set, so nothing was downloaded: unset it and use --download, or run `huggingface-cli/,
      ),
  );
  await assert.rejects(resolveModel("org/name", { env: base, offline: true, download: true, fetch: down }), (e) =>
    oneLine(e, /Offline mode was asked for \(--offline\), so nothing was downloaded: drop --offline and use --downlo/),
  );
  assert.equal(calls, 0);
  await assert.rejects(
    resolveModel("org/name", { env: { ...base, HF_HUB_OFFLINE: "off" }, download: true, fetch: down, retries: 0 }),
    (e) =>
      oneLine(
        e,
        /^org\/name: could not reach huggingface\.co \(connect ECONNREFUSED 1\.2\.3\.4:443\) \(HF_ENDPOINT is/,
      ),
  );
  assert.equal(calls, 1);
  await assert.rejects(
    resolveModel("org/name", {
      env: { ...base, HF_HUB_OFFLINE: "1" },
      offline: false,
      download: true,
      fetch: down,
      retries: 1,
      backoffMs: 1,
    }),
    /could not reach/,
  );
  assert.equal(calls, 3, "offline: false wins over the environment; one retry");
});

test("token: HF_TOKEN › HUGGING_FACE_HUB_TOKEN › HF_TOKEN_PATH › $HF_HOME/token; doctorInfo never shows it", () => {
  const home = tmp();
  writeFileSync(join(home, "token"), "hf_fromfile\n");
  const path = join(tmp(), "tok");
  writeFileSync(path, "hf_frompath");
  assert.deepEqual(hubToken({ HF_HOME: home, HF_TOKEN: "hf_a", HUGGING_FACE_HUB_TOKEN: "hf_b" }), {
    token: "hf_a",
    source: "HF_TOKEN",
  });
  assert.deepEqual(hubToken({ HF_HOME: home, HUGGING_FACE_HUB_TOKEN: "hf_b" }), {
    token: "hf_b",
    source: "HUGGING_FACE_HUB_TOKEN",
  });
  assert.deepEqual(hubToken({ HF_HOME: home, HF_TOKEN: "  " }), { token: "hf_fromfile", source: join(home, "token") });
  assert.deepEqual(hubToken({ HF_HOME: home, HF_TOKEN_PATH: path }), { token: "hf_frompath", source: path });
  assert.equal(hubToken({ HF_HOME: tmp() }), undefined);

  const info = doctorInfo({
    HF_HOME: home,
    HF_TOKEN: "hf_secret_value",
    HF_HUB_OFFLINE: "yes",
    HF_ENDPOINT: "https://mirror.example/",
  });
  assert.deepEqual(info, {
    cacheDir: join(home, "hub"),
    tokenPresent: true,
    tokenSource: "HF_TOKEN",
    offline: true,
    endpoint: "https://mirror.example",
  });
  assert.ok(!JSON.stringify(doctorInfo({ HF_HOME: home })).includes("hf_fromfile"));
  assert.deepEqual(doctorInfo({ HF_HOME: tmp() }).tokenPresent, false);
  const broken = doctorInfo({ HF_HOME: home, HF_TOKEN_PATH: home, HF_ENDPOINT: "ftp://x" }); // a folder as token file
  assert.equal(broken.tokenPresent, false);
  assert.match(broken.tokenProblem!, /cannot read the Hugging Face token file \(EISDIR\)$/);
  assert.match(broken.endpointProblem!, /^HF_ENDPOINT: "ftp:\/\/x" is not an http\(s\) URL$/);
});

test("a bad HF_ENDPOINT or timeout option is a UserError before any request", async () => {
  const env = { HF_HUB_CACHE: tmp(), HF_HOME: tmp() };
  await assert.rejects(
    resolveModel("org/name", { env: { ...env, HF_ENDPOINT: "not a url" }, download: true, fetch: noNetwork }),
    (e) => oneLine(e, /^HF_ENDPOINT: "not a url" is not a URL/),
  );
  await assert.rejects(
    resolveModel("org/name", { env, download: true, fetch: noNetwork, timeouts: { connectMs: -1 } }),
    (e) => oneLine(e, /connectMs must be a non-negative number, got -1/),
  );
});

test("modelIdFromConfig reads _name_or_path only when it looks like org/name", () => {
  const write = (v: unknown) => {
    const d = tmp();
    writeFileSync(join(d, "config.json"), JSON.stringify({ _name_or_path: v }));
    return d;
  };
  assert.equal(modelIdFromConfig(write("meta-llama/Llama-2-7b-hf")), "meta-llama/Llama-2-7b-hf");
  assert.equal(modelIdFromConfig(write("/home/me/models/llama")), undefined);
  assert.equal(modelIdFromConfig(write("./llama")), undefined);
  assert.equal(modelIdFromConfig(write("../llama")), undefined);
  assert.equal(modelIdFromConfig(write(7)), undefined);
  assert.equal(modelIdFromConfig(tmp()), undefined);
});

test("a GGUF file resolves to itself; a folder of one GGUF model (or its first split) to that file; two are refused", async () => {
  const dir = tmp();
  const gguf = join(dir, "model.Q4_K_M.gguf");
  writeFileSync(gguf, "GGUF\x03\x00\x00\x00");
  assert.deepEqual(await resolveModel(gguf, { env: {} }), { folder: gguf });
  const other = join(dir, "notes.txt");
  writeFileSync(other, "GGU");
  await assert.rejects(resolveModel(other, { env: {} }), (e) =>
    oneLine(
      e,
      /^.*notes\.txt: expected a model folder \(config\.json and \*\.safetensors\) or a GGUF file, got another kind of file$/,
    ),
  );
  const text = join(dir, "fake.gguf");
  writeFileSync(text, "not a gguf at all");
  await assert.rejects(resolveModel(text, { env: {} }), /got another kind of file/);
  // A folder holding only the one model file.
  const one = tmp();
  writeFileSync(join(one, "m.gguf"), "GGUF");
  writeFileSync(join(one, "README.md"), "hi");
  assert.deepEqual(await resolveModel(one, { env: {} }), { folder: join(one, "m.gguf") });
  // A split set counts as one model: its first part.
  const split = tmp();
  for (const part of ["m-00002-of-00003.gguf", "m-00001-of-00003.GGUF", "m-00003-of-00003.gguf"])
    writeFileSync(join(split, part), "GGUF");
  assert.deepEqual(await resolveModel(split, { env: {} }), { folder: join(split, "m-00001-of-00003.GGUF") });
  const two = tmp();
  writeFileSync(join(two, "b.gguf"), "GGUF");
  writeFileSync(join(two, "a.gguf"), "GGUF");
  await assert.rejects(resolveModel(two, { env: {} }), (e) =>
    oneLine(e, new RegExp(`^${two}: holds 2 GGUF models \\(a\\.gguf, b\\.gguf\\): name the file$`)),
  );
  // With config.json it is a checkpoint folder, whatever else it holds.
  writeFileSync(join(two, "config.json"), "{}");
  assert.deepEqual(await resolveModel(two, { env: {} }), { folder: two });
});

test("--download on a cached snapshot asks the Hub only when the snapshot is incomplete", async () => {
  const asked: string[] = [];
  const recording = (async (url: string | URL) => {
    asked.push(String(url));
    throw new Error("offline in this test");
  }) as typeof fetch;
  const attempt = async (files: Record<string, string>) => {
    const cache = tmp();
    const snap = addToCache(cache, "org/name", SHA1, ["main"], files);
    asked.length = 0;
    const env = { HF_HUB_CACHE: cache, HF_HOME: tmp(), HF_ENDPOINT: "http://127.0.0.1:9" };
    try {
      const r = await resolveModel("org/name", { env, download: true, fetch: recording, retries: 0 });
      assert.equal(r.folder, snap);
    } catch {
      // the Hub was asked and could not answer
    }
    return asked.length > 0;
  };
  const index = (map: unknown) => JSON.stringify({ weight_map: map });
  assert.equal(await attempt(MODEL), false, "config.json and weights: complete");
  assert.equal(
    await attempt({
      "config.json": "{}",
      "model.safetensors.index.json": index({ a: "s1.safetensors" }),
      "s1.safetensors": "w",
    }),
    false,
    "every shard the index names is there",
  );
  assert.equal(
    await attempt({
      "config.json": "{}",
      "model.safetensors.index.json": index({ a: "s1.safetensors", b: "s2.safetensors" }),
      "s1.safetensors": "w",
    }),
    true,
    "a shard missing",
  );
  assert.equal(
    await attempt({ "config.json": "{}", "model.safetensors.index.json": "{oops", "s1.safetensors": "w" }),
    true,
  );
  assert.equal(
    await attempt({ "config.json": "{}", "model.safetensors.index.json": index({}), "s1.safetensors": "w" }),
    true,
  );
  assert.equal(await attempt({ "config.json": "{}", "tokenizer.json": "{}" }), true, "no weights");
});

test("only .../models--org--name/snapshots/<sha> names a model: other folders in or like a cache do not", async () => {
  const cache = tmp();
  const snap = addToCache(cache, "org/name", SHA1, [], MODEL);
  const repo = join(snap, "..", "..");
  assert.deepEqual(await resolveModel(join(repo, "snapshots"), { env: {} }), { folder: join(repo, "snapshots") });
  const other = join(repo, "other", SHA1);
  mkdirSync(other, { recursive: true });
  assert.deepEqual(await resolveModel(other, { env: {} }), { folder: other });
  const lookalike = join(tmp(), "org--name", "snapshots", SHA1);
  mkdirSync(lookalike, { recursive: true });
  assert.deepEqual(await resolveModel(lookalike, { env: {} }), { folder: lookalike });
});

test("a cached snapshot: without config.json it is not there; offline, --download takes what is cached", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  const noConfig = addToCache(cache, "org/noconfig", SHA1, ["main"], { "model.safetensors": "w" });
  await assert.rejects(resolveModel("org/noconfig", { env }), (e) =>
    oneLine(
      e,
      new RegExp(
        `${noConfig.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(revision main = ${SHA1}\\) has no config\\.json`,
      ),
    ),
  );
  // An incomplete snapshot (its weights' blob deleted) is still taken offline, and without --download.
  const partial = addToCache(cache, "org/partial", SHA2, ["main"], MODEL);
  rmSync(realpathSync(join(partial, "model.safetensors")));
  for (const o of [
    { env: { ...env, HF_HUB_OFFLINE: "1" }, download: true },
    { env },
    { env, offline: true, download: true },
  ])
    assert.equal((await resolveModel("org/partial", { ...o, fetch: noNetwork })).folder, partial);
  // Online with --download, the dangling weights make it incomplete: the Hub is asked.
  let asked = 0;
  const counting = (async () => {
    asked++;
    throw new Error("no network here");
  }) as typeof fetch;
  await assert.rejects(
    resolveModel("org/partial", {
      env: { ...env, HF_ENDPOINT: "http://127.0.0.1:9" },
      download: true,
      fetch: counting,
      retries: 0,
    }),
  );
  assert.ok(asked > 0);
});
