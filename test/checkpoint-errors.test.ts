// Opening whole checkpoints that are wrong in one way each: the error code, and a message naming the
// offending file. Every checkpoint is a tiny Llama written here into os.tmpdir() (no fixtures needed).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError, UserError } from "../src/errors.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { Model } from "../src/engine/model.js";
import { writeCheckpoint, writeSafetensors, type TensorToWrite } from "../src/checkpoint/writer.js";

const root = mkdtempSync(join(tmpdir(), "sw-ckpt-errors-"));
after(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
const fresh = (label: string) => join(root, `${counter++}-${label}`);

/** One layer, hidden 8, 2 heads of 4, MLP 16, vocab 10, untied head. */
const CONFIG = {
  model_type: "llama",
  hidden_size: 8,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 16,
  num_hidden_layers: 1,
  vocab_size: 10,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
};

/** The tensors that config implies, written out by hand (not from src/models) so the test is independent. */
const SHAPES: [string, number[]][] = [
  ["model.embed_tokens.weight", [10, 8]],
  ["model.layers.0.input_layernorm.weight", [8]],
  ["model.layers.0.self_attn.q_proj.weight", [8, 8]],
  ["model.layers.0.self_attn.k_proj.weight", [8, 8]],
  ["model.layers.0.self_attn.v_proj.weight", [8, 8]],
  ["model.layers.0.self_attn.o_proj.weight", [8, 8]],
  ["model.layers.0.post_attention_layernorm.weight", [8]],
  ["model.layers.0.mlp.gate_proj.weight", [16, 8]],
  ["model.layers.0.mlp.up_proj.weight", [16, 8]],
  ["model.layers.0.mlp.down_proj.weight", [8, 16]],
  ["model.norm.weight", [8]],
  ["lm_head.weight", [10, 8]],
];

/** Deterministic values, distinct per tensor, exactly representable in every dtype used. */
function tensor(
  name: string,
  shape: number[],
  seed = 0,
  dtype: TensorToWrite["dtype"] = "F32",
): TensorToWrite & { data: Float32Array } {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (((i * 7 + seed * 13) % 31) - 15) / 16;
  return { name, dtype, shape, data };
}

function tinyTensors(): TensorToWrite[] {
  return SHAPES.map(([name, shape], i) => tensor(name, shape, i, i % 3 === 1 ? "BF16" : i % 3 === 2 ? "F16" : "F32"));
}

/** Write a tiny Llama checkpoint, with edits to its config or tensor list. */
function tiny(
  label: string,
  opts: { config?: Record<string, unknown>; tensors?: (t: TensorToWrite[]) => TensorToWrite[]; shards?: number } = {},
): string {
  const folder = fresh(label);
  const tensors = opts.tensors ? opts.tensors(tinyTensors()) : tinyTensors();
  writeCheckpoint(folder, opts.config ?? CONFIG, tensors, opts.shards ?? 1);
  return folder;
}

/** `fn` throws a CheckpointError with this code for this file; the message names the file and each mention. */
function throwsCheckpoint(fn: () => unknown, code: string, path: string, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.file, path, `file (message: ${e.message})`);
    assert.ok(e.message.startsWith(`${path}: `), `message should name ${path}: ${e.message}`);
    for (const m of mentions)
      assert.ok(e.message.includes(m), `message should mention ${JSON.stringify(m)}: ${e.message}`);
    return true;
  });
}

/** Every file in a folder: size, mtime and a hash of its bytes. */
function snapshot(folder: string): Record<string, { size: number; mtimeMs: number; sha256: string }> {
  const out: Record<string, { size: number; mtimeMs: number; sha256: string }> = {};
  for (const name of readdirSync(folder).sort()) {
    const s = statSync(join(folder, name));
    out[name] = {
      size: s.size,
      mtimeMs: s.mtimeMs,
      sha256: createHash("sha256")
        .update(readFileSync(join(folder, name)))
        .digest("hex"),
    };
  }
  return out;
}

