// Zero-shot scoring against an independent computation: each choice's log-likelihood from one full pass over
// context + continuation (the bytes-llama-6m tokenizer maps text to its UTF-8 bytes, so the test builds the
// ids itself), the harness's whitespace rule, BOS, the left truncation of long inputs, and acc / acc_norm.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { readTaskFile } from "../src/data/user-files.js";
import { mcOutcome } from "../src/data/metrics.js";
import type { LastWordTask, McTask } from "../src/data/requests.js";
import { nextTokenNll } from "../src/engine/nll.js";
import { encodePair, plainEncoder } from "../src/eval/tokens.js";
import { lastWord, multipleChoice, taskRequests } from "../src/eval/choice.js";
import { DataError } from "../src/data/errors.js";
import { join } from "node:path";
import { ArmRunner } from "../src/eval/runner.js";
import { planArms } from "../src/eval/arms.js";
import { evaluate } from "../src/eval/eval.js";
import { fixturePath, repoRoot, skipWithoutFixtures } from "./fixtures.js";

const dir = fixturePath("bytes-llama-6m");
const utf8 = (s: string) => [...new TextEncoder().encode(s)];

/** log p(continuation | context) from one full pass, continuation = ids[from..]. */
async function fullPass(model: Model, ids: number[], from: number): Promise<{ ll: number; greedy: boolean }> {
  const out = await forward(model, ids);
  const V = model.spec.vocab;
  const nll = nextTokenNll(out.logits!, ids, V);
  let ll = 0,
    greedy = true;
  for (let t = from; t < ids.length; t++) {
    ll -= nll[t - 1];
    const row = out.logits!.subarray((t - 1) * V, t * V);
    greedy &&= row.indexOf(Math.max(...row)) === ids[t];
  }
  return { ll, greedy };
}

test(
  "plainEncoder drops what the tokenizer adds to every text; encodePair moves the context's trailing space",
  { skip: skipWithoutFixtures },
  () => {
    const tokenizer = loadTokenizer(dir)!;
    assert.deepEqual(tokenizer.encode("ab"), [256, 97, 98]);
    const plain = plainEncoder(tokenizer);
    assert.deepEqual(plain("ab"), [97, 98]);
    assert.deepEqual(plain(""), []);
    assert.deepEqual(encodePair(plain, "Q:", " x", [], 256), { context: [81, 58], continuation: [32, 120] });
    assert.deepEqual(encodePair(plain, "Q: \n", " x", [], 256), { context: [81, 58], continuation: [32, 10, 32, 120] });
    assert.deepEqual(encodePair(plain, "Q:", " x", [256], 256), { context: [256, 81, 58], continuation: [32, 120] });
    assert.deepEqual(
      encodePair(plain, "", " x", [], 256),
      { context: [256], continuation: [32, 120] },
      "an empty context: the prefix token",
    );
  },
);

test(
  "multiple choice: each choice's log-likelihood is that of one full pass; acc and acc_norm follow mcOutcome",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const task = readTaskFile(`${repoRoot}/examples/tasks/general-knowledge.jsonl`, { limit: 3 });
    // Arm 1 zeroes the first candidate: its scores come from the same pass, and must match its own full passes.
    const { arms } = planArms(model, { zero: [{ layer: 0, row: 36, column: 486 }] });
    const runner = new ArmRunner(model, arms);
    for (const addBos of [false, true]) {
      const scores = await multipleChoice(model, task, plainEncoder(tokenizer), runner, { addBos });
      const variant = runner.batches[0].variants[1];
      for (const [i, item] of task.items.entries()) {
        const lls: number[][] = [[], []];
        for (const c of item.choices) {
          const context = [...(addBos ? [256] : []), ...utf8(c.context)];
          const ids = [...context, ...utf8(c.continuation)];
          lls[0].push((await fullPass(model, ids, context.length)).ll);
          const out = await forward(model, ids, { variants: [variant] });
          lls[1].push(
            -nextTokenNll(out.logits!, ids, model.spec.vocab)
              .slice(context.length - 1)
              .reduce((a, b) => a + b, 0),
          );
        }
        for (const m of [0, 1]) {
          const got = scores[m].items[i];
          got.logLikelihoods.forEach((ll, c) =>
            assert.ok(
              Math.abs(ll - lls[m][c]) <= 2e-4,
              `bos ${addBos} model ${m} item ${i} choice ${c}: ${ll} vs ${lls[m][c]}`,
            ),
          );
          const want = mcOutcome(item, lls[m]);
          assert.equal(got.pred, want.pred);
          assert.equal(got.predNorm, want.predNorm);
        }
      }
      for (const s of scores) {
        assert.equal(s.acc, s.items.filter((x) => x.acc).length / 3);
        assert.equal(s.accNorm, s.items.filter((x) => x.accNorm).length / 3);
      }
    }
    model.close();
  },
);

