// What a model becomes in GGUF, decided as llama.cpp's convert_hf_to_gguf.py decides it (the reading direction,
// source.ts, undoes each of these): the architecture's metadata keys in the converter's order, the canonical
// tensor names (source.ts's name maps, inverted), each tensor's ne (HF's shape reversed) and the transform that
// gives the stored values:
//   - permute: Llama / OLMo q_proj and k_proj rows (and biases), rotate-half pairs (i, i + d/2) → adjacent pairs;
//   - plus_one: Gemma's RMSNorm weights stored as w + 1 (float32);
//   - transpose: a [in, out] weight (GPT-2's Conv1D) stored as the [out, in] matrix;
//   - generated: rope_freqs.weight from Llama-3.1's rope_scaling (no HF tensor; the converter's formula).
// What llama.cpp cannot express for an architecture (another activation, attention scale, RoPE kind, experts) is
// refused here, before anything is written; what it expresses but ignores (Mistral's window) becomes a note.
import { CheckpointError } from "../errors.js";
import type { Model } from "../engine/model.js";
import type { ModelSpec, RopeSpec } from "../models/spec.js";
import type { GgufKv } from "../gguf/container.js";
import { NAME_MAPS, type NameMap } from "../gguf/source.js";

/** HF model_type → GGUF general.architecture (the converter writes Mistral as llama). */
const GGUF_ARCH: Record<string, string> = {
  llama: "llama",
  mistral: "llama",
  qwen2: "qwen2",
  phi3: "phi3",
  gemma: "gemma",
  olmo: "olmo",
  gpt2: "gpt2",
};
export const EXPORTABLE_MODEL_TYPES = Object.keys(GGUF_ARCH);

/** The activation llama.cpp's graph for each architecture applies. */
const ACTIVATION: Record<string, ModelSpec["act"]> = {
  llama: "silu",
  qwen2: "silu",
  phi3: "silu",
  olmo: "silu",
  gemma: "gelu_tanh",
  gpt2: "gelu_tanh",
};

export type TensorTransform = "none" | "permute" | "plus_one" | "transpose" | "generated";

export interface PlannedTensor {
  /** GGUF name. */
  name: string;
  /** The model's tensor (canonical Hugging Face name); absent for a generated one. */
  hf?: string;
  /** ne0 (contiguous) first. */
  ne: number[];
  transform: TensorTransform;
  /** Heads of a permuted projection. */
  heads?: number;
  /** A generated tensor's values. */
  values?: Float32Array;
}

export interface ArchitecturePlan {
  /** general.architecture */
  arch: string;
  /** `{arch}.*` keys and general.file_type (value filled in by the caller) in the converter's order. */
  metadata: [string, GgufKv][];
  tensors: PlannedTensor[];
  /** Things llama.cpp will do differently from the checkpoint's own semantics. */
  notes: string[];
}

export const FILE_TYPE_KEY = "general.file_type";

/** The GGUF layout of a model; throws a CheckpointError for anything llama.cpp could not run as the model runs. */
export function planArchitecture(model: Model): ArchitecturePlan {
  const { spec } = model;
  const refuse = (msg: string): never => {
    throw new CheckpointError(model.path, `cannot be written as GGUF: ${msg}`, "GGUF_EXPORT_UNSUPPORTED");
  };
  const arch = GGUF_ARCH[spec.modelType];
  if (!arch)
    refuse(`model_type "${spec.modelType}" has no GGUF export here (supported: ${EXPORTABLE_MODEL_TYPES.join(", ")})`);
  if (spec.experts) refuse("Mixture-of-Experts layers are not supported");
  if (spec.act !== ACTIVATION[arch]) refuse(`llama.cpp's ${arch} uses ${ACTIVATION[arch]}, this model ${spec.act}`);
  for (let l = 0; l < spec.layers; l++) {
    if (Math.abs(spec.attnScale(l) * Math.sqrt(spec.headDim) - 1) > 1e-12)
      refuse(`layer ${l} scales attention scores by ${spec.attnScale(l)}, llama.cpp by 1/sqrt(head_dim)`);
    if (!sameRope(spec.rope(l), spec.rope(0))) refuse(`layer ${l} has other RoPE parameters than layer 0`);
    if (spec.slidingWindow(l) !== spec.slidingWindow(0)) refuse("the sliding window differs between layers");
  }
  if (spec.attnSoftcap !== undefined || spec.finalSoftcap !== undefined) refuse("logit softcapping");
  const notes: string[] = [];
  const metadata = archMetadata(model, arch, refuse, notes);
  const tensors = planTensors(model, arch, refuse);
  return { arch, metadata, tensors, notes };
}

function sameRope(a: RopeSpec | undefined, b: RopeSpec | undefined): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

