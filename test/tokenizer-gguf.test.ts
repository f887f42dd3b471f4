// GGUF tokenizer metadata ⇄ tokenizer.json. References: llama.cpp's own ids (the bytes-llama-6m fixture's
// llamaCppTokenization, and the ids llama.cpp — node-llama-cpp 3.21.1, the fixtures' release — gave for the
// synthetic vocabularies below, written to GGUF files), and the original tokenizer.json for round trips.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadTokenizer, type TextTokenizer } from "../src/tokenizer/tokenizer.js";
import { byteLevelChar, ggufTokenizerJson, tokenizerFromGguf } from "../src/tokenizer/gguf-vocab.js";
import { ggufTokenizerMetadata, type GgufMetadataEntry } from "../src/tokenizer/gguf-vocab-write.js";
import { chatTemplateOf } from "../src/tokenizer/chat.js";
import { CheckpointError } from "../src/errors.js";
import { fixturePath, repoRoot, skipWithoutFixtures } from "./fixtures.js";

const mistralDir = join(repoRoot, "node_modules", "@lenml", "tokenizer-llama2", "models");
type Metadata = Record<string, unknown>;

const ids = (s: string): number[] => (s === "" ? [] : s.split(" ").map(Number));
const readJson = (file: string) => JSON.parse(readFileSync(file, "utf8"));
const asMetadata = (entries: GgufMetadataEntry[]): Metadata => Object.fromEntries(entries.map((e) => [e.key, e.value]));

/** Token ids without the BOS llama.cpp adds when asked to (its ids below were taken without add_special). */
function llamaIds(tok: TextTokenizer, text: string, addBos: boolean): number[] {
  const out = tok.encode(text);
  return addBos ? out.slice(1) : out;
}

