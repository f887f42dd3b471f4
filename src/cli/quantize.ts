// `superweight quantize <model> --format F`: a quantized copy of a model. What every format shares is parsed and
// resolved here — the model, --out / --force, the super weights (--keep L:R:C, or a scan on --prompt / --ids),
// --clip, --compare and its text, --json — into a QuantizeContext; each format is a branch (FORMATS) that adds its
// own options and calls its analysis module (gguf: src/gguf/export*.ts).
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { parseClip, type Clip } from "../quant/scheme.js";
import { scan, DEFAULT_PROMPT } from "../superweight/scan.js";
import { progress } from "../report/progress.js";
import {
  DEFAULT_KEEP_TYPE, KEEP_TYPES, parseFtype, parseKeepType, type KeepType, type SuperWeight, type SuperWeightSet,
} from "../gguf/export-recipe.js";
import { planGgufExport, writeGgufExport, type GgufExportResult } from "../gguf/export.js";
import { compareGgufRecipes, standardRecipes, type Comparison } from "../gguf/export-compare.js";
import { exportVocabulary } from "../gguf/export-vocab.js";
import { FTYPES, type Ftype } from "../gguf/mixture.js";
import { ggufQuantizeJson, renderGgufQuantize } from "../report/gguf-export-text.js";
import {
  ALLOW_NON_FINITE, collect, inputs, numberOption, openModel, parseIds, quietProgress, type OpenedModel,
} from "./common.js";

/** The options every format takes. */
export interface SharedQuantizeOptions {
  format: string;
  out?: string;
  force?: boolean;
  json?: boolean;
  compare?: boolean;
  keepSuper?: boolean;
  keep?: string[];
  clip: Clip;
  prompt?: string[];
  ids?: string[];
  threshold: number;
  maxIterations: number;
  text?: string;
  textIds?: string;
  demo?: boolean;
  download?: boolean;
  modelId?: string;
  allowNonFinite?: boolean;
}

export interface QuantizeContext {
  opened: OpenedModel;
  o: SharedQuantizeOptions;
  /** --out, resolved and checked (absent when only --compare is asked for). */
  out?: string;
  /** The super weights --keep-super, --clip and --compare need (none otherwise); a scan runs at most once. */
  superWeights(): Promise<SuperWeightSet>;
  /** The --compare text's token ids (--text-ids, --text FILE, or a built-in English paragraph). */
  evalIds(): number[];
  /** Progress off (--json to a pipe, SUPERWEIGHT_PROGRESS=0). */
  quiet: boolean;
}

export interface FormatBranch {
  name: string;
  summary: string;
  /** Options only this format takes. */
  options(): Option[];
  run(ctx: QuantizeContext, options: Record<string, unknown>): Promise<void>;
}


/** The --compare text when none is given: plain English of about a hundred tokens. */
export const DEFAULT_COMPARE_TEXT =
  "The old lighthouse stood at the edge of the cliff, its white paint worn thin by a hundred winters. Every " +
  "evening the keeper climbed the narrow stairs, trimmed the wick and wound the clockwork that turned the great " +
  "lens. Ships passing in the dark saw the beam sweep across the water and knew where the rocks were. When the " +
  "keeper grew old, the village sent a boy to help him, and the boy learned to read the weather from the color " +
  "of the sky and the smell of the wind.";

