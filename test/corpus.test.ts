// A corpus of malformed inputs, generated here: configs with every field out of its domain, safetensors headers
// and data cut or lying, indexes, tokenizers, symlinks and special files. Each goes through the CLI as a user
// would send it; whatever the fault, the answer is a clean refusal (exit 2, one line, no stack) or a finite
// result — never a crash, a hang, an out-of-memory abort or a NaN.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli, TINY_CONFIG, tinyTensors, userEnv, writeTiny, type Run } from "./tiny.js";

const root = mkdtempSync(join(tmpdir(), "sw-corpus-"));
after(() => rmSync(root, { recursive: true, force: true }));

interface Case {
  label: string;
  /** Break a valid tiny checkpoint in `folder` (written before, two shards when `shards`). */
  make(folder: string): void;
  shards?: number;
  args?: string[];
}

const weights = (f: string) => join(f, "model.safetensors");
const configOf = (f: string) => join(f, "config.json");
const setConfig = (change: Record<string, unknown>) => (f: string) =>
  writeFileSync(configOf(f), JSON.stringify({ ...TINY_CONFIG, ...change }));
const writeText = (name: string, text: string) => (f: string) => writeFileSync(join(f, name), text);
/** Rewrite model.safetensors' header JSON text. */
const editHeader =
  (edit: (json: string) => string, lengthDelta = 0) =>
  (f: string) => {
    const bytes = readFileSync(weights(f));
    const n = Number(bytes.readBigUInt64LE(0));
    const json = Buffer.from(edit(bytes.subarray(8, 8 + n).toString("latin1")), "latin1");
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length + lengthDelta));
    writeFileSync(weights(f), Buffer.concat([prefix, json, bytes.subarray(8 + n)]));
  };
const poison = (tensor: string, value: number) => (f: string) => {
  const tensors = tinyTensors();
  tensors.find((t) => t.name === tensor)!.data[1] = value;
  writeTiny(f, { tensors });
};

