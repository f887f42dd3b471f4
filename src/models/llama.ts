// Llama 1/2/3 (GQA, Llama-3.1 rope_scaling), Mistral (sliding window) and Qwen2 (q/k/v bias), all the
// pre-norm decoder layer of builders.ts. What differs is read from config.json as transformers reads it.
import type { Architecture } from "./architecture.js";
import { llamaBiases, llamaLike, llamaLikeSpec, qwenWindow } from "./builders.js";

export const llama: Architecture = {
  ...llamaLike,
  modelTypes: ["llama", "mistral", "qwen2"],
  config(c) {
    const type = c.str("model_type");
    const layers = c.int("num_hidden_layers");
    if (type === "mistral") {
      // Mistral slides in every layer; MistralConfig's default window is 4096 (null: none).
      const window = c.raw["sliding_window"] === undefined ? 4096 : c.window("sliding_window");
      return llamaLikeSpec(c, { slidingWindow: () => window, biases: llamaBiases(c) });
    }
    if (type === "qwen2") {
      return llamaLikeSpec(c, { slidingWindow: qwenWindow(c, layers), biases: { qkv: true, o: false, mlp: false } });
    }
    return llamaLikeSpec(c, { biases: llamaBiases(c) });
  },
};