/** A CheckpointError with this code, naming `file`, whose message has every fragment. */
function fault(code: string, file: string, ...fragments: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `not a CheckpointError: ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, file);
    for (const f of fragments) assert.ok(e.message.includes(f), `"${f}" not in: ${e.message}`);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  };
}

function fixtureGguf() {
  const expected = readJson(fixturePath("gguf", "bytes-llama-6m.Q8_0.expected.json"));
  const metadata = expected.gguf.metadata as Record<string, { type: string; value: unknown }>;
  const md: Metadata = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, v.value]));
  return { md, metadata, samples: expected.llamaCppTokenization.samples as { text: string; ids: number[] }[] };
}

test("bytes-llama-6m GGUF: llama.cpp's ids for the fixture's texts", { skip: skipWithoutFixtures }, () => {
  const { md, samples } = fixtureGguf();
  const file = fixturePath("gguf", "bytes-llama-6m.Q8_0.gguf");
  // llama.cpp's were taken with special tokens as plain text ("<s>" spelled out in bytes).
  const plain = tokenizerFromGguf(md, file, { parseSpecial: false });
  for (const s of samples) {
    assert.deepEqual(plain.encode(s.text), s.ids, JSON.stringify(s.text));
    assert.equal(plain.decode(plain.encode(s.text)), s.text);
  }
  // Parsing special tokens (the default), "<s>" in the text is the control token 256, as llama.cpp gives too.
  const parsed = tokenizerFromGguf(md, file);
  const text = samples[1].text;
  const at = Buffer.from(text.slice(0, text.indexOf("<s>"))).length;
  const expected = [...samples[1].ids.slice(0, at), 256, ...samples[1].ids.slice(at + 3)];
  assert.deepEqual(parsed.encode(text), expected);
  assert.deepEqual(parsed.encode(samples[0].text), samples[0].ids);
  assert.equal(parsed.tokenText(256), "<s>");
});

test("bytes-llama-6m GGUF: the same ids as its tokenizer.json on heldout.txt", { skip: skipWithoutFixtures }, () => {
  const { md } = fixtureGguf();
  const heldout = readFileSync(fixturePath("bytes-llama-6m", "heldout.txt"), "utf8");
  const fromJson = loadTokenizer(fixturePath("bytes-llama-6m"))!;
  const fromGguf = tokenizerFromGguf(md, "bytes-llama-6m.Q8_0.gguf");
  const expected = fromJson.encode(heldout);
  assert.equal(expected[0], 256, "tokenizer.json adds <s>");
  // The GGUF has add_bos_token false (so llama.cpp adds no BOS): the same ids without it.
  assert.deepEqual(fromGguf.encode(heldout), expected.slice(1));
  assert.equal(fromGguf.decode(fromGguf.encode(heldout)), heldout);
});

test(
  "bytes-llama-6m tokenizer.json → GGUF metadata: the fixture GGUF's tokenizer keys",
  { skip: skipWithoutFixtures },
  () => {
    const { metadata } = fixtureGguf();
    const dir = fixturePath("bytes-llama-6m");
    const json = readJson(join(dir, "tokenizer.json"));
    const entries = ggufTokenizerMetadata(
      json,
      readJson(join(dir, "tokenizer_config.json")),
      join(dir, "tokenizer.json"),
    );
    const typeNames: Record<string, string> = { string: "STRING", u32: "UINT32", bool: "BOOL" };
    for (const e of entries) {
      const ref = metadata[e.key];
      assert.ok(ref, `${e.key} is not in the fixture GGUF`);
      if (e.key === "tokenizer.ggml.merges") {
        // llama.cpp's converter needs a merges array and the fixture generator wrote one unreachable stand-in;
        // there are none to write, and llama.cpp loads the empty array.
        assert.deepEqual(ref.value, ["<t0> <t1>"]);
        assert.deepEqual(e.value, []);
      } else if (e.key === "tokenizer.ggml.add_bos_token") {
        // The fixture generator wrote false (its tests pass ids themselves); the tokenizer.json adds <s>.
        assert.equal(ref.value, false);
        assert.equal(e.value, true);
      } else {
        assert.deepEqual(e.value, ref.value, e.key);
        if (e.type.endsWith("[]")) assert.equal(ref.type, `ARRAY[${e.type === "string[]" ? "STRING" : "INT32"}]`);
        else assert.equal(ref.type, typeNames[e.type], e.key);
      }
    }
    const written = new Set(entries.map((e) => e.key));
    assert.deepEqual(
      Object.keys(metadata).filter((k) => k.startsWith("tokenizer.") && !written.has(k)),
      [],
    );
    // And back: the tokenizer.json's own ids, BOS now included.
    const heldout = readFileSync(join(dir, "heldout.txt"), "utf8").slice(0, 2000);
    assert.deepEqual(
      tokenizerFromGguf(asMetadata(entries), "x.gguf").encode(heldout),
      loadTokenizer(dir)!.encode(heldout),
    );
  },
);

test("Mistral-7B vocabulary → SentencePiece GGUF metadata → back: the original tokenizer's ids", () => {
  const json = readJson(join(mistralDir, "tokenizer.json"));
  const config = readJson(join(mistralDir, "tokenizer_config.json"));
  const entries = ggufTokenizerMetadata(json, config, join(mistralDir, "tokenizer.json"));
  const md = asMetadata(entries);
  assert.equal(md["tokenizer.ggml.model"], "llama");
  assert.equal(md["tokenizer.ggml.pre"], "default");
  const tokens = md["tokenizer.ggml.tokens"] as string[];
  const types = md["tokenizer.ggml.token_type"] as number[];
  const scores = md["tokenizer.ggml.scores"] as number[];
  assert.equal(tokens.length, 32000);
  assert.deepEqual(types.slice(0, 4), [3, 3, 3, 6]); // <unk> <s> </s> (special added tokens), <0x00>
  assert.equal(types[13], 6);
  assert.equal(scores[tokens.indexOf("\u2581t")], -1, "the first merge of tokenizer.json, '▁ t'");
  assert.equal(scores[22557], -(json.model.merges.indexOf("\u2581H ello") + 1), "▁Hello: its first merge's rank");
  assert.deepEqual([md["tokenizer.ggml.bos_token_id"], md["tokenizer.ggml.eos_token_id"]], [1, 2]);
  assert.equal(md["tokenizer.ggml.unknown_token_id"], 0);
  assert.equal(md["tokenizer.ggml.add_bos_token"], true);
  assert.equal(md["tokenizer.ggml.add_eos_token"], false);
  assert.ok(!("tokenizer.ggml.merges" in md) && !("tokenizer.ggml.add_space_prefix" in md));

  const original = loadTokenizer(mistralDir)!;
  const back = tokenizerFromGguf(md, "mistral.gguf");
  assert.deepEqual(back.encode("Hello world"), [1, 22557, 1526]);
  assert.deepEqual(back.encode("\u{1f917}"), [1, 28705, 243, 162, 167, 154]);
  const texts = [
    "Hello world",
    " leading space",
    "  two leading spaces",
    "trailing  ",
    "digits 1234567890 3.14 1,000",
    "emoji \u{1f600}\u{1f999}\u{1f44d}\u{1f3fd} and \u{1f1eb}\u{1f1f7}",
    "na\u00efve caf\u00e9 \u2014 \u6771\u4eac",
    "tabs\tand\nnewlines\r\n",
    "<s>inside</s> text <unk>",
    "      many     spaces    ",
    "\u00dcn\u00efc\u00f6d\u00e9 \u00df",
    "x",
    "",
    " ",
    "\n",
    "don't WE'LL they're",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0939\u093f\u0928\u094d\u0926\u0940",
  ];
  for (const t of texts) {
    assert.deepEqual(back.encode(t), original.encode(t), JSON.stringify(t));
    assert.equal(back.decode(back.encode(t)), original.decode(original.encode(t)), JSON.stringify(t));
  }
});

// A byte-level BPE vocabulary: the 256 bytes, tokens made by merges, a token no merge makes, special tokens.
function bpeMetadata(pre: string): Metadata {
  const tokens = Array.from({ length: 256 }, (_, b) => byteLevelChar(b));
  const merges = [
    "o W|y '|' S|_ i|a \u00cc|a\u00cc \u0123|\u0120 t|h e|\u0120t he|i n|\u0120 a|n d|\u0120a nd|\u0120 w|o r",
    "\u0120w or|l d|\u0120wor ld|H e|l l|He ll|Hell o|' s|r e|' re|\u0120 c|a t|\u0120c at|\u0120cat s|1 2|3 4",
    "12 3|34 5|\u0120 1|\u0120 \u0120|\u0120\u0120 \u0120|\u010a \u010a|\u0109 \u0109|e r|\u0120 h|\u0120h er",
    "\u00c3 \u00a9|c af|caf \u00c3\u00a9|\u0120 caf|\u0120caf \u00c3\u00a9|A N|AN D|\u0120 AN|\u0120AN D",
  ]
    .join("|")
    .split("|");
  for (const m of merges) if (!tokens.includes(m.replace(" ", ""))) tokens.push(m.replace(" ", ""));
  const types = tokens.map(() => 1);
  // "</s>" is NORMAL here; llama.cpp makes it a control token by its text.
  for (const [t, type] of [
    ["\u0120zebra", 1],
    ["<|begin_of_text|>", 3],
    ["<|eot_id|>", 3],
    ["<user>", 4],
    ["</s>", 1],
  ]) {
    tokens.push(t as string);
    types.push(type as number);
  }
  return {
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.pre": pre,
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.token_type": types,
    "tokenizer.ggml.merges": merges,
    "tokenizer.ggml.bos_token_id": tokens.indexOf("<|begin_of_text|>"),
    "tokenizer.ggml.eos_token_id": tokens.indexOf("<|eot_id|>"),
  };
}
const BPE_TEXTS = [
  "Hello world, the 12345 cats' AND they're",
  "  spaces\n\n\ttabs   end  ",
  "na\u00efve caf\u00e9 \u2014 \u6771 \u{1f999} \u00c9\u01c5a",
  "x1234567y 3.14 'S 'll's",
  " zebra zebra",
  "a\u0301 \u03b1\u0391 \ufb01\u0663 \u00b2",
  "HelloWorld they're my_id 'S",
  "a 1 b 9",
  "a<|eot_id|>b<user>c</s>d",
];

// llama.cpp's ids for BPE_TEXTS with each pre-tokenizer (the last text with special tokens as text; `special`:
// parsed, where every other text gives the same ids). addBos: llama.cpp's add_bos for the file (no such key).
const LLAMA_CPP_BPE: Record<string, { addBos: boolean; ids: string[]; special: string }> = {
  default: {
    addBos: false,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 32 303 264 121 39 279",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 39 115",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 39 279 32 109 121 95 105 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 95 105 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  "llama-bpe": {
    addBos: true,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 305 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 301 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "306 306",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  dbrx: {
    addBos: false,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  qwen2: {
    addBos: false,
    ids: [
      "277 273 44 264 32 49 50 51 52 53 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 49 50 51 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  qwen35: {
    addBos: false,
    ids: [
      "277 273 44 264 32 49 50 51 52 53 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 49 50 51 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "261 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  smollm: {
    addBos: false,
    ids: [
      "277 273 44 264 32 49 50 51 52 53 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 49 50 51 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 95 105 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 95 105 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  "gpt-2": {
    addBos: false,
    ids: [
      "277 273 44 264 32 285 288 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 285 288 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 95 105 100 32 39 83",
      "97 289 32 98 32 57",
      "97 60 124 101 111 116 95 105 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  falcon: {
    addBos: false,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 32 303 264 121 39 279",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 39 115",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 39 279 32 109 121 95 105 100 32 39 83",
      "97 289 32 98 32 57",
      "97 60 124 101 111 116 95 105 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  tekken: {
    addBos: true,
    ids: [
      "277 273 44 264 32 49 50 51 52 53 284 39 305 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 301 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 49 50 51 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "306 306",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "277 87 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  "gpt-4o": {
    addBos: false,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 32 303 264 257 279",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "277 87 270 272 264 257 279 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
  glm4: {
    addBos: false,
    ids: [
      "277 273 44 264 32 287 52 53 284 39 32 303 264 121 280",
      "32 32 115 112 97 99 101 115 292 9 116 97 98 115 290 32 101 267 290",
      "110 97 195 175 118 101 281 97 102 297 32 226 128 148 32 230 157 177 32 240 159 166 153 32 195 137 199 133 97",
      "120 287 52 53 54 55 121 32 51 46 49 52 32 39 83 32 39 275 278",
      "32 122 101 98 114 97 32 122 101 98 114 97",
      "97 204 129 32 206 177 206 145 32 239 172 129 217 163 32 194 178",
      "276 256 270 272 264 121 280 32 109 121 259 100 32 39 83",
      "97 32 49 32 98 32 57",
      "97 60 124 101 111 116 259 100 124 62 98 309 99 60 47 115 62 100",
    ],
    special: "97 308 98 309 99 310 100",
  },
};
const LLAMA_CPP_SPM = {
  plain: [
    "267 263 272",
    "267 262 262",
    "267 263 263 272",
    "266 261 267 264",
    "280 267 273",
    "267 273 280 267 276",
    "261 281 261",
    "267 63 118 65 268 260 63 50 118 65",
    "",
    "277",
    "267 229 133 175",
    "267 13",
  ],
  special: [
    "267 263 272",
    "267 262 262",
    "267 263 263 272",
    "266 261 267 264",
    "280 267 273",
    "267 273 280 267 276",
    "261 281 261",
    "1 261 2",
    "",
    "277",
    "267 229 133 175",
    "267 13",
  ],
};
const LLAMA_CPP_PHI3 = {
  plain: [
    "284 266 63 127 270 113 103 127 65 13 267 273",
    "267 271 267 63 127 270 113 103 127 65 277 272 267 63 50 118 65 267 273",
    "267 63 118 65 267 273",
  ],
  special: ["284 266 283 267 273", "267 271 267 283 267 272 267 2 267 273", "1 277 273"],
};

test("byte-level BPE: llama.cpp's ids with each of its pre-tokenizers", () => {
  for (const [pre, ref] of Object.entries(LLAMA_CPP_BPE)) {
    const md = bpeMetadata(pre);
    assert.equal(ggufTokenizerJson(md, pre).tokenizerConfig.add_bos_token, ref.addBos, pre);
    const plain = tokenizerFromGguf(md, pre, { parseSpecial: false });
    const parsed = tokenizerFromGguf(md, pre);
    BPE_TEXTS.forEach((t, i) => {
      assert.deepEqual(llamaIds(plain, t, ref.addBos), ids(ref.ids[i]), `${pre}: ${JSON.stringify(t)}`);
      const special = i === BPE_TEXTS.length - 1 ? ref.special : ref.ids[i];
      assert.deepEqual(llamaIds(parsed, t, ref.addBos), ids(special), `${pre} (special): ${JSON.stringify(t)}`);
    });
    if (ref.addBos)
      assert.equal(parsed.encode("")[0], (md["tokenizer.ggml.tokens"] as string[]).indexOf("<|begin_of_text|>"));
  }
});

test("byte-level BPE: decoding, token texts, and special tokens left out", () => {
  const tok = tokenizerFromGguf(bpeMetadata("llama-bpe"), "x.gguf");
  const text = "Hello world, caf\u00e9 \u{1f999}\n\t they're";
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.equal(tok.decode(tok.encode("a<|eot_id|>b")), "ab");
  const plain = tokenizerFromGguf(bpeMetadata("llama-bpe"), "x.gguf", { parseSpecial: false });
  assert.equal(plain.decode([...plain.encode("a"), 308]), "a", "control token 308 left out");
  const hello = tok.encode("Hello")[1];
  assert.equal(tok.tokenText(hello), "Hello");
  assert.equal(tok.tokenText(308), "<|eot_id|>");
});

// A SentencePiece vocabulary: ties between different tokens ("ab" and "ba"; the runs of "▁") decide by position.
function spmMetadata(): Metadata {
  const tokens = ["<unk>", "<s>", "</s>"];
  const scores = [0, 0, 0];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    (tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`), scores.push(0), types.push(6));
  }
  const pieces: [string, number][] = [
    ["\u2581t", -1],
    ["he", -2],
    ["\u2581the", -3],
    ["ab", -5],
    ["ba", -5],
    ["aba", -7],
    ["\u2581H", -8],
    ["\u2581Hi", -9],
    ["\u2581", -10],
    ["t", -11],
    ["h", -12],
    ["e", -13],
    ["a", -14],
    ["b", -15],
    ["x", -16],
    ["H", -17],
    ["i", -18],
    ["y", -19],
    ["\u2581\u2581", -1e9],
    ["\u2581\u2581\u2581", -1e9],
    ["\u2581\u2581\u2581\u2581", -1e9],
    ["\u2581\u2581\u2581\u2581\u2581", -1e9],
    ["<tool>", 0],
  ];
  for (const [t, s] of pieces) (tokens.push(t), scores.push(s), types.push(t === "<tool>" ? 4 : 1));
  return {
    "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.pre": "default",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.scores": Float32Array.from(scores),
    "tokenizer.ggml.token_type": Int32Array.from(types),
  };
}
const SPM_TEXTS = [
  "bab",
  "abab",
  "babab",
  "Hi the aba",
  "     x",
  "x      y",
  "the<tool>the",
  "<s>the</s>",
  "",
  " ",
  "\u20ac",
  "\n",
];

