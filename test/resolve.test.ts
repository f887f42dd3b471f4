// Resolving folders and model ids against fake Hugging Face caches, and downloading with a fake fetch (all offline).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { modelIdFromConfig, resolveModel } from "../src/checkpoint/resolve.js";
import { UserError } from "../src/errors.js";

const SHA1 = "a".repeat(40);
const SHA2 = "b".repeat(40);

const made: string[] = [];
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "sw-resolve-"));
  made.push(d);
  return d;
}

/** A cache entry laid out as Python writes it: blobs, snapshot symlinks, refs. */
function addToCache(cache: string, id: string, sha: string, refs: string[], files: Record<string, string>): string {
  const repo = join(cache, `models--${id.replace("/", "--")}`);
  const snap = join(repo, "snapshots", sha);
  mkdirSync(snap, { recursive: true });
  mkdirSync(join(repo, "blobs"), { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const h = createHash("sha256").update(text).digest("hex");
    writeFileSync(join(repo, "blobs", h), text);
    symlinkSync(`../../blobs/${h}`, join(snap, name));
  }
  for (const r of refs) {
    mkdirSync(join(repo, "refs"), { recursive: true });
    writeFileSync(join(repo, "refs", r), sha);
  }
  return snap;
}

const MODEL = { "config.json": '{"model_type":"llama"}', "model.safetensors": "weights" };

test("an existing folder resolves to itself, without a model id", async () => {
  const dir = tmp();
  assert.deepEqual(await resolveModel(dir, { env: {} }), { folder: dir });
});

test("a folder inside an HF cache gives the model id and revision", async () => {
  const cache = tmp();
  const snap = addToCache(cache, "org/some--name", SHA1, [], MODEL);
  const r = await resolveModel(snap, { env: {} });
  assert.deepEqual(r, { folder: snap, modelId: "org/some/name", revision: SHA1 }); // "--" maps back to "/" as Python does
  const snap2 = addToCache(cache, "Org/Model-1.5B", SHA2, [], MODEL);
  assert.equal((await resolveModel(snap2 + "/", { env: {} })).modelId, "Org/Model-1.5B");
});

test("org/name resolves through refs/main; HF_HUB_CACHE wins over HF_HOME/hub", async () => {
  const home = tmp();
  const other = tmp();
  const inHome = addToCache(join(home, "hub"), "org/name", SHA1, ["main"], MODEL);
  const inOther = addToCache(other, "org/name", SHA2, ["main"], MODEL);
  assert.deepEqual(await resolveModel("org/name", { env: { HF_HOME: home } }), { folder: inHome, modelId: "org/name", revision: SHA1 });
  assert.equal((await resolveModel("org/name", { env: { HF_HOME: home, HF_HUB_CACHE: other } })).folder, inOther);
});

test("@rev reads refs/<rev>; a 40-hex rev is used directly", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  addToCache(cache, "org/name", SHA1, ["main"], MODEL);
  const v2 = addToCache(cache, "org/name", SHA2, ["v2"], MODEL);
  assert.equal((await resolveModel("org/name@v2", { env })).folder, v2);
  assert.equal((await resolveModel("org/name", { env })).revision, SHA1);
  const bySha = await resolveModel(`org/name@${SHA2}`, { env });
  assert.deepEqual(bySha, { folder: v2, modelId: "org/name", revision: SHA2 });
});

