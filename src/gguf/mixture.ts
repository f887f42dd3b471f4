// The tensor types llama.cpp's llama_model_quantize (the function behind `llama-quantize`) gives each tensor of a
// dense llama-family model for a file type, without an importance matrix: a port of llama_tensor_get_type and its
// helpers (src/llama-quant.cpp of the llama.cpp release behind the GGUF fixtures), restricted to the file types and
// architectures below. Tensors are visited in llama.cpp's order (quantizeOrder), which drives its layer counters.
import { UserError } from "../errors.js";
import { GGML_TYPES, type GgmlType } from "./quantize.js";

/** File types (`general.file_type`, llama.cpp's LLAMA_FTYPE_*) and the tensor type each starts from. */
export const FTYPES = {
  F32: { id: 0, base: "F32" },
  F16: { id: 1, base: "F16" },
  Q4_0: { id: 2, base: "Q4_0" },
  Q4_1: { id: 3, base: "Q4_1" },
  Q8_0: { id: 7, base: "Q8_0" },
  Q5_0: { id: 8, base: "Q5_0" },
  Q5_1: { id: 9, base: "Q5_1" },
  Q4_K_S: { id: 14, base: "Q4_K" },
  Q4_K_M: { id: 15, base: "Q4_K" },
  Q5_K_S: { id: 16, base: "Q5_K" },
  Q5_K_M: { id: 17, base: "Q5_K" },
  Q6_K: { id: 18, base: "Q6_K" },
  BF16: { id: 32, base: "BF16" },
} as const satisfies Record<string, { id: number; base: GgmlType }>;
export type Ftype = keyof typeof FTYPES;

/** GGUF architecture names whose quantization rules this port covers (Mistral is `llama` in GGUF). */
export const MIXTURE_ARCHITECTURES = ["llama", "qwen2", "phi3", "gemma", "olmo", "gpt2"] as const;

/** A tensor as the quantizer sees it: GGUF name, ne (ne0 contiguous), and its type in the source (F32 if absent). */
export interface TensorInfo {
  name: string;
  ne: readonly number[];
  type?: GgmlType;
}

/** `--tensor-type REGEX=TYPE`: tensors whose name the regex finds (anywhere in the name) get TYPE. */
export interface TensorTypeOverride {
  pattern: string;
  type: GgmlType;
}

export interface MixtureOptions {
  arch: string;
  /** `{arch}.block_count` */
  nLayers: number;
  /** head counts: llama.cpp treats an 80-layer llama with grouped-query attention as "70B" (attn_v rule). */
  nHead: number;
  nHeadKv: number;
  /** `--tensor-type`, first match wins; only for quantized file types, as in llama.cpp. */
  overrides?: readonly TensorTypeOverride[];
  /** `--output-tensor-type` / `--token-embedding-type` */
  outputTensorType?: GgmlType;
  tokenEmbeddingType?: GgmlType;
  /** `--pure`: the base type for every quantizable tensor (block-size fallbacks still apply). */
  pure?: boolean;
}

/** Parse one `REGEX=TYPE` argument as llama-quantize does: the regex lowercased, the type name in any case. */
export function parseTensorTypeOverride(spec: string): TensorTypeOverride {
  const eq = spec.indexOf("=");
  if (eq < 0) throw new UserError(`--tensor-type ${spec}: expected REGEX=TYPE`);
  if (eq === 0) throw new UserError(`--tensor-type ${spec}: the tensor name pattern is empty`);
  const typeName = spec.slice(eq + 1).toUpperCase();
  if (!Object.hasOwn(GGML_TYPES, typeName)) {
    throw new UserError(`--tensor-type ${spec}: unknown type "${spec.slice(eq + 1)}" (known: ${typeNames()})`);
  }
  const override = { pattern: spec.slice(0, eq).toLowerCase(), type: typeName as GgmlType };
  compile(override);
  return override;
}

/**
 * Tensors in the order llama.cpp's model loader keeps them (weight_name_comparer): by layer (`blk.N.`; tensors
 * outside a layer first), then by name. llama-quantize writes its output in this order.
 */
