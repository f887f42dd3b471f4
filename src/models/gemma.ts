// Gemma (1): the Llama layer with GeGLU (tanh GELU), RMSNorm scaled by (1 + w), embeddings multiplied
// by sqrt(hidden) (the factor itself a float32), an explicit head_dim, and a tied head.
import type { Architecture } from "../engine/model.js";
import { llama, llamaLikeSpec } from "./llama.js";

export const gemma: Architecture = {
  ...llama,
  modelTypes: ["gemma"],
  config(c) {
    const hidden = c.int("hidden_size");
    return llamaLikeSpec(c, {
      norm: "rms_plus_one",
      act: c.activation(["hidden_activation", "hidden_act"], "gelu_pytorch_tanh"),
      embedScale: Math.fround(Math.sqrt(hidden)),
      tiedEmbeddings: c.bool("tie_word_embeddings", true),
    });
  },
};