/** Opening fails as expected and leaves the folder exactly as it was. */
function refuses(folder: string, code: string, path: string, ...mentions: string[]): void {
  const before = snapshot(folder);
  throwsCheckpoint(() => Model.open(folder), code, path, ...mentions);
  assert.deepEqual(snapshot(folder), before, "a failed open must not touch the folder");
}

/** Rewrite a safetensors file's header with `edit`, keeping its data bytes. */
function editHeader(path: string, edit: (h: Record<string, any>) => void): void {
  const bytes = readFileSync(path);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([prefix, json, bytes.subarray(8 + n)]));
}

// ---- valid ----

test("Model.open reads a valid tiny checkpoint, and opening never modifies the folder", () => {
  const folder = tiny("valid");
  const before = snapshot(folder);
  const model = Model.open(folder);
  try {
    assert.equal(model.spec.modelType, "llama");
    assert.equal(model.spec.hidden, 8);
    assert.equal(model.spec.layers, 1);
    assert.equal(model.spec.headDim, 4);
    for (const [name, shape] of SHAPES) {
      assert.ok(model.has(name), name);
      assert.deepEqual(model.shape(name), shape, name);
    }
    assert.equal(model.dtype("model.layers.0.input_layernorm.weight"), "BF16");
    assert.equal(model.dtype("model.layers.0.self_attn.q_proj.weight"), "F16");
    // Values come back exactly as written (all are multiples of 1/16 in [-1, 1]).
    SHAPES.forEach(([name, shape], i) => assert.deepEqual(model.read(name), tensor(name, shape, i).data, name));
    const down = tensor("", [8, 16], 9).data;
    assert.equal(model.weight("model.layers.0.mlp.down_proj.weight", 3, 5), down[3 * 16 + 5]);
    assert.deepEqual(model.readRows("model.layers.0.mlp.down_proj.weight", 2, 4), down.subarray(32, 64));
  } finally {
    model.close();
  }
  assert.deepEqual(snapshot(folder), before, "Model.open + reads must not touch the folder");
  const ckpt = Checkpoint.open(folder);
  assert.equal(ckpt.names().length, SHAPES.length);
  ckpt.close();
  assert.deepEqual(snapshot(folder), before, "Checkpoint.open must not touch the folder");
});

test("a sharded checkpoint opens the same as a single file", () => {
  const folder = tiny("sharded-valid", { shards: 3 });
  assert.equal(readdirSync(folder).filter((f) => f.endsWith(".safetensors")).length, 3);
  const before = snapshot(folder);
  const model = Model.open(folder);
  try {
    SHAPES.forEach(([name, shape], i) => assert.deepEqual(model.read(name), tensor(name, shape, i).data, name));
    assert.match(model.source.fileOf("lm_head.weight"), /model-00003-of-00003\.safetensors$/);
  } finally {
    model.close();
  }
  assert.deepEqual(snapshot(folder), before);
});

test("buffers the architecture ignores (rotary inv_freq) are accepted", () => {
  const folder = tiny("inv-freq", {
    tensors: (t) => [...t, tensor("model.layers.0.self_attn.rotary_emb.inv_freq", [2])],
  });
  Model.open(folder).close();
});

// ---- config.json ----

test("a missing config.json is MISSING_CONFIG, naming the path", () => {
  const folder = tiny("no-config");
  unlinkSync(join(folder, "config.json"));
  refuses(folder, "MISSING_CONFIG", join(folder, "config.json"), "config.json is missing");
});

test("a config.json that is not JSON is BAD_CONFIG", () => {
  const folder = tiny("config-not-json");
  writeFileSync(join(folder, "config.json"), '{"model_type": "llama",');
  refuses(folder, "BAD_CONFIG", join(folder, "config.json"), "not valid JSON");
  writeFileSync(join(folder, "config.json"), '["llama"]');
  refuses(folder, "BAD_CONFIG", join(folder, "config.json"), "not a JSON object");
});