const u32 = (value: number): GgufKv => ({ type: "UINT32", value });
const f32 = (value: number): GgufKv => ({ type: "FLOAT32", value: Math.fround(value) });

function archMetadata(model: Model, arch: string, refuse: (m: string) => never, notes: string[]): [string, GgufKv][] {
  const { spec } = model;
  const raw = model.source.config;
  const rope = spec.rope(0);
  const out: [string, GgufKv][] = [];
  const put = (key: string, kv: GgufKv) => out.push([key === FILE_TYPE_KEY ? key : `${arch}.${key}`, kv]);
  const fileType = () => put(FILE_TYPE_KEY, u32(0));
  const headDim = () => {
    // the converter writes head_dim when config.json gives it; llama.cpp needs it when it is not hidden / heads
    if (raw.head_dim !== undefined || spec.headDim * spec.heads !== spec.hidden) {
      put("attention.key_length", u32(spec.headDim));
      put("attention.value_length", u32(spec.headDim));
    }
  };
  const ropeScaling = () => {
    const s = rope?.scaling;
    if (s?.type === "linear") {
      put("rope.scaling.type", { type: "STRING", value: "linear" });
      put("rope.scaling.factor", f32(s.factor));
    } else if (s && arch !== "llama") refuse(`llama.cpp's ${arch} has no ${s.type} RoPE scaling`);
  };
  const base = () => {
    put("block_count", u32(spec.layers));
    put("context_length", u32(spec.maxPositions));
    put("embedding_length", u32(spec.hidden));
    put("feed_forward_length", u32(spec.intermediate));
    put("attention.head_count", u32(spec.heads));
    put("attention.head_count_kv", u32(spec.kvHeads));
    ropeScaling();
    put("rope.freq_base", f32(rope!.theta));
    put("attention.layer_norm_rms_epsilon", f32(spec.normEps));
  };
  const window = spec.slidingWindow(0);
  if (window !== undefined && arch !== "phi3" && arch !== "llama")
    refuse(`llama.cpp's ${arch} has no sliding-window attention (window ${window})`);

  if (arch === "llama" || arch === "qwen2") {
    base();
    headDim();
    fileType();
    if (arch === "llama") {
      put("vocab_size", u32(spec.vocab));
      put("rope.dimension_count", u32(rope!.dim));
      if (window !== undefined) {
        // read back by source.ts (→ model_type mistral); llama.cpp's llama attends to every earlier token
        put("attention.sliding_window", u32(window));
        notes.push(
          `llama.cpp ignores the sliding window of ${window} tokens: ` + "longer sequences differ from the checkpoint",
        );
      }
    } else if (rope!.dim !== spec.headDim) put("rope.dimension_count", u32(rope!.dim));
  } else if (arch === "olmo") {
    if (spec.normEps !== 1e-5) refuse(`OLMo's LayerNorm epsilon is ${spec.normEps}; llama.cpp's is 1e-5`);
    put("block_count", u32(spec.layers));
    put("context_length", u32(spec.maxPositions));
    put("embedding_length", u32(spec.hidden));
    put("feed_forward_length", u32(spec.intermediate));
    put("attention.head_count", u32(spec.heads));
    put("attention.head_count_kv", u32(spec.kvHeads));
    ropeScaling();
    put("rope.freq_base", f32(rope!.theta));
    headDim();
    fileType();
    put("attention.layer_norm_epsilon", f32(1e-5));
    if (spec.clipQkv !== undefined) put("attention.clamp_kqv", f32(spec.clipQkv));
  } else if (arch === "phi3") {
    const original = raw.original_max_position_embeddings;
    put("context_length", u32(spec.maxPositions));
    const originalContext = Number.isInteger(original) ? (original as number) : spec.maxPositions;
    put("rope.scaling.original_context_length", u32(originalContext));
    put("embedding_length", u32(spec.hidden));
    put("feed_forward_length", u32(spec.intermediate));
    put("block_count", u32(spec.layers));
    put("attention.head_count", u32(spec.heads));
    put("attention.head_count_kv", u32(spec.kvHeads));
    put("attention.layer_norm_rms_epsilon", f32(spec.normEps));
    put("rope.dimension_count", u32(rope!.dim));
    ropeScaling();
    put("rope.freq_base", f32(rope!.theta));
    fileType();
    put("attention.sliding_window", u32(window ?? 0));
  } else if (arch === "gemma") {
    put("context_length", u32(spec.maxPositions));
    put("embedding_length", u32(spec.hidden));
    put("block_count", u32(spec.layers));
    put("feed_forward_length", u32(spec.intermediate));
    put("attention.head_count", u32(spec.heads));
    put("attention.head_count_kv", u32(spec.kvHeads));
    put("attention.layer_norm_rms_epsilon", f32(spec.normEps));
    put("attention.key_length", u32(spec.headDim));
    put("attention.value_length", u32(spec.headDim));
    ropeScaling();
    // the converter writes no base for Gemma (llama.cpp's default is 10000); one that differs is kept
    if (rope!.theta !== 10000) put("rope.freq_base", f32(rope!.theta));
    if (rope!.dim !== spec.headDim) put("rope.dimension_count", u32(rope!.dim));
    fileType();
  } else {
    put("block_count", u32(spec.layers));
    put("context_length", u32(spec.maxPositions));
    put("embedding_length", u32(spec.hidden));
    put("feed_forward_length", u32(spec.intermediate));
    put("attention.head_count", u32(spec.heads));
    put("attention.layer_norm_epsilon", f32(spec.normEps));
    fileType();
  }
  return out;
}