test("not found: a UserError naming where it looked and how to download", async () => {
  const cache = tmp();
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp() };
  await assert.rejects(resolveModel("org/missing", { env }), (e: Error) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /^org\/missing: /);
    assert.ok(e.message.includes(join(cache, "models--org--missing", "refs", "main")), e.message);
    assert.match(e.message, /--download/);
    assert.match(e.message, /huggingface-cli download org\/missing`/);
    return true;
  });
  await assert.rejects(resolveModel("org/missing@v1", { env }), /huggingface-cli download org\/missing --revision v1/);
  await assert.rejects(resolveModel("./no/such/dir", { env }), (e: Error) => e instanceof UserError && /no such folder/.test(e.message));
  await assert.rejects(resolveModel("/no/such/dir", { env }), /no such folder/);
});

test("HF_HUB_OFFLINE=1 blocks downloading", async () => {
  let calls = 0;
  const fakeFetch = (async () => {
    calls++;
    return new Response("{}");
  }) as typeof fetch;
  const env = { HF_HUB_CACHE: tmp(), HF_HOME: tmp(), HF_HUB_OFFLINE: "1" };
  await assert.rejects(resolveModel("org/name", { env, download: true, fetch: fakeFetch }), /HF_HUB_OFFLINE/);
  assert.equal(calls, 0);
});

/** A fake Hub: the revision API and resolve URLs for a repo with more files than we want. */
function fakeHub(endpoint: string, id: string, sha: string, files: Record<string, string>) {
  const fetched: string[] = [];
  const auth: (string | null)[] = [];
  const fakeFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    fetched.push(url);
    auth.push(new Headers(init?.headers).get("authorization"));
    if (url === `${endpoint}/api/models/${id}/revision/main`) {
      return Response.json({ id, sha, siblings: Object.keys(files).map((rfilename) => ({ rfilename })) });
    }
    const prefix = `${endpoint}/${id}/resolve/${sha}/`;
    const name = url.startsWith(prefix) ? decodeURIComponent(url.slice(prefix.length)) : undefined;
    if (name !== undefined && name in files) {
      return new Response(files[name], { headers: { "content-length": String(Buffer.byteLength(files[name])) } });
    }
    return new Response("not found", { status: 404 });
  }) as typeof fetch;
  return { fakeFetch, fetched, auth };
}

test("download fetches only the needed files into Python's cache layout, then resolves offline", async () => {
  const cache = tmp();
  const endpoint = "http://hub.test";
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp(), HF_ENDPOINT: endpoint + "/", HF_TOKEN: "hf_secret" };
  const index = JSON.stringify({ weight_map: { a: "model-00001-of-00002.safetensors", b: "model-00002-of-00002.safetensors" } });
  const files: Record<string, string> = {
    "config.json": '{"_name_or_path":"org/name"}',
    "generation_config.json": "{}",
    "tokenizer.json": "{}", // same content as generation_config.json: one blob
    "tokenizer_config.json": '{"x":1}',
    "special_tokens_map.json": '{"y":2}',
    "model.safetensors.index.json": index,
    "model-00001-of-00002.safetensors": "shard one",
    "model-00002-of-00002.safetensors": "shard two",
    "consolidated.safetensors": "not in the index",
    "pytorch_model.bin": "bin",
    "model.gguf": "gguf",
    "onnx/model.onnx": "onnx",
    "original/consolidated.00.pth": "pth",
    "README.md": "readme",
    ".gitattributes": "",
  };
  const { fakeFetch, fetched, auth } = fakeHub(endpoint, "org/name", SHA1, files);
  const progress: [string, number, number][] = [];
  const r = await resolveModel("org/name", { env, download: true, fetch: fakeFetch, onProgress: (f, d, t) => progress.push([f, d, t]) });
  const repo = join(cache, "models--org--name");
  const snap = join(repo, "snapshots", SHA1);
  assert.deepEqual(r, { folder: snap, modelId: "org/name", revision: SHA1 });

  const wanted = Object.keys(files).filter((f) => /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map)\.json$|^model.*safetensors/.test(f));
  assert.deepEqual(fetched.slice(1).map((u) => u.slice(`${endpoint}/org/name/resolve/${SHA1}/`.length)).sort(), wanted.sort());
  assert.equal(fetched[0], `${endpoint}/api/models/org/name/revision/main`);
  assert.ok(auth.every((a) => a === "Bearer hf_secret"));

  assert.equal(readFileSync(join(repo, "refs", "main"), "utf8"), SHA1);
  assert.deepEqual(readdirSync(snap).sort(), wanted.sort());
  for (const f of wanted) {
    assert.ok(lstatSync(join(snap, f)).isSymbolicLink(), f);
    const h = createHash("sha256").update(files[f]).digest("hex");
    assert.equal(readlinkSync(join(snap, f)), `../../blobs/${h}`);
    assert.equal(readFileSync(join(snap, f), "utf8"), files[f]);
  }
  assert.equal(readdirSync(join(repo, "blobs")).length, wanted.length - 1); // no leftovers, shared blob stored once
  assert.ok(progress.some(([f, d, t]) => f === "model-00002-of-00002.safetensors" && d === 9 && t === 9));
  assert.equal(modelIdFromConfig(r.folder), "org/name");

  // Offline now: no fetch needed, and a second download call finds it complete.
  const offline = await resolveModel("org/name", { env: { ...env, HF_HUB_OFFLINE: "1" }, download: true });
  assert.deepEqual(offline, r);
  const again = await resolveModel("org/name", { env, download: true, fetch: fakeFetch });
  assert.deepEqual(again, r);
  assert.equal(fetched.length, wanted.length + 1);
});

test("download of an unsharded repo takes model.safetensors; Hub errors become UserErrors", async () => {
  const cache = tmp();
  const endpoint = "http://hub.test";
  const env = { HF_HUB_CACHE: cache, HF_HOME: tmp(), HF_ENDPOINT: endpoint };
  const { fakeFetch, fetched, auth } = fakeHub(endpoint, "org/small", SHA2, {
    "config.json": "{}",
    "model.safetensors": "w",
    "model.fp16.safetensors": "w16",
    "pytorch_model.bin": "bin",
  });
  const r = await resolveModel("org/small", { env, download: true, fetch: fakeFetch });
  assert.equal(r.revision, SHA2);
  assert.deepEqual(readdirSync(r.folder).sort(), ["config.json", "model.safetensors"]);
  assert.equal(fetched.length, 3);
  assert.ok(auth.every((a) => a === null));
  await assert.rejects(
    resolveModel("org/absent", { env, download: true, fetch: fakeFetch }),
    (e: Error) => e instanceof UserError && /HTTP 404/.test(e.message) && /no such model/.test(e.message),
  );
  const down = (async () => {
    throw new TypeError("fetch failed");
  }) as typeof fetch;
  await assert.rejects(resolveModel("org/other", { env, download: true, fetch: down }), /could not reach http:\/\/hub\.test/);
  assert.ok(!existsSync(join(cache, "models--org--absent", "refs")));
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