export function quantizeOrder<T extends { name: string }>(tensors: readonly T[]): T[] {
  const keyed = tensors.map((t) => ({ t, layer: layerOf(t.name) }));
  keyed.sort((a, b) => a.layer - b.layer || (a.t.name < b.t.name ? -1 : a.t.name > b.t.name ? 1 : 0));
  return keyed.map((k) => k.t);
}

/**
 * The type of every tensor after `llama-quantize IN OUT FTYPE` (no importance matrix), as a Map in llama.cpp's
 * tensor order. Tensors that are never quantized (1-D, norms, gpt2's position_embd) keep their source type.
 */
export function chooseTypes(
  ftype: Ftype,
  tensors: readonly TensorInfo[],
  options: MixtureOptions,
): Map<string, GgmlType> {
  if (!Object.hasOwn(FTYPES, ftype)) {
    throw new UserError(`unknown file type "${ftype}" (known: ${Object.keys(FTYPES).join(", ")})`);
  }
  const state = initialState(tensors, options);
  const base: GgmlType = FTYPES[ftype].base;
  const types = new Map<string, GgmlType>();
  for (const t of quantizeOrder(tensors)) {
    if (types.has(t.name)) throw new UserError(`tensor ${t.name} is listed twice`);
    types.set(t.name, tensorType(state, ftype, base, t));
  }
  return types;
}

type Category =
  | "token_embd"
  | "attn_q"
  | "attn_v"
  | "attn_k"
  | "attn_qkv"
  | "attn_output"
  | "ffn_up"
  | "ffn_gate"
  | "ffn_down"
  | "output"
  | "other";

/** tensor_get_category (the first matching rule decides; ffn_* match anywhere in the name). */
function categoryOf(name: string): Category {
  if (name === "output.weight") return "output";
  if (name === "token_embd.weight") return "token_embd";
  const rules: [string, Category][] = [
    ["attn_qkv.weight", "attn_qkv"],
    ["attn_v.weight", "attn_v"],
    ["attn_k.weight", "attn_k"],
    ["attn_q.weight", "attn_q"],
    ["attn_output.weight", "attn_output"],
    ["ffn_up", "ffn_up"],
    ["ffn_gate", "ffn_gate"],
    ["ffn_down", "ffn_down"],
  ];
  return rules.find(([part]) => name.includes(part))?.[1] ?? "other";
}

/** category_is_attn_v: the fused qkv matrix counts (and is typed) as attn_v. */
function isAttnV(c: Category): boolean {
  return c === "attn_v" || c === "attn_qkv";
}

interface State {
  options: MixtureOptions;
  overrides: { regex: RegExp; type: GgmlType }[];
  tiedEmbeddings: boolean;
  is70B: boolean;
  nAttnV: number;
  iAttnV: number;
  iFfnDown: number;
}

