// The closed set of operations a decoder layer is written in. Architecture files (one per family) compose
// them; the engine implements them — reading each weight as it is needed, running every variant of the
// model side by side, and firing the hook points — the same for every architecture.
//
// Activations are row-major [rows, width] float32 arrays; names are relative to the layer's prefix
// ("self_attn.q_proj" → "model.layers.3.self_attn.q_proj.weight", plus ".bias" when the model has one).
import type { ModelSpec } from "./spec.js";

export type Activations = Float32Array;

/** The attention block: projections, optional q/k norms, q/k/v clipping, RoPE, causal softmax, output. */
export interface AttentionBlock {
  /** Separate projections, or one fused projection whose columns are [q; k; v]. */
  proj: { q: string; k: string; v: string } | { qkv: string };
  /** The output projection (its output is the `attn_output` hook point). */
  out: string;
  /** RMS norms on q and k (weights `${q}.weight`, `${k}.weight`), before clipping and RoPE: over each
   * head (Qwen3, Gemma3: weight [head_dim]) or over the whole projection (OLMo2, OLMoE). */
  qkNorm?: { q: string; k: string; perHead: boolean };
}

/** The MLP: down(act(gate(x)) · up(x)), down(act(up(x))) without a gate (GPT-2), or a fused [gate; up]. */
export interface MlpBlock {
  proj: { gate: string; up: string } | { gateUp: string } | { up: string };
  /** The down projection: its input and output are the `down_proj_input` / `down_proj_output` hook points. */
  down: string;
}

/** A sparse Mixture-of-Experts block: router logits x·gateᵀ, softmax over all experts, the k best per token. */
export interface ExpertsBlock {
  router: string;
  /** Expert e's gated MLP (each fires the down-projection hook points with its expert index). */
  expert: (e: number) => MlpBlock;
  /** A dense expert on every token, scaled by sigmoid(x·gateᵀ) (Qwen2-MoE); its hooks carry expert "shared". */
  shared?: { mlp: MlpBlock; gate: string };
}

export interface LayerOps {
  readonly spec: ModelSpec;
  readonly layer: number;
  /** The spec's norm with this layer's `${name}.weight` (and `.bias` for LayerNorm). */
  norm(x: Activations, name: string): Activations;
  /** x · Wᵀ (+ b) for this layer's `${name}.weight`. */
  linear(x: Activations, name: string): Promise<Activations>;
  /** Split [rows, Σ widths] into column blocks [rows, width_i]. */
  split(x: Activations, widths: readonly number[]): Activations[];
  attention(x: Activations, block: AttentionBlock): Promise<Activations>;
  mlp(x: Activations, block: MlpBlock): Promise<Activations>;
  experts(x: Activations, block: ExpertsBlock): Promise<Activations>;
  /** residual ← residual + y, returned. */
  add(residual: Activations, y: Activations): Activations;
}
