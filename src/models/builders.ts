// What the Llama-like families share: the config fields, the tensor table, the sanitize rules and the
// pre-norm decoder layer. Each family's file states only how it differs.
//   h   = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   n1 = norm(x)
//   out = h + down_proj(act(gate_proj(n2)) · up_proj(n2))                    n2 = norm(h)
import type { ConfigReader, ModelSpec } from "./spec.js";
import type { Activations, AttentionBlock, LayerOps, MlpBlock } from "./ops.js";
import type { Architecture } from "./architecture.js";

/** The config fields every Llama-like model shares; `overrides` carries each family's differences. */
export function llamaLikeSpec(c: ConfigReader, overrides: Partial<ModelSpec> = {}): ModelSpec {
  const hidden = c.size("hidden_size");
  const heads = c.size("num_attention_heads");
  if (!c.has("head_dim") && hidden % heads !== 0) c.fail("num_attention_heads", `(${heads}) must divide hidden_size (${hidden}) when head_dim is not given`);
  const headDim = c.size("head_dim", hidden / heads);
  const rotary = c.positive("partial_rotary_factor", 1);
  if (rotary > 1) c.fail("partial_rotary_factor", `must be at most 1, got ${rotary}`);
  const rope = c.rope(Math.floor(headDim * rotary));
  const vocab = c.size("vocab_size");
  return {
    modelType: c.str("model_type"),
    hidden, heads, headDim,
    intermediate: c.size("intermediate_size"),
    layers: c.size("num_hidden_layers"),
    kvHeads: divides(c, c.int("num_key_value_heads", heads), heads),
    vocab,
    norm: "rms",
    normEps: c.eps("rms_norm_eps", 1e-6),
    act: c.activation(["hidden_act"], "silu"),
    rope: () => rope,
    maxPositions: c.size("max_position_embeddings", 2048),
    tiedEmbeddings: c.bool("tie_word_embeddings", false),
    embedScale: 1,
    attnScale: () => 1 / Math.sqrt(headDim),
    slidingWindow: () => undefined,
    bosTokenId: c.bos(vocab),
    biases: { qkv: false, o: false, mlp: false },
    ...overrides,
  };
}

function divides(c: ConfigReader, kv: number, heads: number): number {
  if (kv === 0 || heads % kv !== 0) c.fail("num_key_value_heads", `(${kv}) must divide num_attention_heads (${heads})`);
  return kv;
}

/** Which layers slide: `layer_types` when config.json has it, else `fallback(layer)`. */
export function slidingLayers(c: ConfigReader, layers: number, fallback: (layer: number) => boolean): (layer: number) => boolean {
  const types = c.raw["layer_types"];
  if (types === undefined || types === null) return fallback;
  if (!Array.isArray(types) || types.length !== layers)
    c.fail("layer_types", `must list one entry per layer (${layers}), got ${JSON.stringify(types)}`);
  const known = ["sliding_attention", "full_attention"];
  const bad = types.find((t) => !known.includes(t));
  if (bad !== undefined) c.fail("layer_types", `has entry ${JSON.stringify(bad)}; supported: ${known.join(", ")}`);
  return (layer) => types[layer] === "sliding_attention";
}

/** The attention biases transformers' Llama reads from `attention_bias` / `mlp_bias`. */
export function llamaBiases(c: ConfigReader): ModelSpec["biases"] {
  const attn = c.bool("attention_bias", false);
  return { qkv: attn, o: attn, mlp: c.bool("mlp_bias", false) };
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

export const LLAMA_ATTENTION: AttentionBlock = {
  proj: { q: "self_attn.q_proj", k: "self_attn.k_proj", v: "self_attn.v_proj" },
  out: "self_attn.o_proj",
};
export const LLAMA_MLP: MlpBlock = { proj: { gate: "mlp.gate_proj", up: "mlp.up_proj" }, down: "mlp.down_proj" };

/** The pre-norm decoder layer: h = x + attn(norm(x)); out = h + mlp(norm(h)). */
export function preNormLayer(attention: AttentionBlock, mlp: MlpBlock) {
  return async (ops: LayerOps, x: Activations): Promise<Activations> => {
    const h = ops.add(x, await ops.attention(ops.norm(x, "input_layernorm"), attention));
    return ops.add(h, await ops.mlp(ops.norm(h, "post_attention_layernorm"), mlp));
  };
}

/** The Llama family's architecture; the other families start from it and state their differences. */
export const llamaLike: Omit<Architecture, "modelTypes" | "config"> = {
  sanitize: llamaSanitize,
  tensors: llamaTensors,
  layout: "nk",
  embedding: "model.embed_tokens.weight",
  finalNorm: "model.norm",
  lmHead: (spec) => (spec.tiedEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"),
  downProjections: (_spec, l) => [{ tensor: `model.layers.${l}.mlp.down_proj.weight` }],
  layerPrefix: (l) => `model.layers.${l}.`,
  layer: preNormLayer(LLAMA_ATTENTION, LLAMA_MLP),
};
