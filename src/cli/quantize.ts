// `superweight quantize <model> --format F`: a quantized copy of a model. What every format shares is parsed and
// resolved here — the model, --out / --force, the super weights (--keep L:R:C, or a scan on --prompt / --ids),
// --clip, --compare and its text, --json — into a QuantizeContext; each format is a branch (FORMATS) that adds its
// own options (an option several branches take is declared by each) and calls its analysis module (gguf:
// src/export/; rtn, nf4, dequantized: src/compress/).
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { parseClip, type Clip } from "../quant/scheme.js";
import { scan, DEFAULT_PROMPT, type ScanReport } from "../superweight/scan.js";
import { checkTarget } from "../quant/folder.js";
import { parseBits, parseBlock, type Bits, type Block, type Scheme } from "../quant/scheme.js";
import {
  compareQuantization,
  DEFAULT_COMPARE_BITS,
  DEFAULT_COMPARE_BLOCKS,
  DEFAULT_COMPARE_CLIP,
  type QuantizeComparison,
  type SchemeFamily,
} from "../compress/compare.js";
import { ACTIVATION_BITS, type ActivationInputs, type ActivationSite } from "../compress/activations.js";
import { heldWeights, type Selection } from "../compress/tensors.js";
import { scoredText } from "../compress/text.js";
import { quantizeReport, safetensorsSource, writeCompressed, type WrittenCheckpoint } from "../compress/write.js";
import { PAPER_WINDOW_TOKENS, readTextCorpus, readTokenIds, type PerplexityCorpus } from "../data/index.js";
import { quantizeJson, renderQuantize } from "../report/quantize-text.js";
import { progress } from "../report/progress.js";
import {
  DEFAULT_KEEP_TYPE,
  KEEP_TYPES,
  parseFtype,
  parseKeepType,
  type KeepType,
  type SuperWeight,
  type SuperWeightSet,
} from "../export/recipe.js";
import { planGgufExport, writeGgufExport, type GgufExportResult } from "../export/gguf.js";
import { compareGgufRecipes, standardRecipes, type Comparison } from "../export/compare.js";
import { exportVocabulary } from "../export/vocab.js";
import { FTYPES, type Ftype } from "../gguf/mixture.js";
import { ggufQuantizeJson, renderGgufQuantize } from "../report/gguf-export-text.js";
import {
  ALLOW_NON_FINITE,
  collect,
  inputs,
  numberOption,
  openModel,
  parseIds,
  quietProgress,
  type OpenedModel,
  output,
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
  /** Absent: each format's default (none; --compare of rtn/nf4: the paper's zscore:9 for the clip rows). */
  clip?: Clip;
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
  /** The scan's report (the scan runs at most once, even with --keep). */
  scanned(): Promise<ScanReport>;
  /** The --compare text's token ids (--text-ids, --text FILE, or a built-in English paragraph). */
  evalIds(): number[];
  /** Progress off (--json to a pipe, SUPERWEIGHT_PROGRESS=0). */
  quiet: boolean;
}

