// Gemma3 (text): Gemma2's layer (builders.ts sandwichLayer) without soft-capping unless configured, plus a
// per-head (1 + w) RMSNorm on q and k before RoPE. Sliding layers use RoPE base rope_local_base_freq without
// scaling, full layers rope_theta with rope_scaling; transformers ≥ 5 writes both as `rope_parameters`, one
// entry per layer type. Which layers slide: layer_types, else (≤ 4.52) layer i slides iff
// (i + 1) % sliding_window_pattern ≠ 0 (default 6; 4.53–4.55 save it as `_sliding_window_pattern`).
import type { Architecture } from "./architecture.js";
import type { ConfigReader, RopeSpec } from "./spec.js";
import {
  editLayers,
  gemmaSandwichSpec,
  LAYER_TYPES,
  LLAMA_MLP,
  llamaLike,
  qkNormAttention,
  qkNormTensors,
  sandwichLayer,
  sandwichTensors,
  slidingLayers,
} from "./builders.js";

/** [sliding layers' RoPE, full layers' RoPE]. */
function gemma3Rope(c: ConfigReader, dim: number): [RopeSpec, RopeSpec] {
  const params = c.object("rope_parameters");
  if (!params) return [{ theta: c.num("rope_local_base_freq", 10000), dim }, c.rope(dim, 1e6)];
  const bad = Object.keys(params).find((k) => !LAYER_TYPES.includes(k));
  if (bad !== undefined)
    c.fail("rope_parameters", `has entry "${bad}"; Gemma3 gives one per layer type: ${LAYER_TYPES.join(", ")}`);
  if (c.has("rope_scaling")) c.fail("rope_parameters", `and "rope_scaling" are both set: refusing to guess`);
  const entry = (type: string, legacy: string, fallback: number) => {
    const theta = c.num(legacy, fallback);
    const rope = c.ropeFrom(dim, params[type], `rope_parameters.${type}`, theta);
    if (c.has(legacy) && rope.theta !== theta)
      c.fail(`rope_parameters.${type}.rope_theta`, `(${rope.theta}) disagrees with "${legacy}" (${theta})`);
    return rope;
  };
  return [entry("sliding_attention", "rope_local_base_freq", 10000), entry("full_attention", "rope_theta", 1e6)];
}

export const gemma3: Architecture = {
  ...llamaLike,
  modelTypes: ["gemma3_text"],
  config(c) {
    if (c.bool("use_bidirectional_attention", false))
      c.fail("use_bidirectional_attention", "is true: bidirectional (embedding-model) attention is not supported");
    const pattern = c.intEither(["sliding_window_pattern", "_sliding_window_pattern"], 6);
    if (pattern === 0) c.fail("sliding_window_pattern", "must be at least 1");
    const slides = slidingLayers(c, c.int("num_hidden_layers"), (l) => (l + 1) % pattern !== 0);
    const [local, global] = gemma3Rope(c, c.int("head_dim", 256));
    return gemmaSandwichSpec(c, slides, {
      rope: (l) => (slides(l) ? local : global),
      attnSoftcap: c.positiveOrNull("attn_logit_softcapping"),
      finalSoftcap: c.positiveOrNull("final_logit_softcapping"),
    });
  },
  tensors: (spec) => editLayers(sandwichTensors(spec), spec, () => qkNormTensors(spec, true)),
  layer: sandwichLayer(qkNormAttention(true), LLAMA_MLP),
};