// ---- tensors ----

/** A string as a regular expression that matches exactly it. */
export const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** HF name → GGUF name and transform, by inverting source.ts's map for the architecture. */
function namer(map: NameMap): (hf: string) => { name: string; short: string } | undefined {
  const global = new Map(Object.entries(map.global).map(([gguf, hf]) => [hf, gguf]));
  const block = new Map(Object.entries(map.block).map(([gguf, hf]) => [hf, gguf]));
  const pattern = new RegExp(`^${escapeRegExp(map.layerPrefix)}(\\d+)\\.(.+)\\.(weight|bias)$`);
  return (hf) => {
    const g = global.get(hf);
    if (g) return { name: g, short: g.replace(/\.(weight|bias)$/, "") };
    const m = pattern.exec(hf);
    const short = m && block.get(m[2]);
    return short ? { name: `blk.${m![1]}.${short}.${m![3]}`, short } : undefined;
  };
}

function planTensors(model: Model, arch: string, refuse: (m: string) => never): PlannedTensor[] {
  const { spec } = model;
  const map = NAME_MAPS[arch];
  const gguf = namer(map);
  const tensors: PlannedTensor[] = [];
  for (const hf of model.arch.tensors(spec).keys()) {
    const named = gguf(hf);
    if (!named) refuse(`tensor "${hf}" has no GGUF name for ${arch}`);
    const shape = model.shape(hf);
    const sourceTransform = map.transforms?.[named!.short];
    // a GGUF source already holds GPT-2's Conv1D weights as [out, in] (layout "nk")
    const transpose = sourceTransform === "transposed" && model.layout(hf) === "kn";
    const ne = transpose ? [...shape] : [...shape].reverse();
    const t: PlannedTensor = { name: named!.name, hf, ne, transform: transpose ? "transpose" : "none" };
    if (sourceTransform === "permute_q" || sourceTransform === "permute_k") {
      t.transform = "permute";
      t.heads = sourceTransform === "permute_q" ? spec.heads : spec.kvHeads;
    } else if (sourceTransform === "plus_one") t.transform = "plus_one";
    tensors.push(t);
  }
  const factors = ropeFactors(spec.rope(0));
  if (factors) {
    if (arch !== "llama") refuse(`llama.cpp's ${arch} reads no rope_freqs.weight`);
    tensors.push({ name: "rope_freqs.weight", ne: [factors.length], transform: "generated", values: factors });
  }
  return tensors;
}

/**
 * rope_freqs.weight: the divisor of each inverse frequency. Llama-3.1's rule as convert_hf_to_gguf.py evaluates
 * it (LlamaModel.generate_extra_tensors: torch float32 for the frequencies and everything computed from them);
 * a GGUF source's own factors unchanged.
 */
export function ropeFactors(rope: RopeSpec | undefined): Float32Array | undefined {
  const s = rope?.scaling;
  if (s?.type === "frequency_factors") return Float32Array.from(s.factors);
  if (s?.type !== "llama3") return undefined;
  // torch casts each Python scalar to float32 before the operation, and rounds every result to float32
  const f = Math.fround;
  const dim = rope!.dim;
  const lowWavelen = f(s.originalMaxPositions / s.lowFreqFactor);
  const highWavelen = f(s.originalMaxPositions / s.highFreqFactor);
  const factors = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = f(1 / f(Math.pow(f(rope!.theta), f((2 * i) / dim))));
    const wavelen = f(f(2 * Math.PI) / freq);
    if (wavelen < highWavelen) factors[i] = 1;
    else if (wavelen > lowWavelen) factors[i] = s.factor;
    else {
      const above = f(f(f(s.originalMaxPositions) / wavelen) - f(s.lowFreqFactor));
      const smooth = f(above / f(s.highFreqFactor - s.lowFreqFactor));
      factors[i] = f(1 / f(f(f(1 - smooth) / f(s.factor)) + smooth));
    }
  }
  return factors;
}
