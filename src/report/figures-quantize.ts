// The quantization comparison a report draws (the paper's Figure 7): read from the JSON files
// `superweight quantize ... --compare --json` prints, checked, and brought to one shape — a list of
// configurations, each with its method, bits, block size, perplexity and size.
//
// Three inputs are read:
//  - kind "gguf-quantize" (src/report/gguf-export-text.ts): `comparison.recipes` become configurations (the
//    recipe's label as the method, the file type in the label, no block size: llama.cpp's types fix theirs);
//    `comparison.checkpoint` is the unquantized baseline.
//  - kind "quantize" with a `comparison` of kind "quantize-comparison" (or that comparison alone), version 1:
//    the block-wise quantizers (rtn, nf4); each of `configs` with quantized weights becomes a configuration
//    (method: scheme, bits and what it does to outliers; kl: its mean), `baseline` the unquantized model.
//  - any object with a `configurations` array, version 1 (documented in docs/reproduce.md):
//    { version: 1, baseline?: { perplexity }, configurations: [{ label?, method (or recipe), bits,
//    block (weights per scale, "tensor", "channel", or null when not block-wise), perplexity, meanNll?, kl?,
//    bytes, bitsPerWeight }] }.
import { DataError } from "../data/errors.js";
import { readUtf8File } from "../data/textfile.js";

export interface QuantConfiguration {
  /** The file it came from. */
  file: string;
  label: string;
  /** The method or recipe, and the line of the figure it belongs to (the method, with its bit width if any). */
  method: string;
  series: string;
  bits: number | null;
  /** Weights per scale block, one scale per tensor or per output channel; null when the format fixes it. */
  block: Block;
  perplexity: number;
  meanNll: number | null;
  /** KL(unquantized ‖ quantized) of the next-token distributions, nats, when the file has it. */
  kl: number | null;
  bytes: number;
  bitsPerWeight: number;
}

export interface QuantComparison {
  files: string[];
  /** The unquantized model's perplexity on each file's text (null where the file gives none). */
  baselines: { file: string; perplexity: number | null }[];
  configurations: QuantConfiguration[];
}

/** The versions this reader knows: of the `configurations` form, and of the rtn / nf4 "quantize-comparison". */
export const QUANT_COMPARE_VERSION = 1;
const BLOCKWISE_COMPARE_VERSION = 1;

export type Block = number | "tensor" | "channel" | null;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Read and merge the comparison files, in the order given. */
export function readQuantComparisons(files: readonly string[]): QuantComparison {
  const out: QuantComparison = { files: [...files], baselines: [], configurations: [] };
  for (const file of files) {
    const one = readQuantComparison(file);
    out.baselines.push({ file, perplexity: one.baseline });
    out.configurations.push(...one.configurations);
  }
  return out;
}

function readQuantComparison(file: string): { baseline: number | null; configurations: QuantConfiguration[] } {
  let root: unknown;
  try {
    root = JSON.parse(readUtf8File(file));
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(file, `is not JSON (${(e as Error).message})`, "COMPARE_NOT_JSON");
  }
  if (!isObject(root)) throw new DataError(file, "is not a JSON object", "COMPARE_NOT_OBJECT");
  const field = new Fields(file);
  if (root.kind === "gguf-quantize" || root.kind === "quantize") {
    if (!isObject(root.comparison))
      throw new DataError(
        file,
        "holds no comparison (run `superweight quantize ... --compare --json`)",
        "COMPARE_NO_COMPARISON",
      );
    return root.kind === "gguf-quantize"
      ? fromGguf(root.comparison, file, field)
      : fromBlockwise(root.comparison, file, field, "comparison.");
  }
  if (root.kind === "quantize-comparison") return fromBlockwise(root, file, field, "");
  if (!("configurations" in root))
    throw new DataError(
      file,
      'is neither a `quantize --compare --json` output (kind "gguf-quantize" or "quantize") ' +
        "nor an object with a `configurations` list",
      "COMPARE_UNKNOWN_KIND",
    );
  field.version(root, "", QUANT_COMPARE_VERSION);
  return fromConfigurations(root, file, field);
}

function fromGguf(c: Json, file: string, field: Fields) {
  const ftype = field.string(c, "comparison.ftype");
  const recipes = field.list(c, "comparison.recipes");
  const checkpoint = field.object(c, "comparison.checkpoint");
  return {
    baseline: field.positive(checkpoint, "comparison.checkpoint.perplexity"),
    configurations: recipes.map((r, i): QuantConfiguration => {
      const at = `comparison.recipes[${i}]`;
      const o = field.item(r, at);
      const label = field.string(o, `${at}.label`);
      return {
        file,
        label: `${ftype} ${label}`,
        method: label,
        series: label,
        bits: null,
        block: null,
        perplexity: field.positive(o, `${at}.perplexity`),
        meanNll: field.finite(o, `${at}.meanNll`),
        kl: null,
        bytes: field.count(o, `${at}.fileBytes`),
        bitsPerWeight: field.positive(o, `${at}.bitsPerWeight`),
      };
    }),
  };
}

/** The rtn / nf4 comparison (src/compress/compare.ts): `configs`, each with its weights' scheme or null (only the
 * activations quantized: not a point of this figure). */
