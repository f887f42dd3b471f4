// Qwen3 (dense): the Llama layer with an RMSNorm on each head of q and k (weights [head_dim]) after the head
// split and before RoPE; head_dim is explicit (Qwen3Config's default 128, not hidden / heads), and
// attention_bias puts biases on q, k, v and o. Sliding windows as Qwen2 (use_sliding_window).
import type { Architecture } from "./architecture.js";
import {
  attentionBiases,
  editLayers,
  LLAMA_MLP,
  llamaLike,
  llamaLikeSpec,
  llamaTensors,
  preNormLayer,
  qkNormAttention,
  qkNormTensors,
  qwenWindow,
} from "./builders.js";

export const qwen3: Architecture = {
  ...llamaLike,
  modelTypes: ["qwen3"],
  config: (c) => {
    const slidingWindow = qwenWindow(c, c.int("num_hidden_layers"));
    return llamaLikeSpec(c, { slidingWindow, biases: attentionBiases(c) }, { headDim: 128 });
  },
  tensors: (spec) => editLayers(llamaTensors(spec), spec, () => qkNormTensors(spec, true)),
  layer: preNormLayer(qkNormAttention(true), LLAMA_MLP),
};
