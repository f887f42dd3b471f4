// Recipes side by side: each GGUF is written to a temporary folder, opened again with the project's own reader
// (Model.open: dequantized weights, converter transforms undone) and scored by this project's float32 forward pass
// — perplexity on a token sequence — beside its file size; the checkpoint itself is the first row.
//
// This measures what the weights lost, not llama.cpp's arithmetic: llama.cpp also rounds the activations for
// quantized matrices (see shared/fixtures/gguf/README.md), which adds its own, recipe-independent error.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import { mean, perplexity } from "../engine/nll.js";
import type { Clip } from "../quant/scheme.js";
import { DEFAULT_KEEP_TYPE, KEEP_TYPES, type KeepType, type Recipe, type SuperWeight } from "./recipe.js";
import type { Ftype } from "../gguf/mixture.js";
import { planGgufExport, writeGgufExport, type GgufExportOptions, type StoredSuperWeight } from "./gguf.js";

export interface NamedRecipe {
  label: string;
  recipe: Recipe;
}

/** llama.cpp's stock mixture; the super-weight-aware one at each keep type; and both with clipping, if asked. */
export function standardRecipes(
  ftype: Ftype,
  keepType: KeepType,
  clip: Clip,
  superWeights: SuperWeight[],
): NamedRecipe[] {
  const none: Clip = { method: "none" };
  const r = (keepSuper: boolean, keep: KeepType, c: Clip): Recipe => ({
    ftype,
    keepSuper,
    keepType: keep,
    clip: c,
    superWeights,
  });
  const keepTypes = [...new Set<KeepType>([DEFAULT_KEEP_TYPE, "F16", keepType])].filter((t) => KEEP_TYPES.includes(t));
  const rows: NamedRecipe[] = [{ label: "stock", recipe: r(false, keepType, none) }];
  if (superWeights.length) for (const k of keepTypes) rows.push({ label: `keep-super ${k}`, recipe: r(true, k, none) });
  if (clip.method !== "none") {
    rows.push({ label: "stock + clip", recipe: r(false, keepType, clip) });
    if (superWeights.length) rows.push({ label: `keep-super ${keepType} + clip`, recipe: r(true, keepType, clip) });
  }
  return rows;
}

export interface Scored {
  meanNll: number;
  perplexity: number;
  predictions: number;
}

export interface ComparedRecipe extends Scored {
  label: string;
  recipe: string;
  fileBytes: number;
  tensorBytes: number;
  bitsPerWeight: number;
  typeCounts: Record<string, number>;
  superWeights: StoredSuperWeight[];
}

export interface Comparison {
  model: string;
  ftype: Ftype;
  tokens: number;
  /** Tokens per forward pass (the sequence is cut into windows of at most this many). */
  window: number;
  checkpoint: Scored;
  recipes: ComparedRecipe[];
}

/** Next-token NLL over ids cut into windows of `window` tokens (each scored from its own start). */
export async function score(model: Model, ids: readonly number[], window: number): Promise<Scored> {
  const nll: number[] = [];
  for (let s = 0; s < ids.length; s += window) {
    const part = ids.slice(s, s + window);
    if (part.length < 2) break;
    const targets = part.map((_, t) => (t + 1 < part.length ? part[t + 1] : -1));
    const out = await forward(model, part, { head: { targets } });
    nll.push(...out.nll![0].subarray(0, part.length - 1));
  }
  return { meanNll: mean(nll), perplexity: perplexity(nll), predictions: nll.length };
}

export interface CompareOptions extends Omit<GgufExportOptions, keyof Recipe> {
  ids: readonly number[];
  window: number;
  onRecipe?: (label: string, index: number, count: number) => void;
}

export async function compareGgufRecipes(model: Model, recipes: NamedRecipe[], o: CompareOptions): Promise<Comparison> {
  const { ids, window, onRecipe, ...exportOptions } = o;
  const dir = mkdtempSync(join(tmpdir(), "superweight-compare-"));
  try {
    const checkpoint = await score(model, ids, window);
    const rows: ComparedRecipe[] = [];
    for (const [i, { label, recipe }] of recipes.entries()) {
      onRecipe?.(label, i, recipes.length);
      const path = join(dir, `${i}.gguf`);
      const written = writeGgufExport(planGgufExport(model, { ...exportOptions, ...recipe }), path);
      const quantized = Model.open(path);
      try {
        rows.push({
          label,
          recipe: written.recipe,
          fileBytes: written.fileBytes,
          tensorBytes: written.tensorBytes,
          bitsPerWeight: written.bitsPerWeight,
          typeCounts: written.typeCounts,
          superWeights: written.superWeights,
          ...(await score(quantized, ids, window)),
        });
      } finally {
        quantized.close();
        rmSync(path, { force: true });
      }
    }
    return { model: model.path, ftype: recipes[0].recipe.ftype, tokens: ids.length, window, checkpoint, recipes: rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