test("SentencePiece: llama.cpp's ids, ties going to the leftmost pair, bytes for uncovered characters", () => {
  const md = spmMetadata();
  const plain = tokenizerFromGguf(md, "spm.gguf", { parseSpecial: false });
  const parsed = tokenizerFromGguf(md, "spm.gguf");
  SPM_TEXTS.forEach((t, i) => {
    assert.deepEqual(llamaIds(plain, t, true), ids(LLAMA_CPP_SPM.plain[i]), JSON.stringify(t));
    assert.deepEqual(llamaIds(parsed, t, true), ids(LLAMA_CPP_SPM.special[i]), `special: ${JSON.stringify(t)}`);
  });
  assert.deepEqual(parsed.encode(""), [1], "add_bos by default for SentencePiece");
  assert.equal(parsed.decode(parsed.encode(" Hi the \u20ac  x")), " Hi the \u20ac  x");
  const noPrefix = tokenizerFromGguf(
    { ...md, "tokenizer.ggml.add_space_prefix": false, "tokenizer.ggml.add_bos_token": false },
    "x",
  );
  // llama.cpp's ids for these without the space prefix: "t" + "he"; "▁the"; "<tool>" "▁the".
  assert.deepEqual(
    ["the", " the", "<tool> the"].map((t) => noPrefix.encode(t)),
    [[268, 260], [261], [281, 261]],
  );
});