export function quantizeCommand(): Command {
  const cmd = new Command("quantize")
    .description("write a quantized copy of a model that keeps its super weights (GGUF for llama.cpp)")
    .argument("[model]", "checkpoint folder, .gguf file or Hugging Face model id (in the local cache)")
    .addOption(new Option("--format <format>", "output format").choices(FORMATS.map((f) => f.name))
      .makeOptionMandatory())
    .option("-o, --out <file>", "the file to write (written atomically)")
    .option("--force", "replace --out if it exists")
    .option("--keep-super", "keep the tensors holding super weights at a higher type (found by a scan unless --keep)")
    .option("--keep <L:R:C>", "a super weight to keep: layer:row:column of down_proj (repeatable; no scan)", collect)
    .addOption(new Option("--clip <method>", "clip other outliers before quantizing, super weights held out: none, " +
      "zscore:K, block-pct:F, tensor-pct:F").default({ method: "none" }, "none").argParser(parseClip))
    .option("-p, --prompt <text>", `scan prompt (repeatable; default "${DEFAULT_PROMPT}")`, collect)
    .option("--ids <ids>", "scan token ids instead of text, e.g. 1,2,3 (repeatable)", collect)
    .addOption(new Option("--threshold <x>", "scan spike threshold").default(50)
      .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")))
    .addOption(new Option("--max-iterations <n>", "scan iterations").default(10)
      .argParser(numberOption("--max-iterations", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1")))
    .option("--compare", "compare recipes (stock, keeping super weights, clipping) by perplexity and size")
    .option("--text <file>", "--compare: a UTF-8 text file to score (default: a short built-in English text)")
    .option("--text-ids <ids>", "--compare: token ids to score instead of a text, e.g. 1,2,3")
    .option("--demo", "use the embedded demo model (built on first use, no download)")
    .option("--download", "download the model from the Hugging Face Hub when it is not in the local cache")
    .option("--model-id <id>", "the Hugging Face model id (for the scan's published coordinates)")
    .option(...ALLOW_NON_FINITE)
    .option("--json", "print one JSON object")
    .addHelpText("after", `
Examples:
  superweight quantize ./ckpt --format gguf --type Q4_K_M --keep-super -o model.Q4_K_M.gguf
  superweight quantize ./ckpt --format gguf --type Q4_0 --keep 2:3968:7003 --keep-type F16 -o model.Q4_0.gguf
  superweight quantize ./ckpt --format gguf --compare --text heldout.txt --json > compare.json
  superweight quantize --demo --format gguf --clip zscore:6 --keep-super -o demo.gguf

A --compare --json file draws Figure 7 of \`superweight report --quantize-compare FILE\`.`);
  const owner = new Map<string, string>();
  for (const f of FORMATS)
    for (const option of f.options()) {
      option.description = `[--format ${f.name}] ${option.description}`;
      cmd.addOption(option);
      owner.set(option.attributeName(), f.name);
    }
  return cmd.action(async (ref: string | undefined, all: SharedQuantizeOptions & Record<string, unknown>) => {
    const branch = FORMATS.find((f) => f.name === all.format)!;
    for (const [key, format] of owner)
      if (format !== branch.name && cmd.getOptionValueSource(key) === "cli")
        throw new UserError(`${cmd.options.find((x) => x.attributeName() === key)!.long} is a --format ${format} ` +
          "option");
    if (all.text !== undefined && all.textIds !== undefined) throw new UserError("give --text or --text-ids, not both");
    if (!all.out && !all.compare) throw new UserError("give --out FILE (or --compare to only compare recipes)");
    const out = all.out === undefined ? undefined : checkOutNew(all.out, all.force === true);
    const opened = await openModel(ref, all);
    try {
      if (out) checkOutNotSource(out, opened);
      const keep = (all.keep ?? []).map((k) => keptWeight(opened, k));
      const needed = all.keepSuper || keep.length > 0 || all.clip.method !== "none" || all.compare;
      let found: Promise<SuperWeightSet> | undefined;
      const ctx: QuantizeContext = {
        opened, o: all, out, quiet: quietProgress(all.json),
        superWeights: () => {
          if (keep.length) return Promise.resolve({ source: "keep", weights: keep, outliers: [] });
          if (!needed) return Promise.resolve({ source: "none", weights: [], outliers: [] });
          return (found ??= scanSuperWeights(opened, all, quietProgress(all.json)));
        },
        evalIds: () => compareIds(opened, all),
      };
      await branch.run(ctx, all);
    } finally {
      opened.model.close();
    }
  });
}

/** --out: not an existing file unless --force, never a folder, in a folder that exists. */
function checkOutNew(out: string, force: boolean): string {
  const path = resolve(out);
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) throw new UserError(`--out ${out} is a folder: give a file name`);
    if (!force) throw new UserError(`--out ${out} exists: pass --force to replace it`);
  }
  if (!existsSync(dirname(path)) || !statSync(dirname(path)).isDirectory())
    throw new UserError(`--out ${out}: the folder ${dirname(path)} does not exist`);
  return path;
}

/** The model's own files (and folder) are never written over. */
function checkOutNotSource(out: string, opened: OpenedModel): void {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : join(realpathSync(dirname(p)), basename(p)));
  const { source } = opened.model;
  const own = new Set([source.path, source.configFile, ...source.names().map((n) => source.fileOf(n))].map(real));
  if (statSync(source.path).isDirectory())
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) own.add(real(join(source.path, f)));
  if (own.has(real(out))) throw new UserError(`--out ${out} is one of the model's own files: choose another path`);
}

