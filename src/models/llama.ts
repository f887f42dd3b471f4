// Llama 1/2/3 (GQA, Llama-3.1 rope_scaling), Mistral (sliding window) and Qwen2 (q/k/v bias).
//   h   = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   n1 = rms_norm(x)
//   out = h + down_proj(silu(gate_proj(n2)) · up_proj(n2))                   n2 = rms_norm(h)
import type { Architecture } from "../engine/model.js";
import type { LayerRun } from "../engine/layer.js";
import { activate, addInPlace, clampInPlace, mulInPlace } from "../engine/kernels.js";
import type { ConfigReader, ModelSpec } from "./spec.js";

/** The config fields every Llama-like model shares; `overrides` carries each family's differences. */
export function llamaLikeSpec(c: ConfigReader, overrides: Partial<ModelSpec> = {}): ModelSpec {
  const hidden = c.int("hidden_size");
  const heads = c.int("num_attention_heads");
  const headDim = c.int("head_dim", hidden / heads);
  const rotary = c.num("partial_rotary_factor", 1);
  return {
    modelType: c.str("model_type"),
    hidden, heads, headDim,
    intermediate: c.int("intermediate_size"),
    layers: c.int("num_hidden_layers"),
    kvHeads: divides(c, c.int("num_key_value_heads", heads), heads),
    vocab: c.int("vocab_size"),
    norm: "rms",
    normEps: c.num("rms_norm_eps", 1e-6),
    act: c.activation(["hidden_act"], "silu"),
    rope: c.rope(Math.floor(headDim * rotary)),
    maxPositions: c.int("max_position_embeddings", 2048),
    tiedEmbeddings: c.bool("tie_word_embeddings", false),
    embedScale: 1,
    attnScale: () => 1 / Math.sqrt(headDim),
    bosTokenId: c.has("bos_token_id") ? c.int("bos_token_id") : undefined,
    biases: { qkv: false, o: false, mlp: false },
    ...overrides,
  };
}

function divides(c: ConfigReader, kv: number, heads: number): number {
  if (kv === 0 || heads % kv !== 0) c.fail("num_key_value_heads", `(${kv}) must divide num_attention_heads (${heads})`);
  return kv;
}

/** Tensor names and shapes of a Llama-layout model (separate q/k/v/o and gate/up/down). */
export function llamaTensors(spec: ModelSpec): Map<string, number[]> {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: d, vocab: V, biases: bias } = spec;
  const t = new Map<string, number[]>([["model.embed_tokens.weight", [V, H]], ["model.norm.weight", [H]]]);
  if (!spec.tiedEmbeddings) t.set("lm_head.weight", [V, H]);
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}.`;
    t.set(p + "input_layernorm.weight", [H]);
    t.set(p + "post_attention_layernorm.weight", [H]);
    const proj: [string, number, number, boolean][] = [
      ["self_attn.q_proj", heads * d, H, bias.qkv], ["self_attn.k_proj", kvHeads * d, H, bias.qkv],
      ["self_attn.v_proj", kvHeads * d, H, bias.qkv], ["self_attn.o_proj", H, heads * d, bias.o],
      ["mlp.gate_proj", I, H, bias.mlp], ["mlp.up_proj", I, H, bias.mlp], ["mlp.down_proj", H, I, bias.mlp],
    ];
    for (const [name, out, inp, b] of proj) {
      t.set(`${p}${name}.weight`, [out, inp]);
      if (b) t.set(`${p}${name}.bias`, [out]);
    }
  }
  return t;
}

/** Rotary inv_freq buffers (older exports) are recomputed, not read; a tied head's stored copy is unused. */
export function llamaSanitize(name: string, spec: ModelSpec): string | null {
  if (name.endsWith("rotary_emb.inv_freq")) return null;
  if (name === "lm_head.weight" && spec.tiedEmbeddings) return null;
  return name;
}

/** The attention half of a Llama-like layer: q, k, v already projected; returns o_proj's output. */
export async function attentionBlock(run: LayerRun, q: Float32Array, k: Float32Array, v: Float32Array): Promise<Float32Array> {
  const { heads, kvHeads, clipQkv } = run.spec;
  if (clipQkv !== undefined) for (const a of [q, k, v]) clampInPlace(a, clipQkv);
  run.rope(q, heads);
  run.rope(k, kvHeads);
  const attn = await run.attention(q, k, v);
  const out = await run.linear(attn, "self_attn.o_proj");
  run.hook("attn_output", out, run.spec.hidden);
  return out;
}

/** The gated MLP given gate and up projections: down_proj(act(gate) · up), with its hooks. */
export async function gatedMlp(run: LayerRun, gate: Float32Array, up: Float32Array): Promise<Float32Array> {
  activate(gate, run.spec.act);
  mulInPlace(gate, up);
  run.hook("down_proj_input", gate, run.spec.intermediate);
  const out = await run.linear(gate, "mlp.down_proj");
  run.hook("down_proj_output", out, run.spec.hidden);
  return out;
}

/** The whole pre-norm decoder layer with separate projections (Llama, Mistral, Qwen2, OLMo, Gemma). */
export async function llamaLayer(run: LayerRun, x: Float32Array): Promise<Float32Array> {
  const n1 = run.norm(x, "input_layernorm");
  const q = await run.linear(n1, "self_attn.q_proj");
  const k = await run.linear(n1, "self_attn.k_proj");
  const v = await run.linear(n1, "self_attn.v_proj");
  const h = x;
  addInPlace(h, await attentionBlock(run, q, k, v));
  const n2 = run.norm(h, "post_attention_layernorm");
  const gate = await run.linear(n2, "mlp.gate_proj");
  const up = await run.linear(n2, "mlp.up_proj");
  addInPlace(h, await gatedMlp(run, gate, up));
  return h;
}

function llamaBiases(c: ConfigReader): ModelSpec["biases"] {
  const attn = c.bool("attention_bias", false);
  return { qkv: attn, o: attn, mlp: c.bool("mlp_bias", false) };
}

export const llama: Architecture = {
  modelTypes: ["llama", "mistral", "qwen2"],
  config(c) {
    const type = c.str("model_type");
    const bias = type === "qwen2" ? { qkv: true, o: false, mlp: false } : llamaBiases(c);
    // Mistral always slides; Qwen2 only with use_sliding_window.
    const window = type === "mistral" || (type === "qwen2" && c.bool("use_sliding_window", false)) ? c.optNum("sliding_window") : undefined;
    return llamaLikeSpec(c, { slidingWindow: window, biases: bias });
  },
  sanitize: llamaSanitize,
  tensors: llamaTensors,
  layout: "nk",
  embedding: "model.embed_tokens.weight",
  finalNorm: "model.norm",
  lmHead: (spec) => (spec.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"),
  downProj: (l) => `model.layers.${l}.mlp.down_proj.weight`,
  layerPrefix: (l) => `model.layers.${l}.`,
  layer: llamaLayer,
};
