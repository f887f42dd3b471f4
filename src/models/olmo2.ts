// OLMo2: post-norm, no norm before attention or MLP (builders.ts postNormLayer), and RMSNorms q_norm / k_norm
// over the whole q and k projections before the head split and RoPE. attention_bias puts biases on q, k, v, o.
import type { Architecture } from "./architecture.js";
import {
  attentionBiases,
  editLayers,
  fullAttentionOnly,
  LLAMA_MLP,
  llamaLike,
  llamaLikeSpec,
  llamaTensors,
  postNormLayer,
  qkNormAttention,
  qkNormTensors,
} from "./builders.js";

export const olmo2: Architecture = {
  ...llamaLike,
  modelTypes: ["olmo2"],
  config(c) {
    fullAttentionOnly(c, c.int("num_hidden_layers"));
    return llamaLikeSpec(c, { biases: attentionBiases(c) }, { normEps: 1e-5 });
  },
  tensors: (spec) =>
    editLayers(llamaTensors(spec), spec, () => [
      ["input_layernorm", null],
      ["post_feedforward_layernorm", [spec.hidden]],
      ...qkNormTensors(spec, false),
    ]),
  layer: postNormLayer(qkNormAttention(false), LLAMA_MLP),
};