test("an unknown model_type is UNSUPPORTED_MODEL_TYPE, listing the supported ones", () => {
  const supported = ["llama", "mistral", "qwen2", "olmo", "phi3", "gemma", "gpt2"];
  const folder = tiny("mamba", { config: { ...CONFIG, model_type: "mamba" } });
  refuses(folder, "UNSUPPORTED_MODEL_TYPE", join(folder, "config.json"), '"mamba"', ...supported);
  const { model_type: _, ...untyped } = CONFIG;
  const folder2 = tiny("no-model-type", { config: untyped });
  refuses(folder2, "UNSUPPORTED_MODEL_TYPE", join(folder2, "config.json"), ...supported);
});

test("a config field of the wrong type is BAD_CONFIG, naming the field", () => {
  const folder = tiny("bad-field", { config: { ...CONFIG, hidden_size: "8" } });
  refuses(folder, "BAD_CONFIG", join(folder, "config.json"), '"hidden_size"');
});

// ---- tensors against the config ----

test("a missing tensor is MISSING_TENSOR, naming the tensor", () => {
  const name = "model.layers.0.mlp.down_proj.weight";
  const folder = tiny("missing-tensor", { tensors: (t) => t.filter((x) => x.name !== name) });
  refuses(folder, "MISSING_TENSOR", folder, `"${name}"`);
});

test("a tensor of the wrong shape is WRONG_SHAPE, naming the tensor and both shapes", () => {
  const name = "model.layers.0.self_attn.k_proj.weight";
  const folder = tiny("wrong-shape", { tensors: (t) => t.map((x) => (x.name === name ? tensor(name, [4, 8]) : x)) });
  refuses(folder, "WRONG_SHAPE", join(folder, "model.safetensors"), `"${name}"`, "[4,8]", "[8,8]");
  // Same element count, transposed: still wrong.
  const down = "model.layers.0.mlp.down_proj.weight";
  const folder2 = tiny("transposed", { tensors: (t) => t.map((x) => (x.name === down ? tensor(down, [16, 8]) : x)) });
  refuses(folder2, "WRONG_SHAPE", join(folder2, "model.safetensors"), `"${down}"`, "[16,8]", "[8,16]");
});

test("a shape that disagrees with config.json (not the file) is WRONG_SHAPE", () => {
  const folder = tiny("config-shape", { config: { ...CONFIG, intermediate_size: 32 } });
  refuses(folder, "WRONG_SHAPE", join(folder, "model.safetensors"), "mlp.", "[16,8]", "[32,8]");
});

test("an unexpected extra tensor is UNEXPECTED_TENSOR, naming it and its file", () => {
  const extra = "model.layers.1.mlp.down_proj.weight";
  const folder = tiny("extra", { tensors: (t) => [...t, tensor(extra, [8, 16])] });
  refuses(folder, "UNEXPECTED_TENSOR", join(folder, "model.safetensors"), extra);
  // Sharded: the message names the shard that holds it.
  const folder2 = tiny("extra-sharded", {
    shards: 2,
    tensors: (t) => [...t, tensor("model.layers.0.self_attn.q_proj.bias", [8])],
  });
  const shard = readdirSync(folder2)
    .filter((f) => f.endsWith(".safetensors"))
    .sort()
    .at(-1)!;
  refuses(folder2, "UNEXPECTED_TENSOR", join(folder2, shard), "model.layers.0.self_attn.q_proj.bias");
});

// ---- damaged files ----

test("a truncated model.safetensors is TRUNCATED", () => {
  const folder = tiny("truncated");
  const path = join(folder, "model.safetensors");
  truncateSync(path, statSync(path).size - 4);
  refuses(folder, "TRUNCATED", path);
  // Cut inside the header: the length prefix now runs past the end.
  truncateSync(path, 100);
  refuses(folder, "TRUNCATED", path, "past the end");
  truncateSync(path, 5);
  refuses(folder, "TRUNCATED", path);
});

