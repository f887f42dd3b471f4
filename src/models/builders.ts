// What the Llama-like families share: the config fields, the tensor table, the sanitize rules and the
// pre-norm decoder layer. Each family's file states only how it differs.
//   h   = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   n1 = norm(x)
//   out = h + down_proj(act(gate_proj(n2)) · up_proj(n2))                    n2 = norm(h)
import type { ConfigReader, ModelSpec } from "./spec.js";
import type { Activations, AttentionBlock, LayerOps, MlpBlock } from "./ops.js";
import type { Architecture } from "./architecture.js";

/** transformers' defaults for the fields whose default a family's config class changes from Llama's. */
export interface LlamaDefaults {
  headDim?: number;
  kvHeads?: number;
  ropeTheta?: number;
  normEps?: number;
  tied?: boolean;
}

/** The config fields every Llama-like model shares; `overrides` carries each family's differences. */
export function llamaLikeSpec(c: ConfigReader, overrides: Partial<ModelSpec> = {}, d: LlamaDefaults = {}): ModelSpec {
  const hidden = c.size("hidden_size");
  const heads = c.size("num_attention_heads");
  if (!c.has("head_dim") && d.headDim === undefined && hidden % heads !== 0)
    c.fail("num_attention_heads", `(${heads}) must divide hidden_size (${hidden}) when head_dim is not given`);
  const headDim = c.size("head_dim", d.headDim ?? hidden / heads);
  let rope = overrides.rope;
  if (!rope) {
    const rotary = c.positive("partial_rotary_factor", 1);
    if (rotary > 1) c.fail("partial_rotary_factor", `must be at most 1, got ${rotary}`);
    const spec = c.rope(Math.floor(headDim * rotary), d.ropeTheta);
    rope = () => spec;
  }
  const vocab = c.size("vocab_size");
  return {
    modelType: c.str("model_type"),
    hidden,
    heads,
    headDim,
    intermediate: c.size("intermediate_size"),
    layers: c.size("num_hidden_layers"),
    kvHeads: divides(c, c.int("num_key_value_heads", d.kvHeads ?? heads), heads),
    vocab,
    norm: "rms",
    normEps: c.eps("rms_norm_eps", d.normEps ?? 1e-6),
    act: overrides.act ?? c.activation(["hidden_act"], "silu"),
    rope,
    maxPositions: c.size("max_position_embeddings", 2048),
    tiedEmbeddings: c.bool("tie_word_embeddings", d.tied ?? false),
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

/** The attention kinds `layer_types` may name. */
export const LAYER_TYPES = ["sliding_attention", "full_attention"];

/** Which layers slide: `layer_types` when config.json has it (every entry checked), else `fallback(layer)`. */
export function slidingLayers(
  c: ConfigReader,
  layers: number,
  fallback: (layer: number) => boolean,
): (layer: number) => boolean {
  const types = c.raw["layer_types"];
  if (types === undefined || types === null) return fallback;
  if (!Array.isArray(types) || types.length !== layers)
    c.fail("layer_types", `must list one entry per layer (${layers}), got ${JSON.stringify(types)}`);
  const bad = types.find((t) => !LAYER_TYPES.includes(t));
  if (bad !== undefined)
    c.fail("layer_types", `has entry ${JSON.stringify(bad)}; supported: ${LAYER_TYPES.join(", ")}`);
  return (layer) => types[layer] === "sliding_attention";
}

/** Families whose attention never slides here: a `layer_types` naming a sliding layer is refused. */
export function fullAttentionOnly(c: ConfigReader, layers: number): void {
  const slides = slidingLayers(c, layers, () => false);
  for (let l = 0; l < layers; l++)
    if (slides(l))
      c.fail("layer_types", `makes layer ${l} sliding: not supported for model_type "${c.str("model_type")}"`);
}

/** Qwen2/Qwen3 slide only with use_sliding_window, in layers ≥ max_window_layers (or as layer_types says). */
export function qwenWindow(c: ConfigReader, layers: number): (layer: number) => number | undefined {
  const from = c.int("max_window_layers", 28);
  const slides = slidingLayers(c, layers, (l) => l >= from);
  const window = c.bool("use_sliding_window", false) ? c.window("sliding_window") : undefined;
  if (window === undefined) return () => undefined;
  return (l) => (slides(l) ? window : undefined);
}

/** The attention biases transformers' Llama reads from `attention_bias` / `mlp_bias`. */
export function llamaBiases(c: ConfigReader): ModelSpec["biases"] {
  const attn = c.bool("attention_bias", false);
  return { qkv: attn, o: attn, mlp: c.bool("mlp_bias", false) };
}

/** `attention_bias` puts biases on q, k, v and o (Qwen3, Gemma2/3, OLMo2, OLMoE); their MLPs have none. */
export function attentionBiases(c: ConfigReader): ModelSpec["biases"] {
  const attn = c.bool("attention_bias", false);
  return { qkv: attn, o: attn, mlp: false };
}

/** Tensor names and shapes of a Llama-layout model (separate q/k/v/o and gate/up/down). */
export function llamaTensors(spec: ModelSpec): Map<string, number[]> {
  const { hidden: H, intermediate: I, heads, kvHeads, headDim: d, vocab: V, biases: bias } = spec;
  const t = new Map<string, number[]>([
    ["model.embed_tokens.weight", [V, H]],
    ["model.norm.weight", [H]],
  ]);
  if (!spec.tiedEmbeddings) t.set("lm_head.weight", [V, H]);
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}.`;
    t.set(p + "input_layernorm.weight", [H]);
    t.set(p + "post_attention_layernorm.weight", [H]);
    const proj: [string, number, number, boolean][] = [
      ["self_attn.q_proj", heads * d, H, bias.qkv],
      ["self_attn.k_proj", kvHeads * d, H, bias.qkv],
      ["self_attn.v_proj", kvHeads * d, H, bias.qkv],
      ["self_attn.o_proj", H, heads * d, bias.o],
      ["mlp.gate_proj", I, H, bias.mlp],
      ["mlp.up_proj", I, H, bias.mlp],
      ["mlp.down_proj", H, I, bias.mlp],
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

/** Every layer's `[name, shape]` entries added to (or, with a null shape, removed from) a tensor table. */
export function editLayers(
  t: Map<string, number[]>,
  spec: ModelSpec,
  entries: (layer: number) => [string, number[] | null][],
): Map<string, number[]> {
  for (let l = 0; l < spec.layers; l++)
    for (const [name, shape] of entries(l)) {
      const full = `model.layers.${l}.${name}.weight`;
      if (shape) t.set(full, shape);
      else t.delete(full);
    }
  return t;
}

/** q_norm / k_norm weights: [head_dim] per head (Qwen3, Gemma3), or over the whole projection (OLMo2, OLMoE). */
export function qkNormTensors(spec: ModelSpec, perHead: boolean): [string, number[]][] {
  const { headDim: d, heads, kvHeads } = spec;
  return [
    ["self_attn.q_norm", [perHead ? d : heads * d]],
    ["self_attn.k_norm", [perHead ? d : kvHeads * d]],
  ];
}

/** Llama's attention with RMS norms on q and k before RoPE. */
export function qkNormAttention(perHead: boolean): AttentionBlock {
  return { ...LLAMA_ATTENTION, qkNorm: { q: "self_attn.q_norm", k: "self_attn.k_norm", perHead } };
}

/** Gemma2/3: each block between two norms.
 *   h = x + post_attention_layernorm(attn(input_layernorm(x)))
 *   out = h + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(h))) */
export function sandwichLayer(attention: AttentionBlock, mlp: MlpBlock) {
  return async (ops: LayerOps, x: Activations): Promise<Activations> => {
    const a = await ops.attention(ops.norm(x, "input_layernorm"), attention);
    const h = ops.add(x, ops.norm(a, "post_attention_layernorm"));
    const m = await ops.mlp(ops.norm(h, "pre_feedforward_layernorm"), mlp);
    return ops.add(h, ops.norm(m, "post_feedforward_layernorm"));
  };
}

/** OLMo2: no norm before a block, one after it: h = x + post_attention_layernorm(attn(x));
 *  out = h + post_feedforward_layernorm(mlp(h)). */
export function postNormLayer(attention: AttentionBlock, mlp: MlpBlock) {
  return async (ops: LayerOps, x: Activations): Promise<Activations> => {
    const h = ops.add(x, ops.norm(await ops.attention(x, attention), "post_attention_layernorm"));
    return ops.add(h, ops.norm(await ops.mlp(h, mlp), "post_feedforward_layernorm"));
  };
}

/** What Gemma2 and Gemma3 read alike ((1 + w) norms, GeGLU, embedding scale, query_pre_attn_scalar, the window);
 * `slides` decides which layers use the sliding window. */
export function gemmaSandwichSpec(
  c: ConfigReader,
  slides: (layer: number) => boolean,
  overrides: Partial<ModelSpec>,
): ModelSpec {
  const window = c.raw["sliding_window"] === undefined ? 4096 : c.window("sliding_window");
  const scale = 1 / Math.sqrt(c.positive("query_pre_attn_scalar", 256));
  return llamaLikeSpec(
    c,
    {
      norm: "rms_plus_one",
      act: c.activation(["hidden_activation"], "gelu_pytorch_tanh"),
      embedScale: Math.fround(Math.sqrt(c.int("hidden_size"))),
      attnScale: () => scale,
      slidingWindow: (l) => (slides(l) ? window : undefined),
      biases: attentionBiases(c),
      ...overrides,
    },
    { headDim: 256, tied: true },
  );
}

/** The tensors of a sandwich-norm layer: Llama's plus the norms around the MLP. */
export function sandwichTensors(spec: ModelSpec): Map<string, number[]> {
  const H = spec.hidden;
  const norms: [string, number[]][] = [
    ["pre_feedforward_layernorm", [H]],
    ["post_feedforward_layernorm", [H]],
  ];
  return editLayers(llamaTensors(spec), spec, () => norms);
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
