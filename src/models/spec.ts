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
  constructor(
    readonly raw: RawConfig,
    readonly file: string,
  ) {}

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
    if (!Number.isInteger(v) || (v as number) < 1)
      this.fail(field, `must be a positive integer or null, got ${JSON.stringify(v)}`);
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
    if (typeof v !== "string")
      this.fail(field, v === undefined ? "is missing" : `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** One activation from either of two field names; both present and different is ambiguous. */
  activation(fields: string[], fallback?: string): Activation {
    const given = fields.filter((f) => this.has(f));
    const values = [...new Set(given.map((f) => this.str(f)))];
    if (values.length > 1)
      this.fail(given.join(`" and "`), `disagree (${values.join(" vs ")}): refusing to guess the activation`);
    const name = values[0] ?? fallback;
    if (name === undefined) this.fail(fields[0], "is missing");
    const known: Record<string, Activation> = {
      silu: "silu",
      swish: "silu",
      gelu_pytorch_tanh: "gelu_tanh",
      gelu_new: "gelu_tanh",
      gelu: "gelu",
    };
    const act = known[name];
    if (!act)
      this.fail(given[0] ?? fields[0], `names activation "${name}"; supported: ${Object.keys(known).join(", ")}`);
    return act;
  }

  /** A number that can be switched off: absent → `fallback` (transformers' default), null → undefined. */
  numOrNull(field: string, fallback?: number): number | undefined {
    const v = this.raw[field];
    if (v === undefined) return fallback;
    return v === null ? undefined : this.num(field);
  }

  /** A positive number that can be switched off (a soft cap, a clip, a window): absent → `fallback`, null → none. */
  positiveOrNull(field: string, fallback?: number): number | undefined {
    const v = this.numOrNull(field, fallback);
    if (v !== undefined && !(v > 0)) this.fail(field, `must be greater than 0 or null, got ${v}`);
    return v;
  }

  /** An integer spelled two ways (older and newer transformers); both present and different is ambiguous. */
  intEither(fields: readonly string[], fallback?: number): number {
    const given = fields.filter((f) => this.has(f));
    const values = [...new Set(given.map((f) => this.int(f)))];
    if (values.length > 1) this.fail(given.join(`" and "`), `disagree (${values.join(" vs ")}): refusing to guess`);
    return values[0] ?? this.int(fields[0], fallback);
  }

  /** A list of non-negative integers below `limit`; absent or null → []. */
  intList(field: string, limit: number): number[] {
    const v = this.raw[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0 && x < limit))
      this.fail(field, `must be a list of integers in 0..${limit - 1}, got ${JSON.stringify(v)}`);
    return v as number[];
  }

  /** An object field (absent or null → undefined). */
  object(field: string): Record<string, unknown> | undefined {
    const v = this.raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) this.fail(field, `must be an object, got ${JSON.stringify(v)}`);
    return v as Record<string, unknown>;
  }

  /**
   * RoPE parameters: transformers ≥ 5's `rope_parameters` ({rope_type, rope_theta, ...}), or the older
   * rope_theta + rope_scaling. Both spellings at once are refused unless they agree on rope_theta.
   */
  rope(dim: number, defaultTheta = 10000): RopeSpec {
    const params = this.object("rope_parameters");
    const theta = this.positive("rope_theta", defaultTheta);
    if (!params) return this.ropeFrom(dim, this.raw["rope_scaling"], "rope_scaling", theta);
    if (this.has("rope_scaling")) this.fail("rope_parameters", `and "rope_scaling" are both set: refusing to guess`);
    if (this.has("rope_theta") && params.rope_theta !== undefined && params.rope_theta !== theta)
      this.fail("rope_parameters.rope_theta", `(${params.rope_theta}) disagrees with "rope_theta" (${theta})`);
    return this.ropeFrom(dim, params, "rope_parameters", theta);
  }

  /**
   * RoPE from one parameter object `s` read from `field`: rope_scaling, a rope_parameters object or one of its
   * per-layer-type entries (whose own rope_theta then wins over `theta`). Types: none, "default", "linear",
   * "llama3", "frequency_factors"; any other is refused, naming the field.
   */
  ropeFrom(dim: number, value: unknown, field: string, theta: number): RopeSpec {
    if (!(dim >= 2 && dim % 2 === 0))
      this.fail("head_dim", `gives ${dim} rotary dimensions per head; RoPE needs an even number ≥ 2`);
    if (value === undefined || value === null) return { theta, dim };
    if (typeof value !== "object" || Array.isArray(value)) this.fail(field, "must be an object or null");
    const s = value as Record<string, unknown>;
    const num = (k: string): number => {
      const v = s[k];
      if (v === undefined || v === null) this.fail(`${field}.${k}`, `is missing (rope_type "${type}" needs it)`);
      if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v))
        this.fail(`${field}.${k}`, `must be a number greater than 0 (rope_type "${type}"), got ${JSON.stringify(v)}`);
      return v;
    };
    const type = (s.rope_type ?? s.type) as string | undefined;
    if (s.rope_theta !== undefined) theta = num("rope_theta");
    if (s.partial_rotary_factor !== undefined && s.partial_rotary_factor !== 1)
      this.fail(`${field}.partial_rotary_factor`, "is not supported inside the RoPE parameters");
    if (type === "default") return { theta, dim };
    if (type === "linear") return { theta, dim, scaling: { type: "linear", factor: num("factor") } };
    if (type === "llama3") {
      if (!(num("high_freq_factor") > num("low_freq_factor")))
        this.fail(`${field}.high_freq_factor`, "must be greater than low_freq_factor");
      return {
        theta,
        dim,
        scaling: {
          type: "llama3",
          factor: num("factor"),
          lowFreqFactor: num("low_freq_factor"),
          highFreqFactor: num("high_freq_factor"),
          originalMaxPositions: num("original_max_position_embeddings"),
        },
      };
    }
    if (type === "frequency_factors") {
      const f = s.factors;
      if (!Array.isArray(f) || f.length !== dim / 2 || !f.every((x) => typeof x === "number" && x > 0))
        this.fail(`${field}.factors`, `must be ${dim / 2} positive numbers`);
      return { theta, dim, scaling: { type: "frequency_factors", factors: f as number[] } };
    }
    if (type === undefined) this.fail(field, `has no "rope_type" (or "type"); supported: default, linear, llama3`);
    this.fail(field, `has rope_type ${JSON.stringify(type)}; supported: default, linear, llama3`);
  }
}