test("a header that lies about offsets is refused (OVERLAP, GAP, SIZE_MISMATCH, TRAILING_BYTES)", () => {
  const lie = (label: string, code: string, edit: (h: Record<string, any>) => void, ...mentions: string[]) => {
    const folder = tiny(label);
    const path = join(folder, "model.safetensors");
    editHeader(path, edit);
    refuses(folder, code, path, ...mentions);
  };
  // down_proj claims to start 4 bytes early, overlapping the tensor before it.
  lie(
    "lie-overlap",
    "OVERLAP",
    (h) => {
      const t = h["model.layers.0.mlp.down_proj.weight"];
      t.data_offsets = [t.data_offsets[0] - 4, t.data_offsets[1] - 4];
    },
    "model.layers.0.mlp.down_proj.weight",
  );
  // lm_head claims to start 4 bytes late: a gap, and no room left for it.
  lie(
    "lie-gap",
    "GAP",
    (h) => {
      const t = h["lm_head.weight"];
      t.data_offsets = [t.data_offsets[0] + 4, t.data_offsets[1] + 4];
    },
    "lm_head.weight",
  );
  // The norm claims twice its bytes.
  lie(
    "lie-span",
    "SIZE_MISMATCH",
    (h) => {
      const t = h["model.norm.weight"];
      t.data_offsets = [t.data_offsets[0], t.data_offsets[1] + (t.data_offsets[1] - t.data_offsets[0])];
    },
    "model.norm.weight",
  );
  // The last tensor is dropped from the header: its bytes are left over.
  lie("lie-dropped", "TRAILING_BYTES", (h) => delete h["lm_head.weight"]);
  // A dtype the header does not define.
  lie("lie-dtype", "UNKNOWN_DTYPE", (h) => (h["model.norm.weight"].dtype = "F24"), "model.norm.weight", "F24");
});

test("an absurd header length is HEADER_TOO_LARGE", () => {
  const folder = tiny("absurd-header");
  const path = join(folder, "model.safetensors");
  const bytes = readFileSync(path);
  bytes.writeBigUInt64LE(1n << 40n, 0);
  writeFileSync(path, bytes);
  refuses(folder, "HEADER_TOO_LARGE", path, String(1n << 40n));
});

test("a model.safetensors that is not safetensors at all (a Git LFS pointer) is refused naming it", () => {
  const folder = tiny("lfs-pointer");
  const path = join(folder, "model.safetensors");
  writeFileSync(path, "version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 1234\n");
  refuses(folder, "LFS_POINTER", path, "git lfs pull");
});

// ---- sharded checkpoints ----

test("an index naming a missing shard is MISSING_SHARD, naming the index and the shard", () => {
  const folder = tiny("missing-shard", { shards: 2 });
  const shard = "model-00002-of-00002.safetensors";
  unlinkSync(join(folder, shard));
  refuses(folder, "MISSING_SHARD", join(folder, "model.safetensors.index.json"), shard);
});