export interface FormatBranch {
  name: string;
  summary: string;
  /** What --out names: a file, or a checkpoint folder. */
  output: "file" | "folder";
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
    .addOption(
      new Option("--format <format>", "output format").choices(FORMATS.map((f) => f.name)).makeOptionMandatory(),
    )
    .option("-o, --out <path>", "the file (gguf) or checkpoint folder (rtn, nf4, dequantized) to write, atomically")
    .option("--force", "replace --out if it exists")
    .option(
      "--keep-super",
      "keep the super weights (found by a scan unless --keep): gguf, their tensors at " +
        "--keep-type; rtn, nf4, dequantized, held out of their blocks and stored exactly",
    )
    .option("--keep <L:R:C>", "a super weight to keep: layer:row:column of down_proj (repeatable; no scan)", collect)
    .addOption(
      new Option(
        "--clip <method>",
        "clip other outliers before quantizing, super weights held out: none " +
          "(default), zscore:K, block-pct:F, tensor-pct:F",
      ).argParser(parseClip),
    )
    .option("-p, --prompt <text>", `scan prompt (repeatable; default "${DEFAULT_PROMPT}")`, collect)
    .option("--ids <ids>", "scan token ids instead of text, e.g. 1,2,3 (repeatable)", collect)
    .addOption(
      new Option("--threshold <x>", "scan spike threshold")
        .default(50)
        .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")),
    )
    .addOption(
      new Option("--max-iterations <n>", "scan iterations")
        .default(10)
        .argParser(numberOption("--max-iterations", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1")),
    )
    .option("--compare", "compare recipes (stock or naive, keeping super weights, clipping) by perplexity and size")
    .option("--text <file>", "--compare: a UTF-8 text file to score (default: a short built-in English text)")
    .option("--text-ids <ids>", "--compare: token ids to score instead of a text, e.g. 1,2,3")
    .option("--demo", "use the embedded demo model (built on first use, no download)")
    .option("--download", "download the model from the Hugging Face Hub when it is not in the local cache")
    .option("--model-id <id>", "the Hugging Face model id (for the scan's published coordinates)")
    .option(...ALLOW_NON_FINITE)
    .option("--json", "print one JSON object")
    .addHelpText(
      "after",
      `
Examples:
  superweight quantize ./ckpt --format rtn --bits 4 --block 4K --clip zscore:9 --keep-super -o ./ckpt-rtn4
  superweight quantize ./ckpt --format rtn --compare --text heldout.txt --bits 4,3 --json > compare.json
  superweight quantize ./ckpt --format dequantized --bits 4 --block 128 --keep-super -o ./ckpt-fake4
  superweight quantize ./ckpt --format gguf --type Q4_K_M --keep-super -o model.Q4_K_M.gguf
  superweight quantize ./ckpt --format gguf --type Q4_0 --keep 2:3968:7003 --keep-type F16 -o model.Q4_0.gguf
  superweight quantize --demo --format gguf --clip zscore:6 --keep-super -o demo.gguf

A --compare --json file draws Figure 7 of \`superweight report --quantize-compare FILE\`.`,
    );
  // An option several formats take is declared by each; it is added once, owned by all of them.
  const owner = new Map<string, string[]>();
  const declared = new Map<string, Option>();
  for (const f of FORMATS)
    for (const option of f.options()) {
      const key = option.attributeName();
      owner.set(key, [...(owner.get(key) ?? []), f.name]);
      if (!declared.has(key)) declared.set(key, option);
    }
  for (const [key, option] of declared) {
    option.description = `[--format ${owner.get(key)!.join(", ")}] ${option.description}`;
    cmd.addOption(option);
  }
  return cmd.action(async (ref: string | undefined, all: SharedQuantizeOptions & Record<string, unknown>) => {
    const branch = FORMATS.find((f) => f.name === all.format)!;
    for (const [key, formats] of owner)
      if (!formats.includes(branch.name) && cmd.getOptionValueSource(key) === "cli")
        throw new UserError(
          `${cmd.options.find((x) => x.attributeName() === key)!.long} is a --format ` + `${formats.join(", ")} option`,
        );
    if (all.text !== undefined && all.textIds !== undefined) throw new UserError("give --text or --text-ids, not both");
    if (!all.out && !all.compare) throw new UserError("give --out PATH (or --compare to only compare recipes)");
    const file = all.out !== undefined && branch.output === "file";
    const out = file ? checkOutNew(all.out!, all.force === true) : undefined;
    const opened = await openModel(ref, all);
    try {
      if (out) checkOutNotSource(out, opened);
      const folder =
        all.out !== undefined && branch.output === "folder"
          ? checkTarget(opened.model.path, all.out, all.force === true)
          : undefined;
      const keep = (all.keep ?? []).map((k) => keptWeight(opened, k));
      const needed = all.keepSuper || keep.length > 0 || (all.clip ?? NO_CLIP).method !== "none" || all.compare;
      let report: Promise<ScanReport> | undefined;
      const scanned = () => (report ??= scanModel(opened, all, quietProgress(all.json)));
      const ctx: QuantizeContext = {
        opened,
        o: all,
        out: out ?? folder,
        quiet: quietProgress(all.json),
        scanned,
        superWeights: async () => {
          if (keep.length) return { source: "keep", weights: keep, outliers: [] };
          if (!needed) return { source: "none", weights: [], outliers: [] };
          return superWeightSet(await scanned());
        },
        evalIds: () => compareIds(opened, all),
      };
      await branch.run(ctx, all);
    } finally {
      opened.model.close();
    }
  });
}

const NO_CLIP: Clip = { method: "none" };

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
    throw new UserError(
      `--keep ${text}: [${row}, ${column}] is outside ${tensor} ` + `(${rows} output × ${cols} input channels)`,
    );
  const value = kn ? model.weight(tensor, column, row) : model.weight(tensor, row, column);
  return { layer, row, column, tensor, value };
}

function scanModel(opened: OpenedModel, o: SharedQuantizeOptions, quiet: boolean): Promise<ScanReport> {
  return scan(opened.model, inputs(opened, o.prompt ?? [], o.ids ?? [], DEFAULT_PROMPT), {
    threshold: o.threshold,
    maxIterations: o.maxIterations,
    label: opened.label,
    modelId: opened.modelId,
    onProgress: quiet ? undefined : (m) => process.stderr.write(`scan: ${m}\n`),
  });
}

/** The scan's super weights (its outliers apart); experts cannot be kept. */
function superWeightSet(report: ScanReport): SuperWeightSet {
  const weights: SuperWeight[] = [];
  const outliers: SuperWeightSet["outliers"] = [];
  for (const w of report.superWeights) {
    if (w.expert !== undefined)
      throw new UserError(
        `the scan found a super weight in expert ${w.expert} of layer ${w.layer}: ` + "experts cannot be kept here",
      );
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
  output: "file",
  summary: "a llama.cpp GGUF file (llama.cpp's mixtures; the tensors holding super weights at --keep-type)",
  options: () => [
    new Option("--type <type>", `GGUF file type (${Object.keys(FTYPES).join(", ")})`)
      .default("Q4_K_M")
      .argParser(parseFtype),
    new Option("--keep-type <type>", `type of the tensors holding super weights (${KEEP_TYPES.join(", ")})`)
      .default(DEFAULT_KEEP_TYPE)
      .argParser(parseKeepType),
    new Option("--name <name>", "general.name (default: the model folder's name)"),
    new Option(
      "--stand-in-vocab",
      "without tokenizer.json: write a placeholder byte-level vocabulary " +
        "(token ids keep their meaning, text does not)",
    ),
    new Option(
      "--approximate-tokenizer",
      "write byte-level tokenizers llama.cpp only approximates (NFC, some " +
        "pre-tokenizers), as convert_hf_to_gguf.py does",
    ),
  ],
  async run(ctx, raw) {
    const o = { ...ctx.o, ...(raw as unknown as GgufOptions) };
    const clip = o.clip ?? NO_CLIP;
    const { model } = ctx.opened;
    const base = {
      ftype: o.type,
      keepType: o.keepType,
      name: o.name,
      vocabulary: exportVocabulary(model, { standIn: o.standInVocab, approximate: o.approximateTokenizer }),
    };
    // Everything the file needs is checked before a scan or a byte is written.
    planGgufExport(model, { ...base, keepSuper: false, clip: { method: "none" }, superWeights: [] });
    const found = await ctx.superWeights();
    let comparison: Comparison | undefined;
    if (o.compare) {
      const recipes = standardRecipes(o.type, o.keepType, clip, found.weights);
      const ids = ctx.evalIds();
      comparison = await compareGgufRecipes(model, recipes, {
        ...base,
        ids,
        window: Math.min(model.spec.maxPositions, 512),
        onRecipe: ctx.quiet ? undefined : (label, i, n) => process.stderr.write(`compare: ${i + 1}/${n} ${label}\n`),
      });
    }
    let exported: GgufExportResult | undefined;
    if (ctx.out) {
      const keepSuper = o.keepSuper === true || (o.keep ?? []).length > 0;
      const plan = planGgufExport(model, { ...base, keepSuper, clip, superWeights: found.weights });
      const tick = tensorProgress(ctx.quiet, "gguf");
      exported = writeGgufExport(plan, ctx.out, { onTensor: (t, i, n) => tick(t.name, i, n) });
    }
    if (o.json) output.write(ggufQuantizeJson({ found, comparison, exported }) + "\n");
    else output.write(renderGgufQuantize({ found, comparison, exported }) + "\n");
  },
};

// ---- --format rtn, nf4, dequantized (src/compress, src/quant) ----

interface CompressOptions {
  scheme?: "rtn" | "nf4";
  bits?: Bits[];
  nf4Range: "absmax" | "minmax";
  block: Block;
  blocks?: Block[];
  dtype: "BF16" | "F16";
  includeHead?: boolean;
  includeEmbeddings?: boolean;
  actBits?: number[];
  actInputs: ActivationInputs;
  keepSuperActivation?: boolean;
  idsFile?: string;
  ctx?: number;
  stride?: number;
  windowBos?: boolean;
  maxTokens?: number;
  maxVariants: number;
}

const list =
  <T>(parse: (text: string) => T) =>
  (text: string): T[] => [...new Set(text.split(",").map(parse))];
const choice =
  <T extends string>(option: string, values: Record<string, T>) =>
  (text: string): T => {
    if (!(text in values)) throw new UserError(`${option} ${text}: must be ${Object.keys(values).join(" or ")}`);
    return values[text];
  };
const activationBits = (text: string) => {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 2 || n > 16)
    throw new UserError(`--act-bits ${text}: must be whole numbers of bits from 2 to 16 (e.g. ${ACTIVATION_BITS})`);
  return n;
};
const whole = (name: string, min: number) =>
  numberOption(name, (n) => Number.isInteger(n) && n >= min, `an integer ≥ ${min}`);

/** The options of the project's own formats; which of them each format takes. */
function compressOptions(format: "rtn" | "nf4" | "dequantized"): Option[] {
  const rtn = format !== "nf4",
    nf4 = format !== "rtn";
  return [
    ...(format === "dequantized"
      ? [
          new Option("--scheme <scheme>", "the quantizer whose values are stored: rtn " + "(default) or nf4").argParser(
            choice("--scheme", { rtn: "rtn", nf4: "nf4" } as const),
          ),
        ]
      : []),
    ...(rtn
      ? [
          new Option(
            "--bits <list>",
            "rtn code bits, 8, 4, 3 or 2 (default 4; --compare: a list, default " + `${DEFAULT_COMPARE_BITS})`,
          ).argParser(list(parseBits)),
        ]
      : []),
    ...(nf4
      ? [
          new Option("--nf4-range <range>", "NF4 scaling: absmax (QLoRA) or minmax (the paper's code)")
            .default("absmax")
            .argParser(choice("--nf4-range", { absmax: "absmax", minmax: "minmax" } as const)),
        ]
      : []),
    new Option("--block <block>", "weights per scale: tensor, channel (a row) or N (e.g. 128, 64K)")
      .default(128)
      .argParser(parseBlock),
    new Option(
      "--blocks <list>",
      `--compare: the block sizes compared (default ${DEFAULT_COMPARE_BLOCKS.map((b) =>
        typeof b === "number" && b >= 1024 ? `${b / 1024}K` : b,
      ).join(",")})`,
    ).argParser(list(parseBlock)),
    ...(format === "dequantized"
      ? [
          new Option("--dtype <dtype>", "the stored dtype of the dequantized weights")
            .default("BF16", "bf16")
            .argParser(choice("--dtype", { bf16: "BF16", f16: "F16" } as const)),
        ]
      : []),
    new Option("--include-head", "quantize the LM head too"),
    new Option("--include-embeddings", "quantize the embeddings too"),
    new Option(
      "--act-bits <list>",
      `--compare: also quantize every down_proj input to these bits, per tensor (e.g. ` + `${ACTIVATION_BITS})`,
    ).argParser(list(activationBits)),
    new Option(
      "--act-inputs <which>",
      "--compare with --act-bits: the activations quantized: down_proj (its inputs, " +
        "the paper's experiment) or all (every linear layer's input)",
    )
      .default("down_proj")
      .argParser(choice("--act-inputs", { down_proj: "down_proj", all: "linear" } as const)),
    new Option(
      "--keep-super-activation",
      "--compare with --act-bits: also each with the super activation (from a " + "scan) held out",
    ),
    new Option("--ids-file <file>", "--compare: a file of token ids to score instead of a text"),
    new Option(
      "--ctx <n>",
      "--compare: positions per perplexity window (default: 2048, at most the model's)",
    ).argParser(whole("--ctx", 2)),
    new Option("--stride <n>", "--compare: tokens between window starts (default: a whole window)").argParser(
      whole("--stride", 1),
    ),
    new Option("--window-bos", "--compare: start every window with the BOS token"),
    new Option("--max-tokens <n>", "--compare: score only the first N tokens").argParser(whole("--max-tokens", 1)),
    new Option(
      "--max-variants <n>",
      "--compare: configurations per pass, the unquantized model included (more run " +
        "in more passes; memory grows with it)",
    )
      .default(16)
      .argParser(whole("--max-variants", 2)),
  ];
}

/** The --compare text: --text FILE, --ids-file FILE, --text-ids, or the built-in English paragraph. */
function compareCorpus(o: SharedQuantizeOptions & CompressOptions): PerplexityCorpus {
  if ([o.text, o.idsFile, o.textIds].filter((x) => x !== undefined).length > 1)
    throw new UserError("give one of --text, --ids-file, --text-ids");
  if (o.text !== undefined) return readTextCorpus(o.text);
  if (o.idsFile !== undefined) return readTokenIds(o.idsFile);
  const base = { windowTokens: PAPER_WINDOW_TOKENS };
  if (o.textIds !== undefined) {
    const ids = parseIds(o.textIds, "--text-ids");
    return { ...base, kind: "ids", name: "--text-ids", ids, source: { file: "--text-ids" } };
  }
  const text = DEFAULT_COMPARE_TEXT;
  return { ...base, kind: "text", name: "built-in text", text, source: { file: "built-in text" } };
}

function compressFormat(name: "rtn" | "nf4" | "dequantized", summary: string): FormatBranch {
  return {
    name,
    summary,
    output: "folder",
    options: () => compressOptions(name),
    async run(ctx, raw) {
      const o = { ...ctx.o, ...(raw as unknown as CompressOptions) };
      const { model, tokenizer } = ctx.opened;
      safetensorsSource(model);
      const kind = name === "dequantized" ? (o.scheme ?? "rtn") : name;
      if (kind === "nf4" && o.bits) throw new UserError("--bits: nf4 codes are 4 bits (--bits is for rtn)");
      if (o.actBits && !o.compare) throw new UserError("--act-bits quantizes activations for --compare only");
      if (o.keepSuperActivation && !o.actBits) throw new UserError("--keep-super-activation needs --act-bits");
      if (o.actInputs === "linear" && !o.actBits) throw new UserError("--act-inputs all needs --act-bits");
      const family: SchemeFamily = kind === "rtn" ? { kind: "rtn" } : { kind: "nf4", range: o.nf4Range };
      const selection: Selection = { includeHead: o.includeHead, includeEmbeddings: o.includeEmbeddings };
      let scheme: Scheme | undefined;
      if (ctx.out) {
        if (o.bits && o.bits.length > 1) throw new UserError("--out writes one width: give one --bits");
        const clip = o.clip ?? NO_CLIP;
        scheme =
          family.kind === "rtn"
            ? { kind: "rtn", bits: o.bits?.[0] ?? 4, block: o.block, clip }
            : { kind: "nf4", range: family.range, block: o.block, clip };
      }
      // Everything the text needs is checked before a scan or a pass runs.
      const text = o.compare
        ? scoredText(model, compareCorpus(o), tokenizer, {
            ctx: o.ctx,
            stride: o.stride,
            windowBos: o.windowBos,
            maxTokens: o.maxTokens,
          })
        : undefined;
      const found = await ctx.superWeights();
      const held = heldWeights(model, found.weights);
      let comparison: QuantizeComparison | null = null;
      if (text) {
        const sites: ActivationSite[] = o.keepSuperActivation
          ? (await ctx.scanned()).superWeights
              .filter((w) => w.class === "super" && w.expert === undefined)
              .map((w) => ({ layer: w.layer, tensor: w.tensor, token: w.inputToken, channel: w.column }))
          : [];
        comparison = await compareQuantization(model, {
          plan: {
            family,
            bits: o.bits ?? DEFAULT_COMPARE_BITS,
            blocks: o.blocks ?? DEFAULT_COMPARE_BLOCKS,
            clip: o.clip ?? DEFAULT_COMPARE_CLIP,
            holdOut: held.length > 0,
            activationBits: o.actBits ?? [],
            activationInputs: o.actInputs,
            keepSuperActivation: !!o.keepSuperActivation,
          },
          selection,
          superWeights: { source: found.source, held },
          superActivations: sites,
          ...text,
          maxVariants: o.maxVariants,
          onPass: ctx.quiet ? undefined : (i, n) => process.stderr.write(`compare: pass ${i}/${n}\n`),
        });
      }
      let written: WrittenCheckpoint | null = null;
      if (ctx.out && scheme) {
        // Clipping never clips the super weights: they are held out (docs/quantize.md).
        const keepSuper = o.keepSuper === true || (o.keep ?? []).length > 0 || scheme.clip.method !== "none";
        written = writeCompressed(model, ctx.out, {
          format: name === "dequantized" ? "dequantized" : "packed",
          scheme,
          selection,
          held: keepSuper ? held : [],
          dtype: o.dtype,
          force: o.force,
        });
      }
      const report = quantizeReport(model, name, { source: found.source, held }, written, comparison);
      output.write((o.json ? quantizeJson(report) : renderQuantize(report)) + "\n");
    },
  };
}

const FORMATS: FormatBranch[] = [
  ggufFormat,
  compressFormat("rtn", "the packed checkpoint of round-to-nearest codes (docs/quantized-format.md)"),
  compressFormat("nf4", "the packed checkpoint of NF4 codes"),
  compressFormat("dequantized", "plain safetensors of the dequantized weights (bf16, f16) for any Hugging Face tool"),
];