// Phi-3 (by general.name): llama.cpp strips the whitespace after special tokens except <unk>, <s>, <|endoftext|>.
function phi3Metadata(): Metadata {
  const md = spmMetadata();
  const tokens = [...(md["tokenizer.ggml.tokens"] as string[]), "<|endoftext|>", "<|end|>", "<|user|>"];
  return {
    ...md,
    "general.name": "Phi3 Mini Test",
    "tokenizer.ggml.tokens": tokens,
    "tokenizer.ggml.scores": [...(md["tokenizer.ggml.scores"] as Float32Array), 0, 0, 0],
    "tokenizer.ggml.token_type": [...(md["tokenizer.ggml.token_type"] as Int32Array), 3, 3, 4],
  };
}
const PHI3_TEXTS = ["<|user|> Hi<|end|>\n x", "a <|end|>  b </s> x", "<s> x"];

test("Phi-3: whitespace after special tokens stripped as llama.cpp does", () => {
  const md = phi3Metadata();
  const plain = tokenizerFromGguf(md, "phi3.gguf", { parseSpecial: false });
  const parsed = tokenizerFromGguf(md, "phi3.gguf");
  PHI3_TEXTS.forEach((t, i) => {
    assert.deepEqual(llamaIds(plain, t, true), ids(LLAMA_CPP_PHI3.plain[i]), JSON.stringify(t));
    assert.deepEqual(llamaIds(parsed, t, true), ids(LLAMA_CPP_PHI3.special[i]), `special: ${JSON.stringify(t)}`);
  });
  const noEos = {
    ...md,
    "tokenizer.ggml.tokens": (md["tokenizer.ggml.tokens"] as string[]).map((t) => (t === "</s>" ? "</x>" : t)),
  };
  assert.throws(
    () => tokenizerFromGguf(noEos, "phi3.gguf"),
    fault("GGUF_TOKENIZER_MISSING_SPECIAL", "phi3.gguf", "</s>"),
  );
});

