// `superweight report`: scan a model, evaluate its super weights zeroed (and scaled), and write the paper's
// figures for it as one self-contained HTML file (or print the data behind it with --json).
import { existsSync, realpathSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { DEFAULT_PROMPT } from "../superweight/scan.js";
import { readTextCorpus } from "../data/index.js";
import { buildReport, reportJson, type ReportData } from "../report/html-data.js";
import { renderReportHtml, writeReportHtml } from "../report/html.js";
import { readQuantComparisons } from "../report/figures-quantize.js";
import { progress, type Progress } from "../report/progress.js";
import { collect, inputs, modelOptions, numberOption, openModel, quietProgress, output } from "./common.js";

interface ReportOptions {
  out?: string;
  json?: boolean;
  prompt: string[];
  ids: string[];
  threshold: number;
  maxIterations: number;
  modelId?: string;
  text?: string;
  ctx?: number;
  stride?: number;
  windowBos?: boolean;
  maxTokens?: number;
  sweepScale?: number[];
  quantizeCompare: string[];
  top: number;
  demo?: boolean;
  download?: boolean;
  revision?: string;
  offline?: boolean;
  allowNonFinite?: boolean;
}

const whole = (name: string, min: number) =>
  numberOption(name, (n) => Number.isInteger(n) && n >= min, `an integer ≥ ${min}`);
const factors = (value: string) =>
  value.split(",").map((v) => numberOption("--sweep-scale", Number.isFinite, "a comma-separated list of numbers")(v));

export function reportCommand(): Command {
  return modelOptions(
    new Command("report")
      .description(
        "the paper's figures for one model as a self-contained HTML file: spikes per layer, the super " +
          "activation with and without the super weights, the next-token shift, a scale sweep, a quantization comparison",
      )
      .argument("[model]", "checkpoint folder, .gguf file or Hugging Face model id (in the local cache)")
      .option("-o, --out <file>", "the HTML file to write (atomically; an existing .html file is replaced)")
      .option("--json", "print the report's data (the object the HTML is built from) as one JSON object")
      .option(
        "-p, --prompt <text>",
        `prompt for the scan and the measurements (repeatable; default "${DEFAULT_PROMPT}")`,
        collect,
        [],
      )
      .option("--ids <ids>", "token ids instead of a prompt's text, e.g. 1,2,3 (repeatable)", collect, [])
      .addOption(
        new Option("--threshold <x>", "the scan's spike threshold on max |activation|")
          .default(50)
          .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")),
      )
      .addOption(
        new Option("--max-iterations <n>", "the scan's iterations").default(10).argParser(whole("--max-iterations", 1)),
      )
      .option(
        "--model-id <id>",
        "the Hugging Face model id, to check the published coordinates " +
          "(default: from the cache path or config.json)",
      )
      .option("--text <file>", "perplexity of a UTF-8 text file (with the super weights zeroed, and for the sweep)")
      .addOption(
        new Option("--ctx <n>", "--text: positions per window (default: 2048, at most the model's)").argParser(
          whole("--ctx", 2),
        ),
      )
      .addOption(
        new Option("--stride <n>", "--text: tokens between window starts (default: a whole window)").argParser(
          whole("--stride", 1),
        ),
      )
      .option("--window-bos", "--text: start every window with the BOS token")
      .addOption(
        new Option("--max-tokens <n>", "--text: score only its first N tokens").argParser(whole("--max-tokens", 1)),
      )
      .addOption(
        new Option(
          "--sweep-scale <list>",
          "Figure 6: scale the super weights by each factor, e.g. 0,0.5,1,2,3",
        ).argParser(factors),
      )
      .option(
        "--quantize-compare <file>",
        "Figure 7: a `superweight quantize --compare --json` output (repeatable)",
        collect,
        [],
      )
      .addOption(
        new Option("--top <k>", "tokens per direction in the next-token shift").default(8).argParser(whole("--top", 1)),
      )
      .addHelpText(
        "after",
        `
Examples:
  superweight report --demo --out demo.html
  superweight report meta-llama/Llama-2-7b-hf --download --out llama2.html --text heldout.txt --ctx 512
  superweight report ./ckpt --out report.html --sweep-scale 0,0.5,1,1.5,2,3 --quantize-compare q4.json
  superweight report ./ckpt --ids 1,2,3 --json > report.json`,
      ),
  ).action(async (ref: string | undefined, o: ReportOptions) => {
    if (!o.out && !o.json) throw new UserError("give --out FILE.html (or --json to print the report's data)");
    const out = o.out === undefined ? undefined : checkOut(o.out, [o.text, ...o.quantizeCompare]);
    const corpus = o.text === undefined ? undefined : readTextCorpus(o.text);
    const quantization = o.quantizeCompare.length ? readQuantComparisons(o.quantizeCompare) : undefined;
    const opened = await openModel(ref, o);
    try {
      if (out) checkNotInModel(out, opened.model.path);
      const quiet = quietProgress(o.json);
      const layers = opened.model.spec.layers;
      let bar: Progress | undefined;
      const data: ReportData = await buildReport(opened.model, {
        label: opened.label,
        modelId: opened.modelId,
        prompts: inputs(opened, o.prompt, o.ids, DEFAULT_PROMPT),
        threshold: o.threshold,
        maxIterations: o.maxIterations,
        tokenizer: opened.tokenizer,
        perplexity: corpus && { corpus, ctx: o.ctx, stride: o.stride, windowBos: o.windowBos, maxTokens: o.maxTokens },
        sweepScale: o.sweepScale,
        quantization,
        top: o.top,
        onProgress: quiet ? undefined : progressLine(),
        onLayer: quiet
          ? undefined
          : (layer, from) => {
              if (layer === from) bar = progress(`layers ${from}-${layers - 1}`, layers - from);
              bar!.tick(`layer ${layer}`);
              if (layer === layers - 1) bar!.stop();
            },
      });
      if (out) {
        const html = await renderReportHtml(data);
        try {
          writeReportHtml(out, html);
        } catch (e) {
          const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
          throw new UserError(`cannot be written (${why})`, out);
        }
        const line = `wrote ${o.out} (${(Buffer.byteLength(html) / 1024).toFixed(0)} KB): ${summary(data)}\n`;
        (o.json ? process.stderr : process.stdout).write(line);
      }
      if (o.json) output.write(reportJson(data) + "\n");
    } finally {
      opened.model.close();
    }
  });
}

/** --out: a file in a folder that exists; an existing file only if it is an HTML file and none of the inputs. */
function checkOut(path: string, inputFiles: (string | undefined)[]): string {
  const out = resolve(path);
  if (!existsSync(dirname(out))) throw new UserError(`its folder ${dirname(out)} does not exist`, path);
  if (!existsSync(out)) return out;
  if (statSync(out).isDirectory()) throw new UserError("is a folder: --out names the HTML file to write", path);
  const real = realpathSync(out);
  if (inputFiles.some((f) => f !== undefined && existsSync(f) && realpathSync(f) === real))
    throw new UserError("is one of this report's inputs: --out would replace it", path);
  if (!/\.html?$/i.test(out))
    throw new UserError("exists and is not an .html file: refusing to replace it with a report", path);
  return out;
}

function checkNotInModel(out: string, modelPath: string): void {
  const folder = realpathSync(statSync(modelPath).isDirectory() ? modelPath : dirname(modelPath));
  if (realpathSync(dirname(out)) === folder)
    throw new UserError(`is inside the model's folder ${modelPath}: write the report elsewhere`, out);
}

function summary(r: ReportData): string {
  const supers = r.scan.superWeights.filter((w) => w.class === "super").length;
  const f = r.figures;
  const shown = [
    "3",
    ...(f.superActivation.length ? ["2/4"] : []),
    ...(f.shift ? ["5"] : []),
    ...(f.sweep ? ["6"] : []),
    ...(f.quantization ? ["7"] : []),
  ];
  return `${supers} super weight${supers === 1 ? "" : "s"}; figures ${shown.join(", ")}`;
}

/** Progress on stderr: one line per message, or one line rewritten on a terminal. */
function progressLine() {
  return (m: string) => process.stderr.write(process.stderr.isTTY ? `\r\x1b[K${m}` : `${m}\n`);
}
