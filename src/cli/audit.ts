// `superweight audit`: what a GGUF file's quantization did to the super weights, their block-mates, the super
// activation and the NLL, against the original checkpoint when one is given (src/superweight/audit.ts).
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { readText } from "../checkpoint/files.js";
import { audit } from "../superweight/audit.js";
import { DEFAULT_PROMPT } from "../superweight/scan.js";
import { auditJson, renderAudit } from "../report/audit-text.js";
import {
  ALLOW_NON_FINITE,
  collect,
  inputs,
  numberOption,
  openModel,
  quietProgress,
  type OpenedModel,
  output,
} from "./common.js";

interface AuditOptions {
  reference?: string;
  modelId?: string;
  prompt?: string[];
  ids?: string[];
  text?: string;
  maxTokens: number;
  threshold: number;
  maxIterations: number;
  json?: boolean;
  download?: boolean;
  allowNonFinite?: boolean;
}

const positiveInteger = (name: string, least: number) =>
  numberOption(name, (n) => Number.isInteger(n) && n >= least, `an integer ≥ ${least}`);

export function auditCommand(): Command {
  return new Command("audit")
    .description(
      "audit a GGUF file's super weights: their stored values, their block-mates' error, the super " +
        "activation and the NLL, against the original checkpoint when given",
    )
    .argument("<model>", "a .gguf file (or a folder holding one GGUF model)")
    .option("--reference <model>", "the original checkpoint: a folder or Hugging Face model id (in the local cache)")
    .option("--model-id <id>", "the Hugging Face model id, for its published coordinates (default: from the metadata)")
    .option("-p, --prompt <text>", `prompt for the scans (repeatable; default "${DEFAULT_PROMPT}")`, collect)
    .option("--ids <ids>", "token ids instead of text, e.g. 1,2,3 (repeatable)", collect)
    .option("--text <file>", "a UTF-8 text file to score the NLL on (default: the prompts)")
    .addOption(
      new Option("--max-tokens <n>", "most tokens of --text scored")
        .default(1024)
        .argParser(positiveInteger("--max-tokens", 2)),
    )
    .addOption(
      new Option("--threshold <x>", "spike threshold on max |activation|")
        .default(50)
        .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")),
    )
    .addOption(
      new Option("--max-iterations <n>", "zero what was found and rerun at most this many times")
        .default(10)
        .argParser(positiveInteger("--max-iterations", 1)),
    )
    .option("--download", "download the reference from the Hugging Face Hub when it is not in the local cache")
    .option(...ALLOW_NON_FINITE)
    .option("--json", "print one JSON object")
    .addHelpText(
      "after",
      `
Examples:
  superweight audit model.Q4_K_M.gguf
  superweight audit model.Q4_K_M.gguf --reference meta-llama/Llama-2-7b-hf --text heldout.txt
  superweight audit ./folder-with-one-gguf --ids 1,2,3 --json

Exit status 0 whatever the verdict (it is the report's last line, and "verdict" in --json); 2 for a bad file
or option.`,
    )
    .action(async (ref: string, o: AuditOptions) => {
      const opened = await openModel(ref, { allowNonFinite: o.allowNonFinite });
      let reference: OpenedModel | undefined;
      try {
        if (o.reference)
          reference = await openModel(o.reference, { download: o.download, allowNonFinite: o.allowNonFinite });
        const list = inputs(opened, o.prompt ?? [], o.ids ?? [], DEFAULT_PROMPT);
        const quiet = quietProgress(o.json);
        const report = await audit(opened.model, reference?.model, {
          inputs: list,
          text: o.text ? textInput(o.text, opened, reference) : undefined,
          maxTokens: o.maxTokens,
          threshold: o.threshold,
          maxIterations: o.maxIterations,
          modelId: o.modelId,
          referenceModelId: reference?.modelId,
          label: opened.label,
          referenceLabel: reference?.label,
          onProgress: quiet ? undefined : (m) => process.stderr.write(`audit: ${m}\n`),
        });
        output.write((o.json ? auditJson(report) : renderAudit(report)) + "\n");
      } finally {
        opened.model.close();
        reference?.model.close();
      }
    });
}

/** --text through the file's own tokenizer (else the reference's): the same ids go to both models. */
function textInput(file: string, opened: OpenedModel, reference?: OpenedModel) {
  const tokenizer = opened.tokenizer ?? reference?.tokenizer;
  if (!tokenizer)
    throw opened.tokenizerError ?? new UserError(`${opened.model.path} has no tokenizer to read --text ${file} with`);
  return { label: file, ids: tokenizer.encode(readText(file)) };
}
