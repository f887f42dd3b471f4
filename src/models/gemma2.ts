// Gemma2: Gemma's GeGLU, (1 + w) RMSNorms and sqrt(hidden) embedding scale, with four norms per layer (each
// block between two: builders.ts sandwichLayer), attention scores scaled by query_pre_attn_scalar^-0.5 and
// soft-capped (cap·tanh(s / cap)) before the mask, soft-capped final logits, and a sliding window on the
// layers layer_types names (older configs, transformers ≤ 4.52: layer i slides iff i is even).
import type { Architecture } from "./architecture.js";
import {
  gemmaSandwichSpec,
  LLAMA_ATTENTION,
  LLAMA_MLP,
  llamaLike,
  sandwichLayer,
  sandwichTensors,
  slidingLayers,
} from "./builders.js";

export const gemma2: Architecture = {
  ...llamaLike,
  modelTypes: ["gemma2"],
  config(c) {
    const slides = slidingLayers(c, c.int("num_hidden_layers"), (l) => l % 2 === 0);
    return gemmaSandwichSpec(c, slides, {
      attnSoftcap: c.positiveOrNull("attn_logit_softcapping", 50),
      finalSoftcap: c.positiveOrNull("final_logit_softcapping", 30),
    });
  },
  tensors: sandwichTensors,
  layer: sandwichLayer(LLAMA_ATTENTION, LLAMA_MLP),
};
