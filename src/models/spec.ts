// A model's resolved configuration: every default decided once, from config.json, so that the forward
// pass never guesses. Readers here fail with the field's name when a value is missing or wrong.
import { CheckpointError } from "../errors.js";

/** config.json as parsed (or rebuilt from a file's metadata). */
export type RawConfig = Record<string, unknown>;

export type NormKind = "rms" | "rms_plus_one" | "layernorm" | "layernorm_no_affine";
export type Activation = "silu" | "gelu_tanh" | "gelu";

/** Rotary position embeddings: rotate-half pairs (i, i + dim/2) in each head. */
export interface RopeSpec {
  theta: number;
  /** Rotated dims per head (head_dim unless a partial rotary factor says less). */
  dim: number;
  /** Llama-3.1's frequency rescaling, plain linear position scaling, or per-frequency divisors (GGUF's rope_freqs). */
  scaling?:
    | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
    | { type: "linear"; factor: number }
    | { type: "frequency_factors"; factors: readonly number[] };
}

/** A sparse Mixture-of-Experts block: a router over `count` experts, the `topK` best per token. */
export interface ExpertsSpec {
  count: number;
  topK: number;
  /** Divide the k routing probabilities by their sum (Mixtral always; others by norm_topk_prob). */
  renormalize: boolean;
  /** Each expert's inner width. */
  intermediate: number;
  /** A shared expert on every token, with a sigmoid gate (Qwen2-MoE): its inner width. */
  sharedIntermediate?: number;
  /** Whether layer l has the sparse block (else a dense MLP of width `ModelSpec.intermediate`). */
  sparse(layer: number): boolean;
}

export interface ModelSpec {
  readonly modelType: string;
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly vocab: number;
  readonly norm: NormKind;
  readonly normEps: number;
  readonly act: Activation;
  /** RoPE of layer l, or undefined for learned absolute positions (GPT-2). */
  readonly rope: (layer: number) => RopeSpec | undefined;
  readonly maxPositions: number;
  readonly tiedEmbeddings: boolean;
  /** Multiplier applied to the embeddings (Gemma: sqrt(hidden) in float32). */
  readonly embedScale: number;
  /** Attention logits scale of layer l (1/sqrt(head_dim), GPT-2 and Gemma2 options aside). */
  readonly attnScale: (layer: number) => number;
  /** Keys more than `window − 1` positions back are masked in layer l (undefined: full causal attention). */
  readonly slidingWindow: (layer: number) => number | undefined;
  /** cap·tanh(x / cap) on attention scores and on the final logits (Gemma2). */
  readonly attnSoftcap?: number;
  readonly finalSoftcap?: number;
  readonly clipQkv?: number;
  readonly bosTokenId?: number;
  /** Which linear layers carry a bias (tensors expected in the checkpoint). */
  readonly biases: { readonly qkv: boolean; readonly o: boolean; readonly mlp: boolean };
  readonly experts?: ExpertsSpec;
}

/** Typed access to config.json fields; errors name the file and the field. */
export class ConfigReader {
  constructor(readonly raw: RawConfig, readonly file: string) {}

  fail(field: string, msg: string): never {
    throw new CheckpointError(this.file, `field "${field}" ${msg}`, "BAD_CONFIG");
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  int(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (v === undefined || v === null) this.fail(field, "is missing");
    if (!Number.isInteger(v) || (v as number) < 0) this.fail(field, `must be a non-negative integer, got ${JSON.stringify(v)}`);
    return v as number;
  }

  num(field: string, fallback?: number): number {
    const v = this.raw[field] ?? fallback;
    if (v === undefined || v === null) this.fail(field, "is missing");
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(field, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  optNum(field: string): number | undefined {
    return this.has(field) ? this.num(field) : undefined;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(field: string, fallback?: string): string {
    const v = this.raw[field] ?? fallback;
    if (typeof v !== "string") this.fail(field, v === undefined ? "is missing" : `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** One activation from either of two field names; both present and different is ambiguous. */
  activation(fields: string[], fallback?: string): Activation {
    const given = fields.filter((f) => this.has(f));
    const values = [...new Set(given.map((f) => this.str(f)))];
    if (values.length > 1) this.fail(given.join(`" and "`), `disagree (${values.join(" vs ")}): refusing to guess the activation`);
    const name = values[0] ?? fallback;
    if (name === undefined) this.fail(fields[0], "is missing");
    const known: Record<string, Activation> = {
      silu: "silu", swish: "silu",
      gelu_pytorch_tanh: "gelu_tanh", gelu_new: "gelu_tanh",
      gelu: "gelu",
    };
    const act = known[name];
    if (!act) this.fail(given[0] ?? fields[0], `names activation "${name}"; supported: ${Object.keys(known).join(", ")}`);
    return act;
  }

  /** RoPE parameters: rope_theta and rope_scaling (none, "default", "linear", "llama3" or "frequency_factors"). */
  rope(dim: number, theta = this.num("rope_theta", 10000), scalingField = "rope_scaling"): RopeSpec {
    const s = this.raw[scalingField] as Record<string, unknown> | null | undefined;
    if (s === undefined || s === null) return { theta, dim };
    if (typeof s !== "object") this.fail(scalingField, "must be an object or null");
    const type = (s.rope_type ?? s.type) as string | undefined;
    const num = (k: string): number => {
      if (typeof s[k] !== "number") this.fail(`${scalingField}.${k}`, `is missing or not a number (rope_type "${type}")`);
      return s[k] as number;
    };
    if (type === "default") return { theta, dim };
    if (type === "linear") return { theta, dim, scaling: { type: "linear", factor: num("factor") } };
    if (type === "llama3")
      return {
        theta, dim,
        scaling: {
          type: "llama3", factor: num("factor"), lowFreqFactor: num("low_freq_factor"),
          highFreqFactor: num("high_freq_factor"), originalMaxPositions: num("original_max_position_embeddings"),
        },
      };
    if (type === "frequency_factors") {
      const f = s.factors;
      if (!Array.isArray(f) || f.length !== dim / 2 || !f.every((x) => typeof x === "number" && x > 0))
        this.fail(`${scalingField}.factors`, `must be ${dim / 2} positive numbers`);
      return { theta, dim, scaling: { type: "frequency_factors", factors: f as number[] } };
    }
    this.fail(scalingField, `has rope_type ${JSON.stringify(type)}; supported: default, linear, llama3`);
  }
}
