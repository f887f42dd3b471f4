// `superweight scan`: find super weights and super activations from forward passes, no data set.
import { Command, Option } from "commander";
import { scan, DEFAULT_PROMPT } from "../superweight/scan.js";
import { renderScan, scanJson } from "../report/scan-text.js";
import { progress, type Progress } from "../report/progress.js";
import { collect, inputs, modelOptions, numberOption, openModel, quietProgress, output } from "./common.js";

interface ScanOptions {
  prompt?: string[];
  ids?: string[];
  threshold: number;
  maxIterations: number;
  json?: boolean;
  demo?: boolean;
  download?: boolean;
  revision?: string;
  offline?: boolean;
  allowNonFinite?: boolean;
  modelId?: string;
}

export function scanCommand(): Command {
  return modelOptions(
    new Command("scan")
      .description(
        "find super weights: the paper's rule on down_proj spikes, iterated, each candidate classified by its activation and a causal check",
      )
      .argument("[model]", "checkpoint folder or Hugging Face model id (in the local cache)")
      .option("-p, --prompt <text>", `prompt (repeatable; default "${DEFAULT_PROMPT}")`, collect)
      .option("--ids <ids>", "token ids instead of text, e.g. 1,2,3 (repeatable)", collect)
      .addOption(
        new Option("--threshold <x>", "spike threshold on max |activation|")
          .default(50)
          .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")),
      )
      .addOption(
        new Option("--max-iterations <n>", "zero what was found and rerun at most this many times")
          .default(10)
          .argParser(numberOption("--max-iterations", (n) => Number.isInteger(n) && n >= 1, "an integer ≥ 1")),
      )
      .option(
        "--model-id <id>",
        "the Hugging Face model id, to check the published coordinates (default: from the cache path or config.json)",
      )
      .option("--json", "print one JSON object")
      .addHelpText(
        "after",
        `
Examples:
  superweight scan --demo
  superweight scan meta-llama/Llama-2-7b-hf --download
  superweight scan ./ckpt --prompt "Hello" --prompt "The" --json
  superweight scan ~/models/mistral-7b.Q4_K_M.gguf`,
      ),
  ).action(async (ref: string | undefined, o: ScanOptions) => {
    const opened = await openModel(ref, o);
    try {
      const list = inputs(opened, o.prompt ?? [], o.ids ?? [], DEFAULT_PROMPT);
      const quiet = quietProgress(o.json);
      // A bar per sweep over the layers (on a terminal), and a line per pass.
      const layers = opened.model.spec.layers;
      let bar: Progress | undefined;
      const report = await scan(opened.model, list, {
        threshold: o.threshold,
        maxIterations: o.maxIterations,
        label: opened.label,
        modelId: opened.modelId,
        tokenText: opened.tokenizer ? (id) => opened.tokenizer!.tokenText(id) : undefined,
        onProgress: quiet ? undefined : (m) => process.stderr.write(`scan: ${m}\n`),
        onLayer: quiet
          ? undefined
          : (layer, from) => {
              if (layer === from) bar = progress(`layers ${from}-${layers - 1}`, layers - from);
              bar!.tick(`layer ${layer}`);
              if (layer === layers - 1) bar!.stop();
            },
      });
      output.write((o.json ? scanJson(report) : renderScan(report)) + "\n");
    } finally {
      opened.model.close();
    }
  });
}
