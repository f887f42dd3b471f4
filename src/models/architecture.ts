// What one architecture family supplies (one short file each in this folder): how its config reads, how its
// tensors are named and shaped, and its decoder layer written in the operations of ops.ts.
import type { ConfigReader, ModelSpec } from "./spec.js";
import type { Activations, LayerOps } from "./ops.js";

/** A down projection the paper's rule watches: a dense layer's, or one expert's (then `expert` is set). */
export interface DownProjection {
  tensor: string;
  expert?: number | "shared";
}

export interface Architecture {
  readonly modelTypes: readonly string[];
  /** config.json → resolved spec. */
  config(c: ConfigReader): ModelSpec;
  /** Stored tensor name → canonical (transformers module) name, or null for a buffer to ignore. */
  sanitize(stored: string, spec: ModelSpec): string | null;
  /** Every tensor the spec implies, canonical name → shape (as Hugging Face stores it). */
  tensors(spec: ModelSpec): Map<string, number[]>;
  /** How linear weights are stored: [out, in] ("nk") or GPT-2's Conv1D [in, out] ("kn"). */
  readonly layout: "nk" | "kn";
  readonly embedding: string;
  readonly positionEmbedding?: string;
  /** Prefix of the final norm's weight/bias (without ".weight"). */
  readonly finalNorm: string;
  lmHead(spec: ModelSpec): string;
  /** Layer L's down projections (dense: one; sparse MoE: one per expert, plus a shared expert). */
  downProjections(spec: ModelSpec, layer: number): DownProjection[];
  /** Prefix of layer L's tensors, e.g. "model.layers.3.". */
  layerPrefix(layer: number): string;
  /** One decoder layer: residual in, residual out. */
  layer(ops: LayerOps, x: Activations): Promise<Activations>;
}
