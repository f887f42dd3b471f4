// A GGUF export's recipe: llama.cpp's file type, whether the tensors holding super weights go to a higher type,
// and the paper's clipping of the other outliers; the type of every tensor that follows, and the recipe as the
// file's metadata records it (the keys `superweight audit` reads).
//
// Keeping super weights is expressed as llama-quantize would be told it: an explicit `--tensor-type` for *every*
// quantized tensor — the stock mixture's type, or the keep type for a tensor that holds a super weight. An
// override for the super weights' tensors alone would shift llama.cpp's ffn_down layer counter (it counts only
// tensors without an override) and with it the stock types of the later layers.
import { UserError } from "../errors.js";
import type { Clip } from "../quant/scheme.js";
import { formatClip } from "../quant/scheme.js";
import type { GgufKv } from "../gguf/container.js";
import { chooseTypes, FTYPES, type Ftype, type TensorTypeOverride } from "../gguf/mixture.js";
import { GGML_TYPES, type GgmlType } from "../gguf/quantize.js";
import { escapeRegExp, type PlannedTensor } from "./plan.js";

/** A super weight of a down projection, in Hugging Face coordinates (row = output channel). */
export interface SuperWeight {
  layer: number;
  row: number;
  column: number;
  /** The down projection's tensor (canonical name). */
  tensor: string;
  /** Its value in the checkpoint. */
  value: number;
}

/** Where a command's super weights came from: --keep, a scan (the candidates it classed as outliers left out), none. */
export interface SuperWeightSet {
  source: "keep" | "scan" | "none";
  weights: SuperWeight[];
  outliers: { layer: number; row: number; column: number }[];
}

export const KEEP_TYPES = ["Q8_0", "F16", "BF16", "F32"] as const satisfies readonly GgmlType[];
export type KeepType = (typeof KEEP_TYPES)[number];
/** Chosen by measurement on planted-llama-256 and bytes-llama-6m: see docs/gguf-export.md. */
export const DEFAULT_KEEP_TYPE: KeepType = "Q8_0";

export interface Recipe {
  ftype: Ftype;
  /** Raise the tensors holding `superWeights` to `keepType` (where that is more bits than their stock type). */
  keepSuper: boolean;
  keepType: KeepType;
  /** Clipping before quantizing block-format tensors; the super weights are held out of it. */
  clip: Clip;
  /** The model's super weights (recorded in the file, held out of clipping, and kept when keepSuper). */
  superWeights: SuperWeight[];
}

export interface MixtureShape {
  arch: string;
  nLayers: number;
  nHead: number;
  nHeadKv: number;
}

export interface RecipeTypes {
  /** Every tensor's type, in llama.cpp's tensor order. */
  types: Map<string, GgmlType>;
  /** The stock mixture's. */
  stock: Map<string, GgmlType>;
  /** GGUF names of the tensors raised to the keep type. */
  raised: string[];
}

export function parseFtype(text: string): Ftype {
  const t = text.toUpperCase();
  if (!Object.hasOwn(FTYPES, t))
    throw new UserError(`--type ${text}: unknown type (known: ${Object.keys(FTYPES).join(", ")})`);
  return t as Ftype;
}

export function parseKeepType(text: string): KeepType {
  const t = text.toUpperCase() as KeepType;
  if (!KEEP_TYPES.includes(t)) throw new UserError(`--keep-type ${text}: must be one of ${KEEP_TYPES.join(", ")}`);
  return t;
}

/** Bits a type spends per weight. */
export function bitsPerWeight(type: GgmlType): number {
  const { blockSize, typeSize } = GGML_TYPES[type];
  return (typeSize * 8) / blockSize;
}

/** The GGUF tensors holding super weights (each listed once). */
export function superWeightTensors(tensors: readonly PlannedTensor[], superWeights: readonly SuperWeight[]): string[] {
  const names: string[] = [];
  for (const w of superWeights) {
    const t = tensors.find((p) => p.hf === w.tensor);
    if (!t) throw new RangeError(`super weight tensor "${w.tensor}" is not among the model's tensors`);
    if (!names.includes(t.name)) names.push(t.name);
  }
  return names;
}

export function recipeTypes(tensors: readonly PlannedTensor[], shape: MixtureShape, recipe: Recipe): RecipeTypes {
  const infos = tensors.map((t) => ({ name: t.name, ne: t.ne, type: "F32" as GgmlType }));
  const stock = chooseTypes(recipe.ftype, infos, shape);
  // llama.cpp applies overrides only to quantized file types (an F16 file is F16 throughout)
  if (!recipe.keepSuper || !isBlockType(FTYPES[recipe.ftype].base)) return { types: stock, stock, raised: [] };
  const holding = new Set(superWeightTensors(tensors, recipe.superWeights));
  const raised: string[] = [];
  const overrides: TensorTypeOverride[] = [];
  for (const t of infos) {
    const type = stock.get(t.name)!;
    if (type === "F32") continue; // never quantized (norms, biases, rope factors)
    const raise = holding.has(t.name) && bitsPerWeight(recipe.keepType) > bitsPerWeight(type);
    if (raise) raised.push(t.name);
    overrides.push({ pattern: `^${escapeRegExp(t.name)}$`, type: raise ? recipe.keepType : type });
  }
  return { types: chooseTypes(recipe.ftype, infos, { ...shape, overrides }), stock, raised };
}

export function isBlockType(type: GgmlType): boolean {
  return GGML_TYPES[type].blockSize > 1;
}

/** e.g. "Q4_K_M; tensors holding super weights at Q8_0 (blk.1.ffn_down.weight), …; clip none". */
export function recipeText(recipe: Recipe, tensors: readonly PlannedTensor[], types: RecipeTypes): string {
  const holding = superWeightTensors(tensors, recipe.superWeights);
  const stockOf = holding.map((n) => `${n} ${types.stock.get(n)}`).join(", ");
  const base = FTYPES[recipe.ftype].base;
  const keep = !recipe.keepSuper
    ? "llama.cpp's stock mixture"
    : !isBlockType(base)
      ? `${base} throughout, super weights included (no tensor type is overridden in an unquantized file)`
      : types.raised.length
        ? `tensors holding super weights at ${recipe.keepType} (${types.raised.join(", ")}), every other tensor at its ` +
          "stock type"
        : holding.length
          ? `tensors holding super weights left at their stock types (${stockOf}), as many bits as ${recipe.keepType} ` +
            "or more: stock mixture"
          : "no super weights to keep: stock mixture";
  const clip =
    recipe.clip.method === "none"
      ? "clip none"
      : `clip ${formatClip(recipe.clip)} on block-format tensors, super weights held out`;
  return `${recipe.ftype}; ${keep}; ${clip}`;
}

/** The superweight.* keys (read by `superweight audit`): HF coordinates "layer:row:column", checkpoint values. */
export function recipeMetadata(recipe: Recipe, text: string): [string, GgufKv][] {
  return [
    ["superweight.version", { type: "UINT32", value: 1 }],
    ["superweight.recipe", { type: "STRING", value: text }],
    [
      "superweight.super_weights",
      {
        type: "ARRAY",
        itemType: "STRING",
        value: recipe.superWeights.map((w) => `${w.layer}:${w.row}:${w.column}`),
      },
    ],
    [
      "superweight.original_values",
      {
        type: "ARRAY",
        itemType: "FLOAT32",
        value: recipe.superWeights.map((w) => Math.fround(w.value)),
      },
    ],
  ];
}
