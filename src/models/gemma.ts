// Gemma (1): the Llama layer with GeGLU (tanh GELU), RMSNorm scaled by (1 + w), embeddings multiplied
// by sqrt(hidden) (the factor itself a float32), an explicit head_dim, and a tied head.
import type { Architecture } from "./architecture.js";
import { llamaLike, llamaLikeSpec } from "./builders.js";

export const gemma: Architecture = {
  ...llamaLike,
  modelTypes: ["gemma"],
  config(c) {
    const hidden = c.int("hidden_size");
    return llamaLikeSpec(c, {
      norm: "rms_plus_one",
      // Gemma is a tanh-GELU model. Its 1.0 configs say hidden_act "gelu" (wrongly) and 1.1 adds
      // hidden_activation "gelu_pytorch_tanh" beside it; transformers' Gemma reads hidden_activation
      // and, when it is absent, uses gelu_pytorch_tanh (huggingface/transformers#29402). So do we.
      act: c.activation(["hidden_activation"], "gelu_pytorch_tanh"),
      embedScale: Math.fround(Math.sqrt(hidden)),
      tiedEmbeddings: c.bool("tie_word_embeddings", true),
    });
  },
};