test("tokenizer.json → GGUF: the pre-tokenizer named by the splits, and llama.cpp's ids back", () => {
  const expectedName: Record<string, string> = {
    default: "default",
    "llama-bpe": "llama3",
    dbrx: "dbrx",
    glm4: "dbrx",
    qwen2: "qwen2",
    qwen35: "qwen35",
    smollm: "starcoder",
    "gpt-2": "gpt-2",
    falcon: "falcon",
  };
  for (const [pre, name] of Object.entries(expectedName)) {
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerJson(bpeMetadata(pre), pre);
    const md = asMetadata(ggufTokenizerMetadata(tokenizerJson, tokenizerConfig, `${pre}.json`));
    assert.equal(md["tokenizer.ggml.pre"], name, pre);
    const back = tokenizerFromGguf(md, `${pre}.gguf`);
    const ref = LLAMA_CPP_BPE[pre];
    BPE_TEXTS.slice(0, -1).forEach((t, i) =>
      assert.deepEqual(llamaIds(back, t, ref.addBos), ids(ref.ids[i]), `${pre}: ${t}`),
    );
  }
  // llama.cpp's Tekken and GPT-4o regexes only approximate the Hugging Face ones: nothing to name them by here.
  for (const pre of ["tekken", "gpt-4o"]) {
    const { tokenizerJson, tokenizerConfig } = ggufTokenizerJson(bpeMetadata(pre), pre);
    assert.throws(
      () => ggufTokenizerMetadata(tokenizerJson, tokenizerConfig, `${pre}.json`),
      fault("TOKENIZER_GGUF_UNSUPPORTED_PRE", `${pre}.json`, "no llama.cpp pre-tokenizer splits as this one"),
    );
  }
  // Hugging Face's own spellings: Llama-3's Split with (?i:…), SmolLM's Digits, GPT-2's ByteLevel regex.
  const { tokenizerJson, tokenizerConfig } = ggufTokenizerJson(bpeMetadata("gpt-2"), "x");
  const llama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" +
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const byteLevel = (useRegex: boolean) => ({
    type: "ByteLevel",
    add_prefix_space: false,
    trim_offsets: true,
    use_regex: useRegex,
  });
  const forms: [unknown, boolean, string][] = [
    [
      {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: llama3Regex }, behavior: "Isolated", invert: false },
          byteLevel(false),
        ],
      },
      true,
      "llama3",
    ],
    [
      { type: "Sequence", pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)] },
      false,
      "starcoder",
    ],
    [byteLevel(true), false, "gpt-2"],
  ];
  for (const [preTokenizer, ignoreMerges, name] of forms) {
    const json = {
      ...tokenizerJson,
      pre_tokenizer: preTokenizer,
      model: { ...(tokenizerJson.model as object), ignore_merges: ignoreMerges },
    };
    assert.equal(asMetadata(ggufTokenizerMetadata(json, tokenizerConfig, "x"))["tokenizer.ggml.pre"], name);
  }
});

