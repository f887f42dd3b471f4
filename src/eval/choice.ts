// Zero-shot tasks scored as lm-evaluation-harness scores them: each choice by the summed log-likelihood of
// its continuation tokens after the context (acc, acc_norm via src/data's mcOutcome), a last-word item by
// that log-likelihood and whether greedy decoding reproduces it. Choices that share a context run it once:
// its keys and values stay in a KV cache and each continuation runs after them.
import { UserError } from "../errors.js";
import { DataError } from "../data/errors.js";
import { accuracy, accuracyStderr, argmax, lastWordPerplexity, mcOutcome } from "../data/metrics.js";
import type { DataSource, LastWordTask, McTask } from "../data/requests.js";
import type { Model } from "../engine/model.js";
import { KvCache } from "../engine/kv-cache.js";
import type { Batch, ArmRunner } from "./runner.js";
import { encodePair, type PlainEncoder } from "./tokens.js";
import { logSumExp } from "../engine/nll.js";
import { readUtf8File, splitLines } from "../data/textfile.js";

/** Line numbers (1-based) of a file's non-blank lines: where each item of a JSONL task file sits
 * (readTaskFile skips blank lines). */
export function itemLines(file: string): number[] {
  return splitLines(readUtf8File(file)).flatMap((l, i) => (l.trim() !== "" ? [i + 1] : []));
}

export interface ChoiceOptions {
  /** Start every context with the BOS token (the harness's add_bos_token); default: as the harness, none. */
  addBos?: boolean;
  /** Where item i sits, for errors ("line 12" of a user's file, "row 3" of a data set). */
  itemAt?: (item: number) => string;
  onItem?: (done: number, of: number) => void;
}

export interface McItemScore {
  id: string;
  logLikelihoods: number[];
  pred: number;
  predNorm: number;
  acc: boolean;
  accNorm: boolean;
}

export interface McScore {
  items: McItemScore[];
  acc: number;
  accStderr: number | null;
  accNorm: number;
  accNormStderr: number | null;
}

export interface LastWordScore {
  items: { id: string; logLikelihood: number; greedy: boolean }[];
  acc: number;
  accStderr: number | null;
  perplexity: number;
}

/** A request: context tokens, continuation tokens. */
export interface Request {
  context: number[];
  continuation: number[];
}

/** Each request's log-likelihood (and whether every continuation token is the argmax), per variant of the batch. */
async function scoreRequests(
  model: Model,
  runner: ArmRunner,
  batch: Batch,
  requests: Request[],
): Promise<{ ll: number; greedy: boolean }[][]> {
  const V = model.spec.vocab,
    max = model.spec.maxPositions;
  const n = batch.variants.length;
  // Stryker disable next-line ArrayDeclaration: equivalent, an array grows to the n entries written into it.
  const out = requests.map(() => new Array<{ ll: number; greedy: boolean }>(n));
  const groups = new Map<string, number[]>();
  requests.forEach((r, i) => {
    const k = r.context.join(",");
    groups.set(k, [...(groups.get(k) ?? []), i]);
  });
  for (const members of groups.values()) {
    const context = requests[members[0]].context;
    // Stryker disable next-line ArrowFunction: equivalent, an input that fits keeps all its tokens on the truncating path.
    const fits = members.filter((i) => context.length + requests[i].continuation.length - 1 <= max);
    // Too long for the model: the harness keeps the last max + 1 tokens and feeds all but the last.
    // Stryker disable next-line MethodExpression: equivalent, what fits is scored again below, over this.
    for (const i of members.filter((i) => !fits.includes(i))) {
      const { continuation } = requests[i];
      const ids = [...context, ...continuation].slice(-(max + 1)).slice(0, -1);
      const first = ids.length - continuation.length;
      if (first < 0)
        throw new UserError(
          `a continuation of ${continuation.length} tokens does not fit the model's ${max} positions`,
        );
      // Stryker disable next-line UnaryOperator: equivalent, the rows before the continuation are scored but never summed.
      const targets = ids.map((_, p) => (p >= first ? continuation[p - first] : -1));
      const top = { k: 1, positions: continuation.map((_, j) => first + j) };
      const r = await runner.forward(batch, ids, { head: { targets, top } });
      for (let v = 0; v < n; v++)
        out[i][v] = {
          ll: -continuation.reduce((s, _, j) => s + r.nll![v][first + j], 0),
          greedy: continuation.every((t, j) => r.top![v][j][0].id === t),
        };
    }
    if (!fits.length) continue;
    const cache = new KvCache(n);
    const pre = await runner.forward(batch, context, { cache, head: { logitsAt: [context.length - 1] } });
    for (const i of fits) {
      const { continuation } = requests[i];
      const lastLogits = pre.logitsAt!;
      const rest =
        continuation.length > 1
          ? await runner.forward(batch, continuation.slice(0, -1), {
              cache,
              head: {
                targets: continuation.slice(1),
                top: { k: 1, positions: continuation.slice(1).map((_, j) => j) },
              },
            })
          : undefined;
      cache.truncate(context.length);
      for (let v = 0; v < n; v++) {
        const logits = lastLogits[v];
        let ll = logits[continuation[0]] - logSumExp(logits, 0, V);
        let greedy = argmax(logits) === continuation[0];
        if (rest) {
          for (let j = 0; j + 1 < continuation.length; j++) ll -= rest.nll![v][j];
          greedy &&= continuation.slice(1).every((t, j) => rest.top![v][j][0].id === t);
        }
        out[i][v] = { ll, greedy };
      }
    }
  }
  return out;
}

