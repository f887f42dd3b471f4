// The `superweight.*` metadata keys of a GGUF file written by this project's exporter: which super weights it
// kept, their values in the checkpoint it was made from, and the recipe. The exporter writes these keys; the
// audit reads them back through readSuperWeightMetadata, which refuses a malformed set with the file named.
//
//   superweight.super_weights    ARRAY[STRING]   "layer:row:column" (row = output channel, column = input channel
//                                                of layer's down projection, Hugging Face [out, in] coordinates)
//   superweight.original_values  ARRAY[FLOAT32]  the checkpoint's value of each, in the same order
//   superweight.recipe           STRING          how the file was made (free text, for people)
import { CheckpointError } from "../errors.js";
import { describeType, type GgufKv } from "./container.js";

export const SUPERWEIGHT_KEYS = {
  superWeights: "superweight.super_weights",
  originalValues: "superweight.original_values",
  recipe: "superweight.recipe",
} as const;

export interface RecordedSuperWeight {
  layer: number;
  row: number;
  column: number;
  /** Its value in the source checkpoint, when the file records it. */
  original: number | null;
}

export interface SuperWeightMetadata {
  superWeights: RecordedSuperWeight[];
  recipe: string | null;
}

const COORDINATE = /^(\d{1,9}):(\d{1,9}):(\d{1,9})$/;

/** The exporter's keys, checked; undefined when the file has none of them. */
export function readSuperWeightMetadata(metadata: Map<string, GgufKv>, file: string): SuperWeightMetadata | undefined {
  const fail = (message: string): never => {
    throw new CheckpointError(file, message, "BAD_SUPERWEIGHT_METADATA");
  };
  const { superWeights: listKey, originalValues: valuesKey, recipe: recipeKey } = SUPERWEIGHT_KEYS;
  const list = metadata.get(listKey);
  const values = metadata.get(valuesKey);
  const recipe = metadata.get(recipeKey);
  if (!list && !values && !recipe) return undefined;
  if (recipe && recipe.type !== "STRING") fail(`metadata "${recipeKey}" must be a STRING, not ${describeType(recipe)}`);
  if (values && !list) fail(`metadata "${valuesKey}" is present without "${listKey}"`);
  const superWeights: RecordedSuperWeight[] = [];
  if (list) {
    if (list.type !== "ARRAY" || list.itemType !== "STRING")
      fail(`metadata "${listKey}" must be an ARRAY of STRING, not ${describeType(list)}`);
    const seen = new Set<string>();
    for (const [i, item] of (list.value as string[]).entries()) {
      const m = COORDINATE.exec(item);
      if (!m) fail(`metadata "${listKey}"[${i}] is ${JSON.stringify(item.slice(0, 40))}, not "layer:row:column"`);
      const [layer, row, column] = [Number(m![1]), Number(m![2]), Number(m![3])];
      const key = `${layer}:${row}:${column}`;
      if (seen.has(key)) fail(`metadata "${listKey}" lists ${key} twice`);
      seen.add(key);
      superWeights.push({ layer, row, column, original: null });
    }
    if (values) {
      if (values.type !== "ARRAY" || (values.itemType !== "FLOAT32" && values.itemType !== "FLOAT64"))
        fail(`metadata "${valuesKey}" must be an ARRAY of FLOAT32, not ${describeType(values)}`);
      const v = values.value as number[];
      if (v.length !== superWeights.length)
        fail(`metadata "${valuesKey}" has ${v.length} values for ${superWeights.length} super weights`);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) fail(`metadata "${valuesKey}"[${bad}] is ${v[bad]}`);
      v.forEach((x, i) => (superWeights[i].original = x));
    }
  }
  return { superWeights, recipe: recipe ? (recipe.value as string) : null };
}
