// The newer families read config.json as transformers does — older layouts (Gemma2 without layer_types,
// Gemma3's sliding_window_pattern) and transformers ≥ 5's spellings (rope_parameters, dtype) give the same
// model — and a config asking for a feature we do not implement is refused with an error naming the field,
// never approximated.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { ConfigReader, type RawConfig } from "../src/models/spec.js";
import { architectureFor } from "../src/models/registry.js";
import { CheckpointError } from "../src/errors.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

const root = mkdtempSync(join(tmpdir(), "sw-newer-config-"));
after(() => rmSync(root, { recursive: true, force: true }));

const configOf = (name: string): RawConfig => JSON.parse(readFileSync(fixturePath(name, "config.json"), "utf8"));

/** The fixture's weights (linked, not copied) under a config changed by `edit`. */
function withConfig(name: string, edit: (c: RawConfig) => void): string {
  const folder = join(root, `${name.replace("/", "_")}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(folder);
  for (const f of readdirSync(fixturePath(name)))
    if (f.endsWith(".safetensors")) symlinkSync(fixturePath(name, f), join(folder, f));
  const config = configOf(name);
  edit(config);
  writeFileSync(join(folder, "config.json"), JSON.stringify(config));
  return folder;
}

/** How far (in tolerances) the logits of `folder` lie from the fixture's reference logits. */
async function logitsVsReference(name: string, folder: string): Promise<number> {
  const ref = readReference(name);
  const model = Model.open(folder);
  try {
    return toleranceUsed((await forward(model, ref.input_ids)).logits!, ref.logits.flat());
  } finally {
    model.close();
  }
}

const drop = (c: RawConfig, ...fields: string[]) => fields.forEach((f) => delete c[f]);

test(
  "Gemma2 without layer_types (transformers ≤ 4.52) slides on even layers: the same model",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "newer/gemma2-f32";
    assert.ok(
      (await logitsVsReference(
        name,
        withConfig(name, (c) => drop(c, "layer_types")),
      )) <= 1,
    );
    // ...and the rule matters: sliding on odd layers instead is far off.
    const odd = withConfig(name, (c) => (c.layer_types = ["full_attention", "sliding_attention", "full_attention"]));
    assert.ok((await logitsVsReference(name, odd)) > 10);
  },
);

test(
  "Gemma3: sliding_window_pattern (≤ 4.52) and _sliding_window_pattern (4.53+) give the pattern; its default is 6",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "newer/gemma3-bf16";
    const legacy = withConfig(name, (c) => {
      drop(c, "layer_types", "_sliding_window_pattern");
      c.sliding_window_pattern = 3;
    });
    assert.ok((await logitsVsReference(name, legacy)) <= 1, "sliding_window_pattern 3");
    assert.ok(
      (await logitsVsReference(
        name,
        withConfig(name, (c) => drop(c, "layer_types")),
      )) <= 1,
      "_sliding_window_pattern 3",
    );
    // No pattern at all: the default 6 makes all four layers slide — another model.
    assert.ok(
      (await logitsVsReference(
        name,
        withConfig(name, (c) => drop(c, "layer_types", "_sliding_window_pattern")),
      )) > 10,
    );
  },
);

test(
  "transformers ≥ 5 spellings: rope_parameters (Gemma3: one entry per layer type) and dtype give the same model",
  { skip: skipWithoutFixtures },
  async () => {
    const gemma3 = withConfig("newer/gemma3-bf16", (c) => {
      drop(c, "rope_theta", "rope_scaling", "rope_local_base_freq", "torch_dtype");
      c.dtype = "bfloat16";
      c.rope_parameters = {
        sliding_attention: { rope_type: "default", rope_theta: 10000 },
        full_attention: { rope_type: "linear", factor: 4, rope_theta: 1000000 },
      };
    });
    assert.ok((await logitsVsReference("newer/gemma3-bf16", gemma3)) <= 1, "gemma3");
    const qwen3 = withConfig("newer/qwen3-bf16", (c) => {
      drop(c, "rope_theta", "rope_scaling", "torch_dtype");
      c.dtype = "bfloat16";
      c.rope_parameters = { rope_type: "default", rope_theta: 1000000 };
    });
    assert.ok((await logitsVsReference("newer/qwen3-bf16", qwen3)) <= 1, "qwen3");
    const mixtral = withConfig("newer/mixtral-bf16", (c) => {
      c.num_experts = c.num_local_experts;
      drop(c, "num_local_experts", "rope_theta");
      c.rope_parameters = { rope_type: "default", rope_theta: 1000000 };
    });
    assert.ok((await logitsVsReference("newer/mixtral-bf16", mixtral)) <= 1, "mixtral");
  },
);

test("Gemma3's local RoPE base and its full layers' scaling both matter", { skip: skipWithoutFixtures }, async () => {
  const name = "newer/gemma3-bf16";
  assert.ok(
    (await logitsVsReference(
      name,
      withConfig(name, (c) => (c.rope_local_base_freq = c.rope_theta)),
    )) > 10,
    "local base",
  );
  assert.ok(
    (await logitsVsReference(
      name,
      withConfig(name, (c) => drop(c, "rope_scaling")),
    )) > 10,
    "global scaling",
  );
});

/** The error arch.config raises for `raw`, which must be BAD_CONFIG and name `field`. */
function refused(raw: RawConfig, field: string, also?: RegExp): void {
  const run = () => architectureFor(raw.model_type, "config.json").config(new ConfigReader(raw, "config.json"));
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `a CheckpointError, got ${e}`);
    assert.equal(e.code, "BAD_CONFIG");
    assert.ok(e.message.startsWith(`config.json: field "${field}"`), e.message);
    assert.ok(!e.message.includes("\n"), "one line");
    if (also) assert.match(e.message, also);
    return true;
  });
}

test("unsupported features of supported families are refused, naming the field", { skip: skipWithoutFixtures }, () => {
  const c = (name: string, edit: (c: RawConfig) => void) => {
    const raw = configOf(name);
    edit(raw);
    return raw;
  };
  const yarn = { rope_type: "yarn", factor: 4, original_max_position_embeddings: 32768 };
  refused(
    c("newer/qwen3-bf16", (r) => (r.rope_scaling = yarn)),
    "rope_scaling",
    /"yarn"; supported: default, linear, llama3/,
  );
  refused(
    c("newer/qwen3-bf16", (r) => (r.rope_parameters = { ...yarn, rope_theta: 1e6 })),
    "rope_parameters",
    /"yarn"/,
  );
  refused(
    c("newer/qwen3-bf16", (r) => (r.rope_parameters = { rope_type: "default", rope_theta: 1e4 })),
    "rope_parameters.rope_theta",
    /disagrees/,
  );
  refused(
    c("newer/qwen3-bf16", (r) => (r.layer_types = ["full_attention", "chunked_attention", "full_attention"])),
    "layer_types",
    /"chunked_attention"/,
  );
  refused(
    c("newer/gemma2-f32", (r) => (r.layer_types = ["sliding_attention", "full_attention", "global"])),
    "layer_types",
    /"global"/,
  );
  refused(
    c("newer/gemma2-f32", (r) => (r.layer_types = ["sliding_attention"])),
    "layer_types",
    /one entry per layer/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => (r.rope_scaling = { rope_type: "dynamic", factor: 2 })),
    "rope_scaling",
    /"dynamic"/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => {
      drop(r, "rope_scaling");
      r.rope_parameters = {
        sliding_attention: { rope_type: "default", rope_theta: 1e4 },
        full_attention: { ...yarn, rope_theta: 1e6 },
      };
    }),
    "rope_parameters.full_attention",
    /"yarn"/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => {
      drop(r, "rope_scaling");
      r.rope_parameters = { rope_type: "default", rope_theta: 1e6 };
    }),
    "rope_parameters",
    /one per layer type/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => (r.rope_parameters = { full_attention: { rope_type: "default", rope_theta: 1e6 } })),
    "rope_parameters",
    /both set/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => {
      drop(r, "layer_types");
      r.sliding_window_pattern = 6;
    }),
    'sliding_window_pattern" and "_sliding_window_pattern',
    /disagree \(6 vs 3\)/,
  );
  refused(
    c("newer/gemma3-bf16", (r) => (r.use_bidirectional_attention = true)),
    "use_bidirectional_attention",
  );
  refused(
    c("newer/qwen2moe-bf16", (r) => (r.use_sliding_window = true)),
    "use_sliding_window",
  );
  refused(
    c("newer/qwen2moe-bf16", (r) => (r.mlp_only_layers = [1, 3])),
    "mlp_only_layers",
    /0\.\.2/,
  );
  refused(
    c("newer/qwen2moe-bf16", (r) => (r.decoder_sparse_step = 0)),
    "decoder_sparse_step",
  );
  refused(
    c("newer/mixtral-bf16", (r) => (r.num_experts_per_tok = 5)),
    "num_experts_per_tok",
    /between 1 and the number of experts \(4\)/,
  );
  refused(
    c("newer/mixtral-bf16", (r) => (r.num_experts = 8)),
    'num_local_experts" and "num_experts',
    /disagree/,
  );
  refused(
    c("newer/mixtral-bf16", (r) => (r.layer_types = ["sliding_attention", "full_attention"])),
    "layer_types",
    /not supported/,
  );
  refused(
    c("newer/olmoe-bf16", (r) => (r.rope_scaling = { type: "longrope", factor: 2 })),
    "rope_scaling",
    /"longrope"/,
  );
  refused(
    c("newer/planted-olmo2-f32", (r) => (r.rope_scaling = { rope_type: "yarn", factor: 2 })),
    "rope_scaling",
    /"yarn"/,
  );
});

test("defaults are transformers': Gemma2's soft-caps and tied head, Qwen3's head_dim, Mixtral's kv heads", () => {
  const spec = (raw: RawConfig) =>
    architectureFor(raw.model_type, "config.json").config(new ConfigReader(raw, "config.json"));
  const sizes = {
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 8,
    vocab_size: 10,
  };
  const g2 = spec({ ...sizes, model_type: "gemma2" });
  assert.deepEqual(
    [g2.attnSoftcap, g2.finalSoftcap, g2.tiedEmbeddings, g2.headDim, g2.slidingWindow(0), g2.slidingWindow(1)],
    [50, 30, true, 256, 4096, undefined],
  );
  assert.equal(g2.attnScale(0), 1 / 16, "query_pre_attn_scalar 256");
  const off = spec({ ...sizes, model_type: "gemma2", attn_logit_softcapping: null, final_logit_softcapping: null });
  assert.deepEqual([off.attnSoftcap, off.finalSoftcap], [undefined, undefined], "null switches soft-capping off");
  const g3 = spec({ ...sizes, model_type: "gemma3_text", num_hidden_layers: 6 });
  assert.deepEqual(
    [g3.attnSoftcap, g3.finalSoftcap, g3.rope(0)!.theta, g3.rope(5)!.theta],
    [undefined, undefined, 10000, 1e6],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((l) => g3.slidingWindow(l)),
    [4096, 4096, 4096, 4096, 4096, undefined],
    "pattern 6",
  );
  assert.equal(spec({ ...sizes, model_type: "qwen3" }).headDim, 128);
  assert.equal(spec({ ...sizes, model_type: "mixtral" }).kvHeads, 8);
  assert.equal(spec({ ...sizes, model_type: "mixtral" }).rope(0)!.theta, 1e6);
  const q2 = spec({ ...sizes, model_type: "qwen2_moe", num_attention_heads: 16 }); // its kv-head default is 16
  assert.deepEqual(
    [
      q2.biases.qkv,
      q2.biases.o,
      q2.experts!.count,
      q2.experts!.topK,
      q2.experts!.renormalize,
      q2.experts!.sharedIntermediate,
    ],
    [true, false, 60, 4, false, 5632],
  );
  const q3 = spec({
    ...sizes,
    model_type: "qwen3_moe",
    num_hidden_layers: 4,
    decoder_sparse_step: 2,
    mlp_only_layers: [3],
  });
  assert.deepEqual(
    [0, 1, 2, 3].map((l) => q3.experts!.sparse(l)),
    [false, true, false, false],
  );
  assert.deepEqual([q3.experts!.count, q3.experts!.topK, q3.experts!.intermediate, q3.headDim], [128, 8, 768, 8]);
});