function initialState(tensors: readonly TensorInfo[], options: MixtureOptions): State {
  const { arch, nLayers, nHead, nHeadKv } = options;
  if (!(MIXTURE_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new UserError(
      `no llama.cpp quantization rules here for architecture "${arch}" ` +
        `(supported: ${MIXTURE_ARCHITECTURES.join(", ")})`,
    );
  }
  for (const [key, v] of [
    ["nLayers", nLayers],
    ["nHead", nHead],
    ["nHeadKv", nHeadKv],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new UserError(`${key} must be a positive integer, got ${v}`);
  }
  for (const t of tensors) {
    if ((t.ne[2] ?? 1) > 1 || (t.ne[3] ?? 1) > 1) {
      throw new UserError(`tensor ${t.name} has ne ${JSON.stringify(t.ne)}: expert (3-D) tensors are not supported`);
    }
  }
  return {
    options,
    overrides: (options.overrides ?? []).map((o) => ({ regex: compile(o), type: o.type })),
    tiedEmbeddings: !tensors.some((t) => t.name === "output.weight"),
    // the model types llama.cpp's loader calls LLM_TYPE_70B among these architectures
    is70B: nLayers === 80 && (arch === "qwen2" || arch === "olmo" || (arch === "llama" && nHead !== nHeadKv)),
    nAttnV: tensors.filter((t) => isAttnV(categoryOf(t.name))).length,
    iAttnV: 0,
    iFfnDown: 0,
  };
}

/** llama_tensor_get_type */
function tensorType(s: State, ftype: Ftype, base: GgmlType, t: TensorInfo): GgmlType {
  if (!allowsQuantization(t)) return t.type ?? "F32";
  const category = categoryOf(t.name);
  const { outputTensorType, tokenEmbeddingType, pure } = s.options;
  if (tokenEmbeddingType && category === "token_embd") return tokenEmbeddingType;
  if (outputTensorType && category === "output") return outputTensorType;
  if (!isQuantized(base)) return base;
  const override = s.overrides.find((o) => o.regex.test(t.name));
  let type = override ? override.type : pure ? base : mixtureType(s, ftype, base, t, category);
  type = blockFallback(t, type);
  return type;
}

/** llama_tensor_get_type_impl for the file types in FTYPES (falcon, MoE and i-quant rules left out). */
function mixtureType(s: State, ftype: Ftype, type: GgmlType, t: TensorInfo, category: Category): GgmlType {
  if (category === "output" || (s.tiedEmbeddings && category === "token_embd")) {
    // the output matrix (or the embedding that doubles as it) gets more bits
    if (s.options.outputTensorType) return s.options.outputTensorType;
    if (t.ne[0] % GGML_TYPES[type].blockSize !== 0) return "Q8_0";
    return type === "Q8_0" ? type : "Q6_K";
  }
  if (isAttnV(category)) {
    if ((ftype === "Q4_K_M" || ftype === "Q5_K_M") && useMoreBits(s.iAttnV, s.nAttnV)) type = "Q6_K";
    else if (ftype === "Q4_K_S" && s.iAttnV < 4) type = "Q5_K";
    if (s.is70B && type === "Q4_K") type = "Q5_K";
    s.iAttnV++;
    return type;
  }
  if (category === "ffn_down") {
    const i = s.iFfnDown++;
    const n = s.options.nLayers;
    if (ftype === "Q4_K_M") return useMoreBits(i, n) ? "Q6_K" : type;
    if (ftype === "Q5_K_M" && useMoreBits(i, n)) return "Q6_K";
    if (ftype === "Q4_K_S" && i < Math.trunc(n / 8)) return "Q5_K";
  }
  return type;
}

/** The first and last eighth of the layers, and every third one between. */
function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.trunc(n / 8);
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
}

/** tensor_type_fallback: a row length that is not a whole number of blocks takes a smaller block. */
function blockFallback(t: TensorInfo, type: GgmlType): GgmlType {
  const ncols = t.ne[0];
  if (ncols % GGML_TYPES[type].blockSize === 0) return type;
  const smaller: Partial<Record<GgmlType, GgmlType>> = {
    IQ4_XS: "IQ4_NL",
    Q2_K: "Q4_0",
    Q3_K: "Q4_0",
    Q4_K: "Q5_0",
    Q5_K: "Q5_1",
    Q6_K: "Q8_0",
  };
  const fallback = smaller[type] ?? type;
  return ncols % GGML_TYPES[fallback].blockSize === 0 ? fallback : "F16";
}

/** tensor_allows_quantization, for the tensor names of MIXTURE_ARCHITECTURES. */
function allowsQuantization(t: TensorInfo): boolean {
  return (
    nDims(t.ne) >= 2 &&
    t.name.endsWith("weight") &&
    !t.name.includes("_norm.weight") &&
    t.name !== "position_embd.weight" &&
    t.name !== "token_types.weight"
  );
}

/** ggml_n_dims: trailing dimensions of size 1 do not count. */
function nDims(ne: readonly number[]): number {
  for (let i = ne.length - 1; i >= 1; i--) if (ne[i] > 1) return i + 1;
  return 1;
}

function isQuantized(type: GgmlType): boolean {
  return GGML_TYPES[type].blockSize > 1;
}

/** The layer of `blk.N.…` (sscanf "blk.%d."), −1 for tensors outside the layers. */
function layerOf(name: string): number {
  const m = /^blk\.\s*([+-]?\d+)/.exec(name);
  return m ? Number(m[1]) : -1;
}

function compile(o: TensorTypeOverride): RegExp {
  try {
    return new RegExp(o.pattern);
  } catch (e) {
    throw new UserError(`--tensor-type ${o.pattern}=${o.type}: invalid regular expression (${(e as Error).message})`);
  }
}

function typeNames(): string {
  return Object.keys(GGML_TYPES).join(", ");
}
