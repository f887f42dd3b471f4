// What the evaluation engine scores: multiple-choice items, last-word items and perplexity corpora,
// rendered exactly as lm-evaluation-harness renders its requests (see docs/datasets.md).

/** One answer of a multiple-choice item: score log p(continuation | context), summed over its tokens. */
export interface McChoice {
  context: string;
  continuation: string;
  /**
   * What acc_norm divides this choice's log-likelihood by: the length of the harness's choice string in
   * Unicode code points (Python `len`). That string is the continuation without the " " target delimiter
   * for ordinary tasks, and the per-choice context for winogrande (whose choices are contexts).
   */
  normLength: number;
}

/** Most tasks share one context across choices; winogrande varies the context and keeps the continuation. */
export interface McItem {
  id: string;
  choices: McChoice[];
  /** Index of the correct choice. */
  answer: number;
}

/** LAMBADA-style: acc = greedy decoding reproduces `continuation`; perplexity over the continuation's log p. */
export interface LastWordItem {
  id: string;
  context: string;
  continuation: string;
}

/** Where items came from, for reports: a file on the Hub or a local file. */
export type DataSource = { repo: string; revision?: string; path: string } | { file: string };

export type McMetric = "acc" | "acc_norm";

export interface McTask {
  kind: "multiple_choice";
  name: string;
  /** The metrics the harness reports for this task (winogrande: acc only). */
  metrics: readonly McMetric[];
  items: McItem[];
  source: DataSource;
}

export interface LastWordTask {
  kind: "last_word";
  name: string;
  metrics: readonly ["acc", "perplexity"];
  items: LastWordItem[];
  source: DataSource;
}

export type Task = McTask | LastWordTask;

/** Window length of the paper's and GPTQ's perplexity protocol (seqlen = 2048). */
export const PAPER_WINDOW_TOKENS = 2048;

/**
 * A perplexity corpus in the GPTQ protocol the paper's code follows: tokenize `text` once as
 * `tokenizer(text)` does (with the tokenizer's usual special tokens, e.g. one BOS at the very start), or
 * take `ids` as they are; cut non-overlapping windows of `windowTokens`, dropping the remainder
 * (n = floor(tokens / window)); keep at most `maxWindows`; ppl = exp(mean NLL over every prediction made
 * inside the windows, each window scored on its own).
 */
export type PerplexityCorpus = {
  name: string;
  windowTokens: number;
  maxWindows?: number;
  source: DataSource;
} & ({ kind: "text"; text: string } | { kind: "ids"; ids: number[] });

/** Python's len(s): Unicode code points, not UTF-16 units. */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The harness's target delimiter between a context and each choice. */
export const TARGET_DELIMITER = " ";

/** Choices that all continue one context, as `[(ctx, " " + choice) for choice in choices]`. */
export function sharedContextChoices(context: string, choices: readonly string[]): McChoice[] {
  return choices.map((c) => ({ context, continuation: TARGET_DELIMITER + c, normLength: codePointLength(c) }));
}
