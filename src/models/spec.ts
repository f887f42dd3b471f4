// A model's resolved configuration: every default decided once, from config.json, so that the forward
// pass never guesses. Readers here fail with the field's name when a value is missing or wrong.
import { CheckpointError } from "../errors.js";
import type { RawConfig } from "../checkpoint/checkpoint.js";
import type { Activation } from "../engine/kernels.js";
import type { RopeSpec } from "../engine/rope.js";

export type NormKind = "rms" | "rms_plus_one" | "layernorm" | "layernorm_no_affine";

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
  /** RoPE, or undefined for learned absolute positions (GPT-2). */
  readonly rope?: RopeSpec;
  readonly maxPositions: number;
  readonly tiedEmbeddings: boolean;
  /** Multiplier applied to the embeddings (Gemma: sqrt(hidden) in float32). */
  readonly embedScale: number;
  /** Attention logits scale (1/sqrt(head_dim), GPT-2 options aside). */
  readonly attnScale: (layer: number) => number;
  readonly slidingWindow?: number;
  readonly clipQkv?: number;
  readonly bosTokenId?: number;
  /** Which linear layers carry a bias (tensors expected in the checkpoint). */
  readonly biases: { readonly qkv: boolean; readonly o: boolean; readonly mlp: boolean };
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

  /** RoPE parameters: rope_theta and rope_scaling (none, "default", "linear" or "llama3"). */
  rope(dim: number): RopeSpec {
    const theta = this.num("rope_theta", 10000);
    const s = this.raw["rope_scaling"] as Record<string, unknown> | null | undefined;
    if (s === undefined || s === null) return { theta, dim };
    if (typeof s !== "object") this.fail("rope_scaling", "must be an object or null");
    const type = (s.rope_type ?? s.type) as string | undefined;
    const num = (k: string): number => {
      if (typeof s[k] !== "number") this.fail(`rope_scaling.${k}`, `is missing or not a number (rope_type "${type}")`);
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
    this.fail("rope_scaling", `has rope_type ${JSON.stringify(type)}; supported: default, linear, llama3`);
  }
}