test("GGUF chat templates come through tokenizer_config.json, named ones as its list form", () => {
  const md = { ...bpeMetadata("gpt-2"), "tokenizer.chat_template": "{{ messages[0].content }}" };
  const config = ggufTokenizerJson(md, "x").tokenizerConfig;
  assert.equal(chatTemplateOf(config), "{{ messages[0].content }}");
  const named = { ...md, "tokenizer.chat_templates": ["tool_use"], "tokenizer.chat_template.tool_use": "T" };
  const listed = ggufTokenizerJson(named, "x").tokenizerConfig;
  assert.deepEqual(listed.chat_template, [
    { name: "default", template: "{{ messages[0].content }}" },
    { name: "tool_use", template: "T" },
  ]);
  assert.equal(chatTemplateOf(listed, "tool_use"), "T");
  const { tokenizerJson } = ggufTokenizerJson(named, "x");
  const entries = ggufTokenizerMetadata(tokenizerJson, listed, "x.json").filter((e) =>
    e.key.startsWith("tokenizer.chat"),
  );
  assert.deepEqual(entries, [
    { key: "tokenizer.chat_template", type: "string", value: "{{ messages[0].content }}" },
    { key: "tokenizer.chat_template.tool_use", type: "string", value: "T" },
    { key: "tokenizer.chat_templates", type: "string[]", value: ["tool_use"] },
  ]);
});

