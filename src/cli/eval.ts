// `superweight eval`: what a super weight does to the model — perplexity, zero-shot accuracy, the
// next-token shift, greedy continuations — with interventions applied in memory, beside the baseline.
import { Command, Option } from "commander";
import { UserError } from "../errors.js";
import { DEFAULT_PROMPT } from "../superweight/scan.js";
import {
  loadCorpus,
  loadTask,
  readTaskFile,
  readTextCorpus,
  readTokenIds,
  type PerplexityCorpus,
  type Task,
} from "../data/index.js";
import { resolveRepoFile } from "../checkpoint/resolve.js";
import { evaluate } from "../eval/eval.js";
import { parseCoordinate, parseScale } from "../eval/interventions.js";
import { readPromptFile } from "../eval/prompts.js";
import { itemLines } from "../eval/choice.js";
import { renderEval } from "../report/eval-text.js";
import { downloadProgress } from "../report/progress.js";
import { evalJson } from "../report/eval-json.js";
import { chatPromptIds, chatTemplateFor, plainEncoder } from "../eval/tokens.js";
import {
  collect,
  inputs,
  modelOptions,
  numberOption,
  openModel,
  quietProgress,
  type OpenedModel,
  output,
} from "./common.js";

interface EvalOptions {
  demo?: boolean;
  download?: boolean;
  revision?: string;
  offline?: boolean;
  allowNonFinite?: boolean;
  modelId?: string;
  json?: boolean;
  prompt: string[];
  ids: string[];
  prompts?: string;
  threshold: number;
  maxIterations: number;
  zero: string[];
  scale: string[];
  zeroSuper?: boolean;
  scaleSuper?: number;
  pruneOutliers?: number;
  keepSuper?: boolean;
  restoreSuperActivation?: boolean;
  sweepScale?: number[];
  leaveOneOut?: boolean;
  null: number;
  seed: number;
  text?: string;
  idsFile?: string;
  dataset?: string;
  ctx?: number;
  stride?: number;
  windowBos?: boolean;
  maxTokens?: number;
  task: string[];
  tasks?: string[];
  limit?: number;
  addBos?: boolean;
  generate?: number;
  chat?: boolean;
  top: number;
  maxVariants: number;
}

const whole = (name: string, min: number) =>
  numberOption(name, (n) => Number.isInteger(n) && n >= min, `an integer ≥ ${min}`);
const list = (name: string) => (value: string) =>
  value.split(",").map((v) => numberOption(name, Number.isFinite, "a comma-separated list of numbers")(v));

