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

/** The largest size a config field may give (a tensor dimension, a layer count). */
const MAX_SIZE = 2 ** 31 - 1;

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
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_SIZE)
      this.fail(field, `must be an integer from 0 to ${MAX_SIZE}, got ${JSON.stringify(v)}`);
    return v as number;
  }

  /** A size that must be at least 1. */
  size(field: string, fallback?: number): number {
    const v = this.int(field, fallback);
    if (v < 1) this.fail(field, `must be at least 1, got ${v}`);
    return v;
  }

  /** A number that must be > 0 (rope_theta, scaling factors, caps). */
  positive(field: string, fallback?: number): number {
    const v = this.num(field, fallback);
    if (!(v > 0)) this.fail(field, `must be greater than 0, got ${v}`);
    return v;
  }

  /** A sliding window: a positive integer, or absent / null for none. */
  window(field: string): number | undefined {
    if (!this.has(field)) return undefined;
    const v = this.raw[field];
    if (!Number.isInteger(v) || (v as number) < 1) this.fail(field, `must be a positive integer or null, got ${JSON.stringify(v)}`);
    return v as number;
  }

  /** An epsilon: finite and ≥ 0. */
  eps(field: string, fallback: number): number {
    const v = this.num(field, fallback);
    if (v < 0) this.fail(field, `must not be negative, got ${v}`);
    return v;
  }

  /** bos_token_id when given: a token of the vocabulary. */
  bos(vocab: number): number | undefined {
    if (!this.has("bos_token_id")) return undefined;
    const id = this.int("bos_token_id");
    if (id >= vocab) this.fail("bos_token_id", `(${id}) is outside the vocabulary (vocab_size ${vocab})`);
    return id;
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
  rope(dim: number, theta = this.positive("rope_theta", 10000), scalingField = "rope_scaling"): RopeSpec {
    if (!(dim >= 2 && dim % 2 === 0)) this.fail("head_dim", `gives ${dim} rotary dimensions per head; RoPE needs an even number ≥ 2`);
    const s = this.raw[scalingField] as Record<string, unknown> | null | undefined;
    if (s === undefined || s === null) return { theta, dim };
    if (typeof s !== "object") this.fail(scalingField, "must be an object or null");
    const type = (s.rope_type ?? s.type) as string | undefined;
    const num = (k: string): number => {
      const v = s[k];
      if (v === undefined || v === null) this.fail(`${scalingField}.${k}`, `is missing (rope_type "${type}" needs it)`);
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) this.fail(`${scalingField}.${k}`, `must be a number greater than 0 (rope_type "${type}"), got ${JSON.stringify(v)}`);
      return v;
    };
    if (type === "default") return { theta, dim };
    if (type === "linear") return { theta, dim, scaling: { type: "linear", factor: num("factor") } };
    if (type === "llama3") {
      if (!(num("high_freq_factor") > num("low_freq_factor"))) this.fail(`${scalingField}.high_freq_factor`, "must be greater than low_freq_factor");
      return {
        theta, dim,
        scaling: {
          type: "llama3", factor: num("factor"), lowFreqFactor: num("low_freq_factor"),
          highFreqFactor: num("high_freq_factor"), originalMaxPositions: num("original_max_position_embeddings"),
        },
      };
    }
    if (type === "frequency_factors") {
      const f = s.factors;
      if (!Array.isArray(f) || f.length !== dim / 2 || !f.every((x) => typeof x === "number" && x > 0))
        this.fail(`${scalingField}.factors`, `must be ${dim / 2} positive numbers`);
      return { theta, dim, scaling: { type: "frequency_factors", factors: f as number[] } };
    }
    if (type === undefined) this.fail(scalingField, `has no "rope_type" (or "type"); supported: default, linear, llama3`);
    this.fail(scalingField, `has rope_type ${JSON.stringify(type)}; supported: default, linear, llama3`);
  }
}