test("GGUF → tokenizer faults: one error code each, naming the file", () => {
  const file = "model.gguf";
  const bpe = bpeMetadata("gpt-2");
  const spm = spmMetadata();
  const load = (md: Metadata) => () => tokenizerFromGguf(md, file);
  const without = (md: Metadata, key: string) => Object.fromEntries(Object.entries(md).filter(([k]) => k !== key));
  assert.throws(
    load(without(bpe, "tokenizer.ggml.model")),
    fault("GGUF_TOKENIZER_MISSING", file, "tokenizer.ggml.model"),
  );
  assert.throws(
    load(without(bpe, "tokenizer.ggml.merges")),
    fault("GGUF_TOKENIZER_MISSING", file, "tokenizer.ggml.merges"),
  );
  assert.throws(
    load(without(spm, "tokenizer.ggml.tokens")),
    fault("GGUF_TOKENIZER_MISSING", file, "tokenizer.ggml.tokens"),
  );
  for (const model of ["bert", "t5", "rwkv", "gemma4"]) {
    assert.throws(
      load({ ...bpe, "tokenizer.ggml.model": model }),
      fault("GGUF_TOKENIZER_UNSUPPORTED_MODEL", file, `"${model}"`),
    );
  }
  for (const pre of ["deepseek-llm", "no-such-pre", "jina-v2-de"]) {
    assert.throws(
      load({ ...bpe, "tokenizer.ggml.pre": pre }),
      fault("GGUF_TOKENIZER_UNSUPPORTED_PRE", file, `"${pre}"`),
    );
  }
  const bad: [string, unknown, string][] = [
    ["tokenizer.ggml.model", 7, "a string"],
    ["tokenizer.ggml.tokens", ["a", 1], "an array of strings"],
    ["tokenizer.ggml.scores", [1, 2], "2 values for 282 tokens"],
    ["tokenizer.ggml.token_type", "x", "an array of numbers"],
    ["tokenizer.ggml.bos_token_id", 1.5, "a u32 token id"],
    ["tokenizer.ggml.add_bos_token", 1, "a boolean"],
    ["tokenizer.ggml.scores", new Float32Array(282).fill(NaN), "finite numbers"],
  ];
  for (const [key, value, what] of bad)
    assert.throws(load({ ...spm, [key]: value }), fault("GGUF_TOKENIZER_BAD_VALUE", file, key, what));
  const dup = [...(spm["tokenizer.ggml.tokens"] as string[])];
  dup[280] = "ab";
  assert.throws(load({ ...spm, "tokenizer.ggml.tokens": dup }), fault("GGUF_TOKENIZER_DUPLICATE_TOKEN", file, '"ab"'));
  const noByte = (spm["tokenizer.ggml.tokens"] as string[]).map((t) => (t === "<0x80>" ? "<0x80x>" : t));
  assert.throws(
    load({ ...spm, "tokenizer.ggml.tokens": noByte }),
    fault("GGUF_TOKENIZER_MISSING_BYTES", file, "<0x80>"),
  );
  const merges = [...(bpe["tokenizer.ggml.merges"] as string[]), "z z"];
  assert.throws(
    load({ ...bpe, "tokenizer.ggml.merges": merges }),
    fault("GGUF_TOKENIZER_MERGE_NOT_IN_VOCAB", file, '"zz"'),
  );
  assert.doesNotThrow(
    load({ ...bpe, "tokenizer.ggml.merges": [...merges.slice(0, -1), "<t0> <t1>", "nospace"] }),
    "merges llama.cpp can never apply are no fault",
  );
  assert.throws(
    load({
      ...bpe,
      "tokenizer.ggml.add_bos_token": true,
      "tokenizer.ggml.bos_token_id": 99999,
      "tokenizer.ggml.pre": "glm4",
    }),
    fault("GGUF_TOKENIZER_NO_BOS", file),
  );
  assert.throws(
    load({
      ...without(spm, "tokenizer.ggml.add_bos_token"),
      "tokenizer.ggml.tokens": ["a", "b"],
      "tokenizer.ggml.scores": [0, 0],
      "tokenizer.ggml.token_type": [1, 1],
    }),
    fault("GGUF_TOKENIZER_MISSING_BYTES", file),
  );
  const shortVocab = { ...bpe, "tokenizer.ggml.add_eos_token": true, "tokenizer.ggml.eos_token_id": 99999 };
  const tokens = (bpe["tokenizer.ggml.tokens"] as string[]).slice(0, 11);
  assert.throws(
    load({
      ...shortVocab,
      "tokenizer.ggml.tokens": tokens,
      "tokenizer.ggml.token_type": undefined,
      "tokenizer.ggml.merges": [],
    }),
    fault("GGUF_TOKENIZER_NO_EOS", file),
  );
  const fim = [...(bpe["tokenizer.ggml.tokens"] as string[]), "<PRE>", "<fim_prefix>"];
  assert.throws(
    load({ ...bpe, "tokenizer.ggml.tokens": fim, "tokenizer.ggml.token_type": undefined }),
    fault("GGUF_TOKENIZER_AMBIGUOUS_TYPES", file, "<PRE>", "<fim_prefix>", "fim_pre_token_id"),
  );
  assert.doesNotThrow(
    load({
      ...bpe,
      "tokenizer.ggml.tokens": fim,
      "tokenizer.ggml.token_type": undefined,
      "tokenizer.ggml.fim_pre_token_id": 300,
    }),
  );
});