test(
  "an input longer than the model's positions keeps its last max + 1 tokens, as the harness does",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const context = "The quick brown fox jumps over the lazy dog. ".repeat(13).trim(); // 584 bytes > 512 positions
    const task: McTask = {
      kind: "multiple_choice",
      name: "long",
      metrics: ["acc", "acc_norm"],
      source: { file: "long.jsonl" },
      items: [
        {
          id: "long",
          answer: 0,
          choices: [" cat", " dog."].map((continuation) => ({
            context,
            continuation,
            normLength: continuation.length - 1,
          })),
        },
      ],
    };
    const runner = new ArmRunner(model, planArms(model, {}).arms);
    const [score] = await multipleChoice(model, task, plainEncoder(tokenizer), runner);
    for (const [c, choice] of task.items[0].choices.entries()) {
      const whole = utf8(context + choice.continuation);
      const ids = whole.slice(-(512 + 1)).slice(0, -1);
      const cont = utf8(choice.continuation).length;
      // The pass over those 512 ids predicts the continuation's tokens at its last `cont` positions.
      const out = await forward(model, ids);
      const nll = nextTokenNll(out.logits!, [...ids, whole[whole.length - 1]], model.spec.vocab);
      const want = -nll.slice(ids.length - cont).reduce((a, b) => a + b, 0);
      assert.ok(
        Math.abs(score.items[0].logLikelihoods[c] - want) <= 2e-4,
        `choice ${c}: ${score.items[0].logLikelihoods[c]} vs ${want}`,
      );
    }
    model.close();
  },
);

test(
  "last word: the continuation's log-likelihood and whether greedy decoding reproduces it",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const items = [
      { id: "a", context: "A stitch in time saves", continuation: " nine." },
      { id: "b", context: "The quick brown fox jumps over the lazy", continuation: " dog" },
      { id: "c", context: "The quick brown fox jumps over the lazy", continuation: " zebra" },
    ];
    const task: LastWordTask = {
      kind: "last_word",
      name: "lw",
      metrics: ["acc", "perplexity"],
      source: { file: "lw.jsonl" },
      items,
    };
    const runner = new ArmRunner(model, planArms(model, {}).arms);
    const [score] = await lastWord(model, task, plainEncoder(tokenizer), runner);
    let greedy = 0,
      lls = 0;
    for (const [i, item] of items.entries()) {
      const context = utf8(item.context);
      const want = await fullPass(model, [...context, ...utf8(item.continuation)], context.length);
      assert.ok(
        Math.abs(score.items[i].logLikelihood - want.ll) <= 2e-4,
        `${item.id}: ${score.items[i].logLikelihood} vs ${want.ll}`,
      );
      assert.equal(score.items[i].greedy, want.greedy, item.id);
      ((greedy += want.greedy ? 1 : 0), (lls += want.ll));
    }
    assert.equal(score.items[2].greedy, false, "a zebra is not what this model expects");
    assert.equal(score.acc, greedy / 3);
    assert.ok(Math.abs(score.perplexity - Math.exp(-lls / 3)) <= 1e-6 * score.perplexity);
    model.close();
  },
);

