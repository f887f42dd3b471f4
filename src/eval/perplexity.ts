// Perplexity over a long token stream in windows, by the rule of transformers' perplexity guide: windows of
// `ctx` tokens start every `stride` tokens, and each scores only the tokens no earlier window scored (the
// first token of the stream has nothing to predict it). Optionally every window starts with the BOS token,
// which then predicts the window's first token. Only the scored tokens' NLL leave the head.
import { UserError } from "../errors.js";
import { DataError } from "../data/errors.js";
import type { Model } from "../engine/model.js";
import type { PerplexityCorpus } from "../data/requests.js";
import type { TextTokenizer } from "../tokenizer/tokenizer.js";
import { plainEncoder } from "./tokens.js";
import type { ArmRunner } from "./runner.js";

export interface WindowOptions {
  /** Positions per window (a BOS counts). */
  ctx: number;
  /** Stream tokens from one window's start to the next's. */
  stride: number;
  /** The token each window starts with, or undefined for none. */
  bos?: number;
  /** Stop before a window shorter than the others (GPTQ's protocol drops the remainder). */
  dropPartial?: boolean;
  maxWindows?: number;
}

/** A window: stream tokens [begin, end), of which [scoreFrom, end) are scored. */
export interface Window {
  begin: number;
  end: number;
  scoreFrom: number;
}

export function perplexityWindows(tokens: number, o: WindowOptions): Window[] {
  const room = o.bos === undefined ? o.ctx : o.ctx - 1;
  if (!(Number.isInteger(o.ctx) && o.ctx >= 2))
    throw new UserError(`--ctx ${o.ctx}: a window needs at least 2 positions`);
  if (!(Number.isInteger(o.stride) && o.stride >= 1 && o.stride <= room))
    throw new UserError(
      `--stride ${o.stride}: must be from 1 to the ${room} stream tokens a window holds (a larger stride skips tokens)`,
    );
  const windows: Window[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < tokens; begin += o.stride) {
    const end = Math.min(begin + room, tokens);
    if (o.dropPartial && end - begin < room) break;
    if (windows.length === o.maxWindows) break;
    windows.push({ begin, end, scoreFrom: Math.max(prevEnd, o.bos === undefined ? begin + 1 : begin) });
    prevEnd = end;
    if (end === tokens) break;
  }
  return windows;
}

/** The corpus as one token stream: ids as given, or the text as tokenizer(text) encodes it (without the
 * tokenizer's special tokens when each window brings its own BOS). */
export function corpusStream(
  model: Model,
  corpus: PerplexityCorpus,
  tokenizer: TextTokenizer | undefined,
  windowBos: boolean,
  maxTokens?: number,
): number[] {
  const where = "file" in corpus.source ? corpus.source.file : `${corpus.source.repo}/${corpus.source.path}`;
  let ids: number[];
  if (corpus.kind === "ids") ids = corpus.ids;
  else {
    if (!tokenizer)
      throw new UserError(
        `${model.path} has no tokenizer.json, so ${where} cannot be tokenized: give token ids with --ids-file`,
      );
    ids = windowBos ? plainEncoder(tokenizer)(corpus.text) : tokenizer.encode(corpus.text);
  }
  ids = ids.slice(0, maxTokens);
  const bad = ids.findIndex((id) => id >= model.spec.vocab);
  if (bad >= 0)
    throw new DataError(
      where,
      `token ${bad + 1} (id ${ids[bad]}) is outside the model's vocabulary (0..${model.spec.vocab - 1})`,
      "TOKEN_OUT_OF_VOCABULARY",
    );
  return ids;
}

export interface PerplexityScore {
  tokensScored: number;
  /** Σ NLL over the scored tokens (nats). */
  nllSum: number;
  meanNll: number;
  perplexity: number;
}

export interface PerplexityRun {
  tokens: number;
  windows: Window[];
  /** Per distinct model of the runner. */
  scores: PerplexityScore[];
}

/** The windows of a stream of `tokens`, checked against the model: none longer than its positions, at least one. */
export function checkWindows(model: Model, tokens: number, o: WindowOptions): Window[] {
  if (o.ctx > model.spec.maxPositions)
    throw new UserError(
      `a window of ${o.ctx} positions (--ctx) is larger than the model's ${model.spec.maxPositions} ` +
        "(max_position_embeddings)",
      model.source.configFile,
    );
  const windows = perplexityWindows(tokens, o);
  if (!windows.length) throw new UserError(`${tokens} tokens do not fill one window of ${o.ctx} positions`);
  return windows;
}

/** Every window through every batch of the runner's models; `onWindow` after each window (progress). */
export async function windowedPerplexity(
  model: Model,
  stream: readonly number[],
  runner: ArmRunner,
  o: WindowOptions,
  onWindow?: (done: number, of: number) => void,
): Promise<PerplexityRun> {
  const windows = checkWindows(model, stream.length, o);
  const sums = runner.models.map(() => ({ n: 0, sum: 0 }));
  for (const [i, w] of windows.entries()) {
    const head = o.bos === undefined ? [] : [o.bos];
    const ids = [...head, ...stream.slice(w.begin, w.end)];
    // Position p predicts ids[p + 1], the stream token at begin + p + 1 − |head|.
    const targets = ids.map((_, p) =>
      p + 1 < ids.length && w.begin + p + 1 - head.length >= w.scoreFrom ? ids[p + 1] : -1,
    );
    const perModel = await runner.run(async (batch) => {
      const out = await runner.forward(batch, ids, { head: { targets } });
      return out.nll!.map((nll) => {
        let sum = 0,
          n = 0;
        targets.forEach((t, p) => t >= 0 && ((sum += nll[p]), n++));
        return { sum, n };
      });
    });
    perModel.forEach((r, m) => ((sums[m].sum += r.sum), (sums[m].n += r.n)));
    onWindow?.(i + 1, windows.length);
  }
  return {
    tokens: stream.length,
    windows,
    scores: sums.map(({ n, sum }) => ({
      tokensScored: n,
      nllSum: sum,
      meanNll: sum / n,
      perplexity: Math.exp(sum / n),
    })),
  };
}