test("tokenizer.json → GGUF faults: one error code each, naming the file, before anything is written", () => {
  const file = "tokenizer.json";
  const { tokenizerJson: bpe, tokenizerConfig } = ggufTokenizerJson(bpeMetadata("gpt-2"), "x");
  const { tokenizerJson: spm, tokenizerConfig: spmConfig } = ggufTokenizerJson(spmMetadata(), "x");
  const write =
    (json: Record<string, unknown>, config = tokenizerConfig, options = {}) =>
    () =>
      ggufTokenizerMetadata(json, config, file, options);
  const model = bpe.model as Record<string, unknown>;
  assert.throws(
    write({ ...bpe, model: { type: "Unigram", vocab: [] } }),
    fault("TOKENIZER_GGUF_UNSUPPORTED_MODEL", file, "Unigram"),
  );
  assert.throws(
    write({ ...bpe, model: { ...model, dropout: 0.1 } }),
    fault("TOKENIZER_GGUF_UNSUPPORTED_MODEL", file, "dropout"),
  );
  const added = bpe.added_tokens as Record<string, unknown>[];
  assert.throws(
    write({ ...bpe, added_tokens: [...added, { id: 5, content: "other", special: true }] }),
    fault("TOKENIZER_GGUF_BAD_VOCAB", file, "id 5"),
  );
  assert.throws(
    write(bpe, tokenizerConfig, { vocabSize: 100 }),
    fault("TOKENIZER_GGUF_BAD_VOCAB", file, "vocabulary of 100"),
  );
  assert.throws(
    write({
      ...bpe,
      added_tokens: [
        ...added,
        { id: 400, content: "\u2581user", special: false },
        { id: 401, content: " user", special: false },
      ],
    }),
    fault("TOKENIZER_GGUF_BAD_VOCAB", file, "twice"),
  );
  const eosLast = {
    type: "TemplateProcessing",
    single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "<user>", type_id: 0 } }],
    pair: [],
    special_tokens: { "<user>": { id: "<user>", ids: [309], tokens: ["<user>"] } },
  };
  assert.throws(
    write({ ...bpe, post_processor: eosLast }),
    fault("TOKENIZER_GGUF_SPECIAL", file, "[309]", "end", "eos_token"),
  );
  assert.throws(
    write({ ...bpe, normalizer: { type: "Lowercase" } }),
    fault("TOKENIZER_GGUF_UNSUPPORTED_PRE", file, "Lowercase"),
  );
  assert.throws(
    write({ ...bpe, pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, use_regex: true } }),
    fault("TOKENIZER_GGUF_UNSUPPORTED_PRE", file, "prefix space"),
  );
  assert.throws(
    write({ ...bpe, pre_tokenizer: { type: "Whitespace" } }),
    fault("TOKENIZER_GGUF_UNSUPPORTED_PRE", file, "byte-level"),
  );
  const metaspace = { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false };
  assert.throws(
    write({ ...spm, normalizer: null, pre_tokenizer: metaspace }, spmConfig),
    fault("TOKENIZER_GGUF_UNSUPPORTED_PRE", file, "Metaspace"),
  );
  assert.throws(
    write({ ...bpe, normalizer: { type: "NFC" } }),
    fault("TOKENIZER_GGUF_APPROXIMATE", file, "NFC", "approximate"),
  );
  assert.doesNotThrow(write({ ...bpe, normalizer: { type: "NFC" } }, tokenizerConfig, { approximate: true }));
  const spmModel = spm.model as Record<string, unknown>;
  const spmMerges = spmModel.merges as [string, string][];
  const swapped = [spmMerges[1], spmMerges[0], ...spmMerges.slice(2)];
  const interleaved = [spmMerges[0], ["x", "y"], ...spmMerges.slice(1)];
  const vocab = { ...(spmModel.vocab as object), xy: 999 };
  assert.throws(
    write({ ...spm, model: { ...spmModel, merges: spmMerges.slice(1) } }, spmConfig),
    fault("TOKENIZER_GGUF_MERGES", file, "never does"),
  );
  assert.doesNotThrow(write({ ...spm, model: { ...spmModel, merges: swapped } }, spmConfig), "one token's two merges");
  assert.throws(
    write({ ...spm, model: { ...spmModel, merges: [...spmMerges, ["x", "x"]] } }, spmConfig),
    fault("TOKENIZER_GGUF_MERGES", file, '"x x" gives no token'),
  );
  const twoWays = spmMerges.filter(([a, b]) => a + b === "aba");
  assert.equal(twoWays.length, 2, "aba = ab + a = a + ba");
  assert.throws(
    write(
      {
        ...spm,
        model: { ...spmModel, vocab, merges: interleaved.filter((m) => m !== twoWays[1]).concat([twoWays[1]]) },
      },
      spmConfig,
    ),
    fault("TOKENIZER_GGUF_MERGES", file, "not adjacent in rank"),
  );
  assert.throws(write(bpe, { ...tokenizerConfig, chat_template: 5 }), fault("TOKENIZER_GGUF_CHAT_TEMPLATE", file));
});