export function evalCommand(): Command {
  return modelOptions(
    new Command("eval")
      .description(
        "what a super weight does: perplexity, accuracy, next-token shift and generation, " +
          "with weights zeroed or scaled in memory, beside the baseline",
      )
      .argument("[model]", "checkpoint folder or Hugging Face model id (in the local cache)")
      .option("--model-id <id>", "the Hugging Face model id (default: from the cache path or config.json)")
      .option(
        "-p, --prompt <text>",
        `prompt for the scan, the prompt measurements and --generate (repeatable; default "${DEFAULT_PROMPT}")`,
        collect,
        [],
      )
      .option("--ids <ids>", "token ids instead of a prompt's text, e.g. 1,2,3 (repeatable)", collect, [])
      .option("--prompts <file>", "more prompts, one per line")
      .addOption(
        new Option("--threshold <x>", "the scan's spike threshold")
          .default(50)
          .argParser(numberOption("--threshold", (n) => n > 0, "a positive number")),
      )
      .addOption(
        new Option("--max-iterations <n>", "the scan's iterations").default(10).argParser(whole("--max-iterations", 1)),
      )
      .option(
        "--zero <L:R:C>",
        "zero down_proj weight [layer, row = output channel, column = input channel] " +
          "(L:E:R:C for an expert; repeatable)",
        collect,
        [],
      )
      .option("--scale <L:R:C=F>", "multiply that weight by F (repeatable)", collect, [])
      .option("--zero-super", "zero the weights the scan classifies super")
      .addOption(
        new Option("--scale-super <F>", "multiply the super weights by F").argParser(
          numberOption("--scale-super", Number.isFinite, "a number"),
        ),
      )
      .addOption(
        new Option(
          "--prune-outliers <fraction>",
          "zero the largest-|w| fraction of every linear weight (0.001 = 0.1%)",
        ).argParser(numberOption("--prune-outliers", (n) => n > 0 && n < 1, "a fraction between 0 and 1")),
      )
      .option("--keep-super", "with --prune-outliers: never zero the super weights")
      .option(
        "--restore-super-activation",
        "with the super weights changed, put the original super activation back at its layer's down_proj output",
      )
      .addOption(
        new Option(
          "--sweep-scale <list>",
          "scale the super weights (or the --zero/--scale weights) by each factor, e.g. 0,0.5,1,2",
        ).argParser(list("--sweep-scale")),
      )
      .option("--leave-one-out", "with several weights changed: also each alone and all but each")
      .addOption(
        new Option(
          "--null <n>",
          "repeat each intervention on N random weights of the same tensor and |w| rank neighbourhood " +
            "(random sets for --prune-outliers)",
        )
          .default(0)
          .argParser(whole("--null", 0)),
      )
      .addOption(new Option("--seed <n>", "seed of the null draws").default(0).argParser(whole("--seed", 0)))
      .option("--text <file>", "perplexity of a UTF-8 text file")
      .option("--ids-file <file>", "perplexity of a file of token ids")
      .option("--dataset <name>", "perplexity of a named corpus (wikitext-2, c4), from the Hugging Face cache")
      .addOption(
        new Option("--ctx <n>", "positions per perplexity window (default: 2048, at most the model's)").argParser(
          whole("--ctx", 2),
        ),
      )
      .addOption(
        new Option("--stride <n>", "tokens between window starts (default: a whole window)").argParser(
          whole("--stride", 1),
        ),
      )
      .option("--window-bos", "start every window with the BOS token (which then predicts the window's first token)")
      .addOption(
        new Option("--max-tokens <n>", "score only the first N tokens of the input").argParser(
          whole("--max-tokens", 1),
        ),
      )
      .option("--task <file>", "a multiple-choice JSONL file of {context, choices, answer} (repeatable)", collect, [])
      .addOption(
        new Option("--tasks <names>", "named tasks, e.g. arc_easy,piqa (from the Hugging Face cache)").argParser(
          (v: string) => v.split(",").filter(Boolean),
        ),
      )
      .addOption(
        new Option("--limit <n>", "the first N items of each task (windows of a corpus)").argParser(
          whole("--limit", 1),
        ),
      )
      .option("--add-bos", "start every task context with the BOS token (the harness's add_bos_token)")
      .addOption(
        new Option("--generate <n>", "greedy continuation of N tokens of each prompt, per arm").argParser(
          whole("--generate", 1),
        ),
      )
      .option("--chat", "render the prompts with the model's chat template")
      .addOption(
        new Option("--top <k>", "tokens listed per direction in the next-token shift")
          .default(8)
          .argParser(whole("--top", 1)),
      )
      .addOption(
        new Option("--max-variants <n>", "variants per pass (more arms run in more passes)")
          .default(16)
          .argParser(whole("--max-variants", 2)),
      )
      .option("--json", "print one JSON object")
      .addHelpText(
        "after",
        `
--download and --offline apply to the data sets too (Hugging Face dataset repositories, pinned revisions).

Examples:
  superweight eval ./ckpt --zero-super --text heldout.txt --ctx 512
  superweight eval ./ckpt --zero 2:3968:7003 --null 20 --dataset wikitext-2 --limit 40
  superweight eval ./ckpt --sweep-scale 0,0.2,0.5,1,1.5,2,3 --tasks arc_easy,piqa --limit 200
  superweight eval ./ckpt --prune-outliers 0.001 --keep-super --restore-super-activation --zero-super --task my.jsonl
  superweight eval ./ckpt --zero-super --generate 40 --chat --prompt "Tell me about Paris." --json`,
      ),
  ).action(async (ref: string | undefined, o: EvalOptions) => {
    const sources = [o.text, o.idsFile, o.dataset].filter((s) => s !== undefined);
    if (sources.length > 1) throw new UserError("give one of --text, --ids-file, --dataset");
    const opened = await openModel(ref, o);
    try {
      const { model, tokenizer } = opened;
      const texts = [...o.prompt, ...(o.prompts ? readPromptFile(o.prompts) : [])];
      const prompts = o.chat ? chatInputs(opened, texts, o.ids) : inputs(opened, texts, o.ids, DEFAULT_PROMPT);
      const fetchFile = (repo: string, path: string, revision?: string) =>
        resolveRepoFile({
          repoType: "dataset",
          repo,
          path,
          revision,
          download: o.download,
          offline: o.offline,
          onProgress: downloadProgress(),
        });
      const limit = { limit: o.limit };
      let corpus: PerplexityCorpus | undefined;
      if (o.text) corpus = readTextCorpus(o.text, limit);
      else if (o.idsFile) corpus = readTokenIds(o.idsFile, limit);
      else if (o.dataset) corpus = await loadCorpus(o.dataset, fetchFile, limit);
      const tasks: Task[] = o.task.map((f) => readTaskFile(f, limit));
      for (const name of o.tasks ?? []) tasks.push(await loadTask(name, fetchFile, limit));
      const lines = new Map(o.task.map((f, i) => [tasks[i], itemLines(f)]));
      const quiet = quietProgress(o.json);
      const report = await evaluate(model, {
        plan: {
          zero: o.zero.map((z) => parseCoordinate(z)),
          scale: o.scale.map(parseScale),
          zeroSuper: o.zeroSuper,
          scaleSuper: o.scaleSuper,
          prune: o.pruneOutliers !== undefined ? { fraction: o.pruneOutliers, keepSuper: !!o.keepSuper } : undefined,
          restoreSuperActivation: o.restoreSuperActivation,
          sweepScale: o.sweepScale,
          leaveOneOut: o.leaveOneOut,
          nulls: o.null,
          seed: o.seed,
        },
        prompts,
        scan: { threshold: o.threshold, maxIterations: o.maxIterations },
        perplexity: corpus && { corpus, ctx: o.ctx, stride: o.stride, windowBos: o.windowBos, maxTokens: o.maxTokens },
        tasks,
        choice: {
          addBos: o.addBos,
          itemAt: (task, i) => (lines.has(task) ? `line ${lines.get(task)![i]}` : `row ${i}`),
        },
        generate: o.generate ? { tokens: o.generate } : undefined,
        chat: !!o.chat,
        tokenizer,
        maxVariants: o.maxVariants,
        shiftTop: o.top,
        onProgress: quiet ? undefined : progressLine(),
      });
      output.write((o.json ? evalJson(report) : renderEval(report, tokenizer)) + "\n");
    } finally {
      opened.model.close();
    }
  });
}

/** --chat: each text prompt as one user turn through the model's chat template (--ids stay as given). */
function chatInputs(opened: OpenedModel, texts: string[], ids: string[]) {
  const list = texts.length || ids.length ? texts : [DEFAULT_PROMPT];
  const given = ids.length ? inputs(opened, [], ids) : [];
  if (!list.length) return given;
  if (opened.tokenizerError) throw opened.tokenizerError;
  if (!opened.tokenizer)
    throw new UserError(`${opened.model.path} has no tokenizer.json, so --chat cannot tokenize the prompts`);
  const chat = chatTemplateFor(opened.model),
    encode = plainEncoder(opened.tokenizer);
  return [...given, ...list.map((text) => ({ label: text, ids: chatPromptIds(encode, chat, text) }))];
}

/** Progress on stderr: one line per message, or one line rewritten on a terminal. */
function progressLine() {
  return (m: string) => process.stderr.write(process.stderr.isTTY ? `\r\x1b[Keval: ${m}` : `eval: ${m}\n`);
}
