// Llama 1/2/3 (GQA, Llama-3.1 rope_scaling), Mistral (sliding window) and Qwen2 (q/k/v bias), all the
// pre-norm decoder layer of builders.ts. What differs is read from config.json as transformers reads it.
import type { Architecture } from "./architecture.js";
import type { ConfigReader } from "./spec.js";
import { llamaBiases, llamaLike, llamaLikeSpec, slidingLayers } from "./builders.js";

/** Mistral slides in every layer; its config's default window is 4096 (null: none), as MistralConfig says. */
function mistralWindow(c: ConfigReader): (layer: number) => number | undefined {
  const window = c.raw["sliding_window"] === undefined ? 4096 : c.window("sliding_window");
  return () => window;
}

/** Qwen2 slides only with use_sliding_window, in layers ≥ max_window_layers (or as layer_types says). */
function qwen2Window(c: ConfigReader, layers: number): (layer: number) => number | undefined {
  const window = c.bool("use_sliding_window", false) ? c.window("sliding_window") : undefined;
  if (window === undefined) return () => undefined;
  const from = c.int("max_window_layers", 28);
  const slides = slidingLayers(c, layers, (l) => l >= from);
  return (l) => (slides(l) ? window : undefined);
}

export const llama: Architecture = {
  ...llamaLike,
  modelTypes: ["llama", "mistral", "qwen2"],
  config(c) {
    const type = c.str("model_type");
    const layers = c.int("num_hidden_layers");
    if (type === "mistral") return llamaLikeSpec(c, { slidingWindow: mistralWindow(c), biases: llamaBiases(c) });
    if (type === "qwen2") return llamaLikeSpec(c, { slidingWindow: qwen2Window(c, layers), biases: { qkv: true, o: false, mlp: false } });
    return llamaLikeSpec(c, { biases: llamaBiases(c) });
  },
};