function fromBlockwise(c: Json, file: string, field: Fields, prefix: string) {
  field.version(c, prefix, BLOCKWISE_COMPARE_VERSION);
  const baseline = field.object(c, `${prefix}baseline`);
  const configurations: QuantConfiguration[] = [];
  field.list(c, `${prefix}configs`).forEach((x, i) => {
    const at = `${prefix}configs[${i}]`;
    const o = field.item(x, at);
    if (o.weights === null) return;
    const w = field.object(o, `${at}.weights`);
    const scheme = field.string(w, `${at}.weights.scheme`),
      method = field.string(w, `${at}.weights.method`);
    const bits = field.positive(w, `${at}.weights.bits`);
    const block = field.block(w, `${at}.weights.block`);
    const a = o.activations === null || o.activations === undefined ? null : field.object(o, `${at}.activations`);
    const acts = a ? ` · A${field.positive(a, `${at}.activations.bits`)}` : "";
    const name = `${scheme}${scheme === "rtn" ? bits : ""} ${method}${acts}`;
    const size = field.object(o, `${at}.size`);
    configurations.push({
      file,
      label: `${name}, block ${block}`,
      method: name,
      series: name,
      bits,
      block,
      perplexity: field.positive(o, `${at}.perplexity`),
      meanNll: field.finite(o, `${at}.meanNll`),
      kl: field.finite(field.object(o, `${at}.kl`), `${at}.kl.mean`),
      bytes: field.count(size, `${at}.size.quantizedBytes`),
      bitsPerWeight: field.positive(size, `${at}.size.bitsPerWeight`),
    });
  });
  if (!configurations.length)
    throw new DataError(
      file,
      `${prefix}configs has no configuration with quantized weights: nothing to draw`,
      "COMPARE_EMPTY",
    );
  return { baseline: field.positive(baseline, `${prefix}baseline.perplexity`), configurations };
}

function fromConfigurations(root: Json, file: string, field: Fields) {
  const list = field.list(root, "configurations");
  const baseline = isObject(root.baseline) ? field.positive(root.baseline, "baseline.perplexity") : null;
  return {
    baseline,
    configurations: list.map((c, i): QuantConfiguration => {
      const at = `configurations[${i}]`;
      const o = field.item(c, at);
      const method = [o.method, o.recipe].find((v): v is string => typeof v === "string" && v !== "");
      if (method === undefined)
        throw new DataError(file, `${at} has no method (or recipe) string`, "COMPARE_FIELD_MISSING");
      const bits = field.positive(o, `${at}.bits`);
      const block = o.block === null ? null : field.block(o, `${at}.block`);
      return {
        file,
        method,
        series: `${method} ${bits}-bit`,
        bits,
        block,
        label:
          typeof o.label === "string" ? o.label : `${method} ${bits}-bit${block !== null ? `, block ${block}` : ""}`,
        perplexity: field.positive(o, `${at}.perplexity`),
        meanNll: o.meanNll === undefined ? null : field.finite(o, `${at}.meanNll`),
        kl: o.kl === undefined || o.kl === null ? null : field.finite(o, `${at}.kl`),
        bytes: field.count(o, `${at}.bytes`),
        bitsPerWeight: field.positive(o, `${at}.bitsPerWeight`),
      };
    }),
  };
}

/** Field readers that name the file and the field's path in their error (one code per kind of fault). */
class Fields {
  constructor(private readonly file: string) {}

  private value(o: Json, path: string): unknown {
    const key = path.slice(path.lastIndexOf(".") + 1);
    if (!(key in o)) throw new DataError(this.file, `${path} is missing`, "COMPARE_FIELD_MISSING");
    return o[key];
  }

  private bad(path: string, must: string, v: unknown): never {
    throw new DataError(this.file, `${path} is ${JSON.stringify(v)}: expected ${must}`, "COMPARE_FIELD_TYPE");
  }

  object(o: Json, path: string): Json {
    return this.item(this.value(o, path), path);
  }

  item(v: unknown, path: string): Json {
    return isObject(v) ? v : this.bad(path, "an object", v);
  }

  list(o: Json, path: string): unknown[] {
    const v = this.value(o, path);
    if (!Array.isArray(v)) return this.bad(path, "a list", v);
    if (!v.length) throw new DataError(this.file, `${path} is empty: nothing to draw`, "COMPARE_EMPTY");
    return v;
  }

  string(o: Json, path: string): string {
    const v = this.value(o, path);
    return typeof v === "string" && v !== "" ? v : this.bad(path, "a non-empty string", v);
  }

  finite(o: Json, path: string): number {
    const v = this.value(o, path);
    return typeof v === "number" && Number.isFinite(v) ? v : this.bad(path, "a finite number", v);
  }

  positive(o: Json, path: string): number {
    const v = this.value(o, path);
    return typeof v === "number" && Number.isFinite(v) && v > 0 ? v : this.bad(path, "a positive number", v);
  }

  count(o: Json, path: string): number {
    const v = this.value(o, path);
    return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : this.bad(path, "a whole number", v);
  }

  block(o: Json, path: string): Exclude<Block, null> {
    const v = this.value(o, path);
    if (v === "tensor" || v === "channel" || (typeof v === "number" && Number.isSafeInteger(v) && v > 0)) return v;
    return this.bad(path, 'a positive whole number of weights, "tensor" or "channel"', v);
  }

  version(o: Json, prefix: string, known: number): void {
    if (o.version !== known)
      throw new DataError(
        this.file,
        `${prefix}version ${JSON.stringify(o.version)}: this reader knows version ${known}`,
        "COMPARE_VERSION",
      );
  }
}