/** --keep L:R:C: a weight of layer L's down projection, checked against its shape; its value read. */
function keptWeight(opened: OpenedModel, text: string): SuperWeight {
  const { model } = opened;
  const m = /^(\d+):(\d+):(\d+)$/.exec(text.trim());
  if (!m) throw new UserError(`--keep ${text}: expected layer:row:column, e.g. 2:1234:5678`);
  const [layer, row, column] = m.slice(1).map(Number);
  if (layer >= model.spec.layers)
    throw new UserError(`--keep ${text}: layer ${layer} is outside the model's ${model.spec.layers} layers`);
  const projections = model.arch.downProjections(model.spec, layer);
  if (projections.length !== 1)
    throw new UserError(`--keep ${text}: layer ${layer} has ${projections.length} down projections (experts)`);
  const tensor = projections[0].tensor;
  const shape = model.shape(tensor);
  const kn = model.layout(tensor) === "kn";
  const [rows, cols] = kn ? [shape[1], shape[0]] : shape;
  if (row >= rows || column >= cols)
    throw new UserError(`--keep ${text}: [${row}, ${column}] is outside ${tensor} ` +
      `(${rows} output × ${cols} input channels)`);
  const value = kn ? model.weight(tensor, column, row) : model.weight(tensor, row, column);
  return { layer, row, column, tensor, value };
}

async function scanSuperWeights(
  opened: OpenedModel, o: SharedQuantizeOptions, quiet: boolean,
): Promise<SuperWeightSet> {
  const report = await scan(opened.model, inputs(opened, o.prompt ?? [], o.ids ?? [], DEFAULT_PROMPT), {
    threshold: o.threshold, maxIterations: o.maxIterations, label: opened.label, modelId: opened.modelId,
    onProgress: quiet ? undefined : (m) => process.stderr.write(`scan: ${m}\n`),
  });
  const weights: SuperWeight[] = [];
  const outliers: SuperWeightSet["outliers"] = [];
  for (const w of report.superWeights) {
    if (w.expert !== undefined)
      throw new UserError(`the scan found a super weight in expert ${w.expert} of layer ${w.layer}: ` +
        "experts cannot be kept here");
    const { layer, row, column, tensor, value } = w;
    if (w.class === "super") weights.push({ layer, row, column, tensor, value });
    else outliers.push({ layer: w.layer, row: w.row, column: w.column });
  }
  return { source: "scan", weights, outliers };
}

