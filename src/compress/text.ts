// The text a comparison scores, as `eval` scores perplexity (src/eval/perplexity.ts): a token stream cut into
// windows of --ctx positions every --stride tokens, each optionally led by the BOS token (which then predicts the
// window's first token); the defaults are eval's.
import type { PerplexityCorpus } from "../data/requests.js";
import type { Model } from "../engine/model.js";
import { UserError } from "../errors.js";
import { checkWindows, corpusStream, type WindowOptions } from "../eval/perplexity.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";

export interface TextOptions {
  ctx?: number;
  stride?: number;
  windowBos?: boolean;
  maxTokens?: number;
}

export interface ScoredText {
  stream: number[];
  windows: WindowOptions;
  text: { name: string; source: string };
}

/** The corpus as a stream with its windows' protocol, checked (a window longer than the model's positions, a bad
 * stride, no BOS for windowBos). */
export function scoredText(
  model: Model,
  corpus: PerplexityCorpus,
  tokenizer: TextTokenizer | undefined,
  o: TextOptions = {},
): ScoredText {
  const { spec } = model;
  const bos = o.windowBos ? spec.bosTokenId : undefined;
  if (o.windowBos && bos === undefined)
    throw new UserError("names no bos_token_id to start each window with (--window-bos)", model.source.configFile);
  const ctx = o.ctx ?? Math.min(corpus.windowTokens, spec.maxPositions);
  const stride = o.stride ?? (bos === undefined ? ctx : ctx - 1);
  const stream = corpusStream(model, corpus, tokenizer, !!o.windowBos, o.maxTokens);
  const windows: WindowOptions = { ctx, stride, bos, maxWindows: corpus.maxWindows };
  checkWindows(model, stream.length, windows);
  const source = "file" in corpus.source ? corpus.source.file : `${corpus.source.repo}/${corpus.source.path}`;
  return { stream, windows, text: { name: corpus.name, source } };
}