function requestsOf(
  model: Model,
  encode: PlainEncoder,
  pairs: { context: string; continuation: string }[],
  o: ChoiceOptions,
  source: DataSource,
  item: number,
): Request[] {
  const bos = model.spec.bosTokenId;
  if (o.addBos && bos === undefined) throw new UserError(`--add-bos: ${model.source.configFile} names no bos_token_id`);
  const prefix = o.addBos ? [bos!] : [];
  return pairs.map((p, c) => {
    if (p.context.trim() === "" && bos === undefined)
      throw itemError(
        source,
        o,
        item,
        "EMPTY_CONTEXT",
        "has an empty context and the model has no BOS token to stand in for it",
      );
    const r = encodePair(encode, p.context, p.continuation, prefix, bos ?? 0);
    if (!r.continuation.length)
      throw itemError(
        source,
        o,
        item,
        "EMPTY_CHOICE",
        `choice ${c} (${JSON.stringify(p.continuation.trim())}) tokenizes to no tokens after the context`,
      );
    return r;
  });
}

function itemError(source: DataSource, o: ChoiceOptions, item: number, code: string, message: string): DataError {
  const where = "file" in source ? source.file : `${source.repo}/${source.path}`;
  return new DataError(where, `${o.itemAt?.(item) ?? `item ${item + 1}`}: ${message}`, code);
}

/** acc and acc_norm of a multiple-choice task for each distinct model of the runner. */
/** Every item's requests (one per choice), tokenized: a bad item fails before any pass runs. */
export function taskRequests(
  model: Model,
  task: McTask | LastWordTask,
  encode: PlainEncoder,
  o: ChoiceOptions = {},
): Request[][] {
  return task.kind === "multiple_choice"
    ? task.items.map((item, i) => requestsOf(model, encode, item.choices, o, task.source, i))
    : task.items.map((item, i) => requestsOf(model, encode, [item], o, task.source, i));
}

export async function multipleChoice(
  model: Model,
  task: McTask,
  encode: PlainEncoder,
  runner: ArmRunner,
  o: ChoiceOptions = {},
): Promise<McScore[]> {
  const items = runner.models.map((): McItemScore[] => []);
  const requests = taskRequests(model, task, encode, o);
  for (const [i, item] of task.items.entries()) {
    const perModel = await runner.run((batch) =>
      scoreRequests(model, runner, batch, requests[i]).then((perRequest) =>
        batch.variants.map((_, v) => perRequest.map((r) => r[v].ll)),
      ),
    );
    perModel.forEach((lls, m) => items[m].push({ id: item.id, logLikelihoods: lls, ...mcOutcome(item, lls) }));
    o.onItem?.(i + 1, task.items.length);
  }
  return items.map((list) => ({
    items: list,
    acc: accuracy(list.map((s) => s.acc)),
    accStderr: accuracyStderr(list.map((s) => s.acc)),
    accNorm: accuracy(list.map((s) => s.accNorm)),
    accNormStderr: accuracyStderr(list.map((s) => s.accNorm)),
  }));
}

/** LAMBADA-style acc (greedy reproduces the last word) and perplexity, for each distinct model. */
export async function lastWord(
  model: Model,
  task: LastWordTask,
  encode: PlainEncoder,
  runner: ArmRunner,
  o: ChoiceOptions = {},
): Promise<LastWordScore[]> {
  const items = runner.models.map((): LastWordScore["items"] => []);
  const requests = taskRequests(model, task, encode, o);
  for (const [i, item] of task.items.entries()) {
    const perModel = await runner.run((batch) =>
      scoreRequests(model, runner, batch, requests[i]).then((perRequest) =>
        batch.variants.map((_, v) => perRequest[0][v]),
      ),
    );
    perModel.forEach((r, m) => items[m].push({ id: item.id, logLikelihood: r.ll, greedy: r.greedy }));
    o.onItem?.(i + 1, task.items.length);
  }
  return items.map((list) => ({
    items: list,
    acc: accuracy(list.map((s) => s.greedy)),
    accStderr: accuracyStderr(list.map((s) => s.greedy)),
    perplexity: lastWordPerplexity(list.map((s) => s.logLikelihood)),
  }));
}