test(
  "bad input fails before any pass runs: a coordinate, a window, before the scan",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const said: string[] = [];
    const base = { prompts: [{ label: "p", ids: [256, 65] }], tokenizer, onProgress: (m: string) => said.push(m) };
    const corpus = { kind: "ids" as const, name: "x", ids: [1, 2, 3], windowTokens: 8, source: { file: "x" } };
    await assert.rejects(
      evaluate(model, { ...base, plan: { zeroSuper: true, zero: [{ layer: 9, row: 0, column: 0 }] } }),
      /layers 0\.\.7/,
    );
    await assert.rejects(
      evaluate(model, { ...base, plan: { zeroSuper: true }, perplexity: { corpus, ctx: 600 } }),
      /600 positions/,
    );
    assert.deepEqual(said, [], "no scan, no pass");
    model.close();
  },
);

test(
  "last word: greedy means every continuation token is the argmax; a context past the positions keeps the last max + 1",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const V = model.spec.vocab;
    const argmaxAfter = async (ids: number[]) => {
      const out = await forward(model, ids);
      const row = out.logits!.subarray((ids.length - 1) * V, ids.length * V);
      return row.indexOf(Math.max(...row));
    };
    const context = "One day, a little";
    const c = utf8(context);
    const g1 = await argmaxAfter(c);
    const other = g1 === 120 ? 121 : 120;
    const [g2, afterOther] = [await argmaxAfter([...c, g1]), await argmaxAfter([...c, other])];
    const not = (g: number) => (g === 113 ? 122 : 113);
    for (const g of [g1, g2, afterOther])
      assert.ok(g >= 32 && g < 127, `the model's next byte ${g} is printable ASCII`);
    const text = (...b: number[]) => String.fromCharCode(...b);
    // [expected greedy, continuation bytes]: both argmax; the first only; the second only; one token each way.
    const cases: [boolean, number[]][] = [
      [true, [g1, g2]],
      [false, [g1, not(g2)]],
      [false, [other, afterOther]],
      [true, [g1]],
      [false, [other]],
    ];
    const task: LastWordTask = {
      kind: "last_word",
      name: "lw",
      metrics: ["acc", "perplexity"],
      source: { file: "lw.jsonl" },
      items: cases.map(([, b], i) => ({ id: `${i}`, context, continuation: text(...b) })),
    };
    const runner = new ArmRunner(model, planArms(model, {}).arms);
    const [score] = await lastWord(model, task, plainEncoder(tokenizer), runner);
    assert.deepEqual(
      score.items.map((s) => s.greedy),
      cases.map(([g]) => g),
    );
    assert.equal(score.acc, 2 / 5);
    // The harness's stderr of a mean: sqrt(sample variance / n), here of three misses and two hits.
    assert.ok(Math.abs(score.accStderr! - Math.sqrt((0.4 * 0.6 * 5) / 4 / 5)) < 1e-12, `${score.accStderr}`);
    for (const [i, [, b]] of cases.entries()) {
      const want = await fullPass(model, [...c, ...b], c.length);
      assert.ok(Math.abs(score.items[i].logLikelihood - want.ll) <= 2e-4, `case ${i}`);
    }

    // 600 bytes of context and a 4-token continuation: the last 513 tokens, all but the last fed (512 positions),
    // the continuation scored at the end of that window.
    const long = "The little girl read a book about a dog. ".repeat(15).slice(0, 600);
    const cont = " dog";
    const [far] = await lastWord(
      model,
      { ...task, items: [{ id: "long", context: long, continuation: cont }] },
      plainEncoder(tokenizer),
      runner,
    );
    const window = [...utf8(long), ...utf8(cont)].slice(-513);
    const out = await forward(model, window.slice(0, -1));
    const nll = nextTokenNll(out.logits!, window, V);
    const want = -nll.slice(512 - 4).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(far.items[0].logLikelihood - want) <= 2e-4, `${far.items[0].logLikelihood} vs ${want}`);
    const argmaxAt = (p: number) => {
      const row = out.logits!.subarray(p * V, (p + 1) * V);
      return row.indexOf(Math.max(...row));
    };
    const greedy = [0, 1, 2, 3].every((j) => argmaxAt(508 + j) === window[509 + j]);
    assert.equal(far.items[0].greedy, greedy, "greedy over the window's last four positions");

    // A continuation that fills all 512 positions after a longer input is scored (the context left out); one of 513
    // cannot be.
    const fill = "ab".repeat(256);
    const [filled] = await lastWord(
      model,
      { ...task, items: [{ id: "fill", context: "xy", continuation: fill }] },
      plainEncoder(tokenizer),
      runner,
    );
    assert.ok(Number.isFinite(filled.items[0].logLikelihood));
    await assert.rejects(
      lastWord(
        model,
        { ...task, items: [{ id: "over", context: "x", continuation: fill + "a" }] },
        plainEncoder(tokenizer),
        runner,
      ),
      { message: "a continuation of 513 tokens does not fit the model's 512 positions" },
    );
    // An empty context: the BOS stands in for it.
    const [bare] = await lastWord(
      model,
      { ...task, items: [{ id: "bare", context: "", continuation: "Once" }] },
      plainEncoder(tokenizer),
      runner,
    );
    const fromBos = await fullPass(model, [256, ...utf8("Once")], 1);
    assert.ok(
      Math.abs(bare.items[0].logLikelihood - fromBos.ll) <= 2e-4,
      `${bare.items[0].logLikelihood} vs ${fromBos.ll}`,
    );
    model.close();
  },
);