function cases(): Case[] {
  const out: Case[] = [];
  const fields = [
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "num_hidden_layers",
    "vocab_size",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_theta",
    "bos_token_id",
    "head_dim",
    "partial_rotary_factor",
  ];
  const values: unknown[] = [0, -1, 1e9, 2.5, "8", null, true, 1e308, [], {}];
  for (const field of fields)
    for (const value of values)
      out.push({ label: `config ${field}=${JSON.stringify(value)}`, make: setConfig({ [field]: value }) });
  for (const value of ["", "LLAMA", 7, "gpt2", "phi3", "bert", null])
    out.push({ label: `model_type ${JSON.stringify(value)}`, make: setConfig({ model_type: value }) });
  for (const value of [
    {},
    "x",
    3,
    { rope_type: "yarn", factor: 2 },
    { rope_type: "llama3" },
    { rope_type: "linear", factor: -1 },
    { type: "dynamic", factor: 2 },
    { rope_type: "llama3", factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 16 },
  ])
    out.push({ label: `rope_scaling ${JSON.stringify(value)}`, make: setConfig({ rope_scaling: value }) });
  for (const [field, value] of [
    ["hidden_act", "relu"],
    ["hidden_act", 5],
    ["tie_word_embeddings", "yes"],
    ["attention_bias", 1],
  ] as [string, unknown][])
    out.push({ label: `config ${field}=${JSON.stringify(value)}`, make: setConfig({ [field]: value }) });
  for (const [label, text] of [
    ["empty", ""],
    ["not json", "{model_type: llama}"],
    ["array", "[1, 2]"],
    ["latin-1", "\xff\xfe{}"],
    ["null", "null"],
  ])
    out.push({ label: `config.json ${label}`, make: (f) => writeFileSync(configOf(f), Buffer.from(text, "latin1")) });

  // safetensors: cut, lying, mangled.
  for (const size of [0, 4, 7, 8, 9, 100, 400])
    out.push({ label: `model.safetensors cut to ${size} bytes`, make: (f) => truncateSync(weights(f), size) });
  out.push({
    label: "model.safetensors one byte short",
    make: (f) => truncateSync(weights(f), readFileSync(weights(f)).length - 1),
  });
  out.push({
    label: "model.safetensors one byte long",
    make: (f) => writeFileSync(weights(f), Buffer.concat([readFileSync(weights(f)), Buffer.from([0])])),
  });
  for (const delta of [1, -1, 1000, 2 ** 40])
    out.push({ label: `header length off by ${delta}`, make: editHeader((j) => j, delta) });
  for (const [label, edit] of [
    ["dtype F33", (j: string) => j.replace('"F32"', '"F33"')],
    ["dtype I64", (j: string) => j.replace('"F32"', '"I64"')],
    ["negative shape", (j: string) => j.replace(/"shape":\[(\d+)/, '"shape":[-$1')],
    ["shape wrong", (j: string) => j.replace(/"shape":\[(\d+)/, '"shape":[9$1')],
    ["offsets swapped", (j: string) => j.replace(/"data_offsets":\[(\d+),(\d+)\]/, '"data_offsets":[$2,$1]')],
    ["offsets huge", (j: string) => j.replace(/"data_offsets":\[(\d+),(\d+)\]/, '"data_offsets":[$1,99999999999]')],
    ["not json", (j: string) => j.replace("{", "[")],
    ["bad utf-8", (j: string) => j.replace("lm_head", "lm\xffhead")],
    ["metadata number", (j: string) => j.replace('"format":"pt"', '"format":5')],
    ["renamed tensor", (j: string) => j.replace("lm_head", "lm_hood")],
    ["empty object", (j: string) => "{}".padEnd(j.length, " ")],
    ["entry a string", (j: string) => j.replace(/"model\.norm\.weight":\{[^}]*\}/, '"model.norm.weight":"x"')],
  ] as [string, (j: string) => string][])
    out.push({ label: `header ${label}`, make: editHeader(edit) });

  // Non-finite weights, each kind.
  for (const tensor of [
    "model.embed_tokens.weight",
    "model.layers.0.self_attn.q_proj.weight",
    "model.layers.0.self_attn.k_proj.weight",
    "model.layers.0.self_attn.v_proj.weight",
    "model.layers.1.self_attn.o_proj.weight",
    "model.layers.1.mlp.gate_proj.weight",
    "model.layers.1.mlp.up_proj.weight",
    "model.layers.0.mlp.down_proj.weight",
    "model.layers.0.input_layernorm.weight",
    "model.norm.weight",
    "lm_head.weight",
  ])
    for (const value of [NaN, Infinity, -Infinity, 3e38])
      out.push({ label: `${tensor}[1] = ${value}`, make: poison(tensor, value) });

  // Sharded: the index.
  const index = (edit: (ix: any) => unknown) => (f: string) => {
    const p = join(f, "model.safetensors.index.json");
    const ix = JSON.parse(readFileSync(p, "utf8"));
    const replaced = edit(ix);
    writeFileSync(p, typeof replaced === "string" ? replaced : JSON.stringify(replaced ?? ix));
  };
  for (const [label, edit] of [
    ["no weight_map", (ix: any) => ({ metadata: ix.metadata })],
    ["weight_map a list", () => ({ weight_map: [] })],
    ["value a number", (ix: any) => ((ix.weight_map["lm_head.weight"] = 1), ix)],
    ["unknown shard", (ix: any) => ((ix.weight_map["lm_head.weight"] = "nope.safetensors"), ix)],
    ["../ shard", (ix: any) => ((ix.weight_map["lm_head.weight"] = "../x.safetensors"), ix)],
    ["absolute shard", (ix: any) => ((ix.weight_map["lm_head.weight"] = "/dev/zero"), ix)],
    ["empty name", (ix: any) => ((ix.weight_map[""] = "model-00001-of-00002.safetensors"), ix)],
    ["omits a tensor", (ix: any) => (delete ix.weight_map["model.norm.weight"], ix)],
    ["wrong shard", (ix: any) => ((ix.weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors"), ix)],
    ["not json", () => "{"],
    ["empty", () => ""],
  ] as [string, (ix: any) => unknown][])
    out.push({ label: `index ${label}`, shards: 2, make: index(edit) });

  // Tokenizers (with --prompt, so they are read).
  const prompt = ["--prompt", "Hi"];
  for (const [label, text] of [
    ["broken", "{"],
    ["array", "[]"],
    ["no model", '{"version":"1.0"}'],
    ["model null", '{"model":null}'],
    ["bpe without vocab", '{"model":{"type":"BPE"}}'],
    ["latin-1", "\xff"],
  ])
    out.push({
      label: `tokenizer.json ${label}`,
      make: (f) => writeFileSync(join(f, "tokenizer.json"), Buffer.from(text, "latin1")),
      args: prompt,
    });
  out.push({
    label: "tokenizer_config.json broken",
    make: (f) => (
      writeText("tokenizer.json", '{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}')(f),
      writeText("tokenizer_config.json", "{")(f)
    ),
    args: prompt,
  });
  out.push({
    label: "add_bos_token with an unknown bos",
    make: (f) => (
      writeText("tokenizer.json", '{"model":{"type":"BPE","vocab":{"a":0},"merges":[]}}')(f),
      writeText("tokenizer_config.json", '{"add_bos_token":true,"bos_token":"<s>"}')(f)
    ),
    args: prompt,
  });

  // Links and special files.
  const replace = (path: (f: string) => string, make: (p: string) => void) => (f: string) => (
    unlinkSync(path(f)),
    make(path(f))
  );
  for (const [label, path] of [
    ["model.safetensors", weights],
    ["config.json", configOf],
  ] as [string, (f: string) => string][]) {
    out.push({ label: `${label} a symlink loop`, make: replace(path, (p) => symlinkSync(p, p)) });
    out.push({ label: `${label} a dangling symlink`, make: replace(path, (p) => symlinkSync("/nonexistent/blob", p)) });
    out.push({ label: `${label} -> /dev/zero`, make: replace(path, (p) => symlinkSync("/dev/zero", p)) });
    out.push({ label: `${label} a folder`, make: replace(path, (p) => mkdirSync(p)) });
    out.push({ label: `${label} a named pipe`, make: replace(path, (p) => execFileSync("mkfifo", [p])) });
  }
  out.push({
    label: "a shard a named pipe",
    shards: 2,
    make: replace(
      (f) => join(f, "model-00002-of-00002.safetensors"),
      (p) => execFileSync("mkfifo", [p]),
    ),
  });
  out.push({
    label: "weights only as .bin",
    make: (f) => (unlinkSync(weights(f)), writeFileSync(join(f, "pytorch_model.bin"), "x")),
  });
  return out;
}

/** What every answer must be: exit 2 with one clean line, or exit 0 with finite numbers. */
function judge(c: Case, r: Run): string | undefined {
  const said = `${c.label}: exit ${r.status} ${r.signal ?? ""}${r.timedOut ? " TIMED OUT" : ""}\n${r.stderr.slice(0, 600)}`;
  if (r.timedOut || r.signal) return said;
  if (r.status === 2) {
    const lines = r.stderr.trimEnd().split("\n");
    if (lines.length !== 1 || !lines[0].startsWith("superweight: ") || /\bundefined\b|\bat \S+\.js:\d+/.test(lines[0]))
      return said;
    return undefined;
  }
  if (r.status !== 0) return said;
  const out = JSON.parse(r.stdout);
  const finite = (x: unknown) => typeof x === "number" && Number.isFinite(x);
  if (!out.nll.every(finite) || !finite(out.perplexity))
    return `${c.label}: exit 0 with non-finite numbers: ${r.stdout.slice(0, 300)}`;
  return undefined;
}

test(
  "the malformed-input corpus: every case is refused cleanly or gives finite numbers",
  { timeout: 600_000 },
  async (t) => {
    const all = cases();
    assert.ok(all.length >= 100, `${all.length} cases`);
    const env = userEnv(join(root, "home"));
    const failures: string[] = [];
    let refusedCount = 0,
      next = 0;
    const worker = async () => {
      while (next < all.length) {
        const i = next++,
          c = all[i];
        const folder = join(root, `case-${i}`);
        writeTiny(folder, { shards: c.shards });
        c.make(folder);
        const r = await cli(["run", folder, "--json", ...(c.args ?? ["--ids", "1,4,7,2"])], env, 30_000);
        if (r.status === 2) refusedCount++;
        const bad = judge(c, r);
        if (bad) failures.push(bad);
      }
    };
    await Promise.all([worker(), worker()]);
    t.diagnostic(
      `${all.length} cases: ${refusedCount} refused, ${all.length - refusedCount - failures.length} ran with finite numbers, ${failures.length} failed`,
    );
    assert.deepEqual(failures, []);
  },
);