test("an index that puts a tensor in the wrong shard is BAD_INDEX, naming the index and the tensor", () => {
  const folder = tiny("wrong-shard", { shards: 2 });
  const indexPath = join(folder, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  index.weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors"; // it is stored in shard 2
  writeFileSync(indexPath, JSON.stringify(index));
  refuses(
    folder,
    "BAD_INDEX",
    indexPath,
    '"lm_head.weight"',
    "model-00001-of-00002.safetensors",
    join(folder, "model-00002-of-00002.safetensors"),
  );
});

test("an index listing a tensor that no shard holds is MISSING_TENSOR, naming the shard it points to", () => {
  const folder = tiny("index-extra", { shards: 2 });
  const indexPath = join(folder, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  index.weight_map["model.layers.1.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
  writeFileSync(indexPath, JSON.stringify(index));
  refuses(
    folder,
    "MISSING_TENSOR",
    join(folder, "model-00001-of-00002.safetensors"),
    '"model.layers.1.mlp.up_proj.weight"',
    "model.safetensors.index.json",
  );
});

test("an index that is not JSON, or has no weight_map, is BAD_INDEX", () => {
  const folder = tiny("index-garbage", { shards: 2 });
  const indexPath = join(folder, "model.safetensors.index.json");
  writeFileSync(indexPath, "{");
  refuses(folder, "BAD_INDEX", indexPath, "not valid JSON");
  writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
  refuses(folder, "BAD_INDEX", indexPath, "weight_map");
  writeFileSync(indexPath, JSON.stringify({ weight_map: { "lm_head.weight": 2 } }));
  refuses(folder, "BAD_INDEX", indexPath, "weight_map");
});

test("a damaged shard is reported by its own path", () => {
  const folder = tiny("damaged-shard", { shards: 3 });
  const path = join(folder, "model-00002-of-00003.safetensors");
  truncateSync(path, statSync(path).size - 2);
  refuses(folder, "TRUNCATED", path);
});

test("the same tensor in two unindexed files is DUPLICATE_TENSOR, naming both files", () => {
  const folder = fresh("duplicate");
  writeCheckpoint(folder, CONFIG, []);
  unlinkSync(join(folder, "model.safetensors"));
  const all = tinyTensors();
  writeSafetensors(join(folder, "a.safetensors"), all.slice(0, 8));
  writeSafetensors(join(folder, "b.safetensors"), [all[0], ...all.slice(8)]);
  refuses(
    folder,
    "DUPLICATE_TENSOR",
    join(folder, "b.safetensors"),
    '"model.embed_tokens.weight"',
    join(folder, "a.safetensors"),
  );
});

test("several unindexed *.safetensors files (no index, no model.safetensors) open together", () => {
  const folder = fresh("unindexed");
  writeCheckpoint(folder, CONFIG, []);
  unlinkSync(join(folder, "model.safetensors"));
  const all = tinyTensors();
  writeSafetensors(join(folder, "a.safetensors"), all.slice(0, 5));
  writeSafetensors(join(folder, "b.safetensors"), all.slice(5));
  Model.open(folder).close();
});

// ---- no safetensors ----

test("a folder with only pytorch_model.bin is NO_WEIGHTS, saying only safetensors is read", () => {
  const folder = fresh("pytorch-only");
  writeCheckpoint(folder, CONFIG, []);
  unlinkSync(join(folder, "model.safetensors"));
  writeFileSync(join(folder, "pytorch_model.bin"), Buffer.from([0x50, 0x4b, 0x03, 0x04]));
  refuses(folder, "NO_WEIGHTS", folder, "pytorch_model.bin", "only safetensors is read");
});

test("a folder with no weights at all is NO_WEIGHTS", () => {
  const folder = fresh("empty");
  writeCheckpoint(folder, CONFIG, []);
  unlinkSync(join(folder, "model.safetensors"));
  refuses(folder, "NO_WEIGHTS", folder, "no .safetensors");
});

test("a folder that does not exist is a UserError naming it", () => {
  const folder = join(root, "does-not-exist");
  assert.throws(
    () => Model.open(folder),
    (e: unknown) => e instanceof UserError && !(e instanceof CheckpointError) && e.message.includes(folder),
  );
  const file = join(tiny("a-file"), "config.json");
  assert.throws(
    () => Model.open(file),
    (e: unknown) => e instanceof UserError && e.message.includes(file),
  );
});

test("Gemma's activation: hidden_activation wins, hidden_act alone is the legacy (wrong) field and is ignored", async () => {
  const { ConfigReader } = await import("../src/models/spec.js");
  const { gemma } = await import("../src/models/gemma.js");
  const base = {
    model_type: "gemma",
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 4,
    vocab_size: 10,
  };
  const act = (extra: object) => gemma.config(new ConfigReader({ ...base, ...extra }, "config.json")).act;
  assert.equal(act({ hidden_act: "gelu" }), "gelu_tanh", "Gemma 1.0 config");
  assert.equal(act({ hidden_act: "gelu", hidden_activation: "gelu_pytorch_tanh" }), "gelu_tanh", "Gemma 1.1 config");
  assert.equal(act({ hidden_activation: "gelu" }), "gelu", "an explicit hidden_activation");
});