test(
  "a bad item is a one-line DataError naming the file and the item (or where itemAt puts it), before any pass",
  { skip: skipWithoutFixtures },
  () => {
    // olmo-f32 has no BOS token; its vocabulary is 100, so bytes are folded into it, and whitespace dropped.
    const model = Model.open(fixturePath("olmo-f32"));
    const encode = (s: string) => utf8(s.replace(/\s/g, "")).map((b) => b % 100);
    const mc = (context: string, choices: string[], source: McTask["source"]): McTask => ({
      kind: "multiple_choice",
      name: "t",
      metrics: ["acc"],
      source,
      items: [
        {
          id: "ok",
          choices: ["a", "b"].map((x) => ({ context: "Q:", continuation: ` ${x}`, normLength: 1 })),
          answer: 0,
        },
        { id: "bad", choices: choices.map((x) => ({ context, continuation: ` ${x}`, normLength: 1 })), answer: 0 },
      ],
    });
    const refused = (task: McTask, o: object, where: string, message: string, code: string) =>
      assert.throws(
        () => taskRequests(model, task, encode, o),
        (e: unknown) => {
          assert.ok(e instanceof DataError, `${e}`);
          assert.equal(e.message, `${where}: ${message}`);
          assert.equal(e.code, code);
          return true;
        },
      );
    refused(
      mc("  ", ["a", "b"], { file: "t.jsonl" }),
      {},
      "t.jsonl",
      "item 2: has an empty context and the model has no BOS token to stand in for it",
      "EMPTY_CONTEXT",
    );
    refused(
      mc("Q:", ["a", " "], { repo: "org/t", path: "test.jsonl" }),
      { itemAt: (i: number) => `line ${10 * (i + 1)}` },
      "org/t/test.jsonl",
      'line 20: choice 1 ("") tokenizes to no tokens after the context',
      "EMPTY_CHOICE",
    );
    assert.throws(() => taskRequests(model, mc("Q:", ["a"], { file: "t.jsonl" }), encode, { addBos: true }), {
      message: `--add-bos: ${join(model.path, "config.json")} names no bos_token_id`,
    });
    model.close();
  },
);

test(
  "multiple choice with a context per choice (winogrande's shape): each choice scored after its own context",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    // Two contexts whose ids, written one after another without a separator, read the same: 1,23 and 12,3.
    const contexts = ["\u0001\u0017", "\u000c\u0003", "The cat sat on"];
    const task: McTask = {
      kind: "multiple_choice",
      name: "w",
      metrics: ["acc"],
      source: { file: "w.jsonl" },
      items: [
        {
          id: "a",
          choices: contexts.map((context) => ({ context, continuation: " the mat", normLength: 7 })),
          answer: 2,
        },
      ],
    };
    const runner = new ArmRunner(model, planArms(model, {}).arms);
    const [score] = await multipleChoice(model, task, plainEncoder(tokenizer), runner);
    for (const [c, context] of contexts.entries()) {
      const want = await fullPass(model, [...utf8(context), ...utf8(" the mat")], utf8(context).length);
      const got = score.items[0].logLikelihoods[c];
      assert.ok(Math.abs(got - want.ll) <= 2e-4, `choice ${c}: ${got} vs ${want.ll}`);
    }
    model.close();
  },
);