function compareIds(opened: OpenedModel, o: SharedQuantizeOptions): number[] {
  let ids: number[];
  if (o.textIds !== undefined) ids = parseIds(o.textIds, "--text-ids");
  else {
    let text = DEFAULT_COMPARE_TEXT;
    if (o.text !== undefined) {
      try {
        text = readFileSync(o.text, "utf8");
      } catch (e) {
        throw new UserError(`cannot read --text: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, o.text);
      }
    }
    ids = inputs(opened, [text], [])[0].ids;
  }
  const bad = ids.find((id) => id >= opened.model.spec.vocab);
  if (bad !== undefined)
    throw new UserError(`--text-ids: token id ${bad} is outside the vocabulary (0..${opened.model.spec.vocab - 1})`);
  if (ids.length < 2) throw new UserError("the --compare text must be at least 2 tokens long");
  return ids;
}

/** A progress bar over the tensors being written. */
function tensorProgress(quiet: boolean, title: string) {
  let bar: ReturnType<typeof progress> | undefined;
  return (name: string, index: number, count: number) => {
    if (quiet) return;
    if (index === 0) bar = progress(title, count);
    bar!.tick(name);
    if (index === count - 1) bar!.stop();
  };
}

// ---- --format gguf ----

interface GgufOptions {
  type: Ftype;
  keepType: KeepType;
  name?: string;
  standInVocab?: boolean;
  approximateTokenizer?: boolean;
}

const ggufFormat: FormatBranch = {
  name: "gguf",
  summary: "a llama.cpp GGUF file (llama.cpp's mixtures; the tensors holding super weights at --keep-type)",
  options: () => [
    new Option("--type <type>", `GGUF file type (${Object.keys(FTYPES).join(", ")})`)
      .default("Q4_K_M").argParser(parseFtype),
    new Option("--keep-type <type>", `type of the tensors holding super weights (${KEEP_TYPES.join(", ")})`)
      .default(DEFAULT_KEEP_TYPE).argParser(parseKeepType),
    new Option("--name <name>", "general.name (default: the model folder's name)"),
    new Option("--stand-in-vocab", "without tokenizer.json: write a placeholder byte-level vocabulary " +
      "(token ids keep their meaning, text does not)"),
    new Option("--approximate-tokenizer", "write byte-level tokenizers llama.cpp only approximates (NFC, some " +
      "pre-tokenizers), as convert_hf_to_gguf.py does"),
  ],
  async run(ctx, raw) {
    const o = { ...ctx.o, ...(raw as unknown as GgufOptions) };
    const { model } = ctx.opened;
    const base = {
      ftype: o.type, keepType: o.keepType, name: o.name,
      vocabulary: exportVocabulary(model, { standIn: o.standInVocab, approximate: o.approximateTokenizer }),
    };
    // Everything the file needs is checked before a scan or a byte is written.
    planGgufExport(model, { ...base, keepSuper: false, clip: { method: "none" }, superWeights: [] });
    const found = await ctx.superWeights();
    let comparison: Comparison | undefined;
    if (o.compare) {
      const recipes = standardRecipes(o.type, o.keepType, o.clip, found.weights);
      const ids = ctx.evalIds();
      comparison = await compareGgufRecipes(model, recipes, {
        ...base, ids, window: Math.min(model.spec.maxPositions, 512),
        onRecipe: ctx.quiet ? undefined : (label, i, n) => process.stderr.write(`compare: ${i + 1}/${n} ${label}\n`),
      });
    }
    let exported: GgufExportResult | undefined;
    if (ctx.out) {
      const keepSuper = o.keepSuper === true || (o.keep ?? []).length > 0;
      const plan = planGgufExport(model, { ...base, keepSuper, clip: o.clip, superWeights: found.weights });
      const tick = tensorProgress(ctx.quiet, "gguf");
      exported = writeGgufExport(plan, ctx.out, { onTensor: (t, i, n) => tick(t.name, i, n) });
    }
    if (o.json) process.stdout.write(ggufQuantizeJson({ found, comparison, exported }) + "\n");
    else process.stdout.write(renderGgufQuantize({ found, comparison, exported }) + "\n");
  },
};

const FORMATS: FormatBranch[] = [ggufFormat];
