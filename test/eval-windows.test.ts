// Windowed perplexity by transformers' rule, in this process: the windows themselves (worked by hand), their
// refusals, and the perplexity of a stream in overlapping windows against one forward pass per window scored by
// hand — with and without a BOS at the head of each window. (eval-heldout does the same on 16 real windows.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { UserError } from "../src/errors.js";
import { DataError } from "../src/data/errors.js";
import { checkWindows, corpusStream, perplexityWindows, windowedPerplexity } from "../src/eval/perplexity.js";
import { ArmRunner } from "../src/eval/runner.js";
import { interventionKey } from "../src/eval/interventions.js";
import type { Arm } from "../src/eval/arms.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

const w = (begin: number, end: number, scoreFrom: number) => ({ begin, end, scoreFrom });

test("windows of ctx tokens every stride; each scores what no earlier window did", () => {
  assert.deepEqual(perplexityWindows(10, { ctx: 4, stride: 2 }), [w(0, 4, 1), w(2, 6, 4), w(4, 8, 6), w(6, 10, 8)]);
  // With a BOS each window holds ctx − 1 stream tokens, and its first token is scored too.
  assert.deepEqual(perplexityWindows(10, { ctx: 4, stride: 2, bos: 1 }), [
    w(0, 3, 0),
    w(2, 5, 3),
    w(4, 7, 5),
    w(6, 9, 7),
    w(8, 10, 9),
  ]);
  assert.deepEqual(perplexityWindows(10, { ctx: 4, stride: 3, bos: 1, dropPartial: true }), [
    w(0, 3, 0),
    w(3, 6, 3),
    w(6, 9, 6),
  ]);
  // Windows that do not overlap: without a BOS nothing in a window predicts its first token, so it is not scored.
  assert.deepEqual(perplexityWindows(10, { ctx: 4, stride: 4 }), [w(0, 4, 1), w(4, 8, 5), w(8, 10, 9)]);
  assert.deepEqual(perplexityWindows(10, { ctx: 4, stride: 2, maxWindows: 2 }), [w(0, 4, 1), w(2, 6, 4)]);
  assert.deepEqual(perplexityWindows(3, { ctx: 8, stride: 8 }), [w(0, 3, 1)]);
  assert.deepEqual(perplexityWindows(3, { ctx: 8, stride: 8, dropPartial: true }), []);
  assert.deepEqual(perplexityWindows(0, { ctx: 2, stride: 1 }), []);
});

test("windows refuse a context under 2 positions and a stride that would skip tokens", () => {
  const refuses = (o: { ctx: number; stride: number; bos?: number }, message: string) =>
    assert.throws(
      () => perplexityWindows(10, o),
      (e: unknown) => e instanceof UserError && e.message === message,
    );
  refuses({ ctx: 1, stride: 1 }, "--ctx 1: a window needs at least 2 positions");
  refuses({ ctx: 2.5, stride: 1 }, "--ctx 2.5: a window needs at least 2 positions");
  refuses(
    { ctx: 4, stride: 0 },
    "--stride 0: must be from 1 to the 4 stream tokens a window holds (a larger stride skips tokens)",
  );
  refuses(
    { ctx: 4, stride: 1.5 },
    "--stride 1.5: must be from 1 to the 4 stream tokens a window holds (a larger stride skips tokens)",
  );
  refuses(
    { ctx: 4, stride: 4, bos: 1 },
    "--stride 4: must be from 1 to the 3 stream tokens a window holds (a larger stride skips tokens)",
  );
  assert.equal(perplexityWindows(10, { ctx: 4, stride: 3, bos: 1 }).length, 4);
});

const arm = (): Arm => ({
  id: 0,
  label: "0",
  role: "baseline",
  intervention: { weights: [] },
  key: interventionKey({ weights: [] }),
});

/** Σ NLL and count of the scored tokens, one forward pass per window, scored by hand. */
async function byHand(
  model: Model,
  stream: number[],
  windows: { begin: number; end: number; scoreFrom: number }[],
  bos?: number,
) {
  let sum = 0,
    n = 0;
  for (const win of windows) {
    const head = bos === undefined ? [] : [bos];
    const ids = [...head, ...stream.slice(win.begin, win.end)];
    const out = await forward(model, ids, { head: { logits: true } });
    const V = model.spec.vocab;
    for (let s = win.scoreFrom; s < win.end; s++) {
      const p = s - win.begin + head.length - 1; // the position that predicts stream token s
      const row = out.logits!.subarray(p * V, (p + 1) * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - row[stream[s]];
      n++;
    }
  }
  return { sum, n };
}

test(
  "overlapping windows' perplexity is the scored tokens' NLL, each token once",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference("llama-f32");
    const model = Model.open(fixturePath("llama-f32"));
    try {
      const stream: number[] = ref.input_ids;
      for (const o of [
        { ctx: 4, stride: 2 },
        { ctx: 5, stride: 3, bos: 1 },
        { ctx: 4, stride: 3, bos: 1, dropPartial: true },
      ]) {
        const run = await windowedPerplexity(model, stream, new ArmRunner(model, [arm()]), o);
        const want = await byHand(model, stream, run.windows, o.bos);
        assert.deepEqual(run.windows, perplexityWindows(stream.length, o));
        assert.equal(run.tokens, stream.length);
        const s = run.scores[0];
        assert.equal(s.tokensScored, want.n, JSON.stringify(o));
        assert.ok(Math.abs(s.nllSum - want.sum) <= 1e-4 * want.n, `${JSON.stringify(o)}: ${s.nllSum} vs ${want.sum}`);
        assert.ok(Math.abs(s.meanNll - s.nllSum / s.tokensScored) < 1e-12);
        assert.ok(Math.abs(s.perplexity - Math.exp(s.meanNll)) < 1e-9);
      }
      // Without a BOS every stream token but the first is scored exactly once.
      const all = await windowedPerplexity(model, stream, new ArmRunner(model, [arm()]), { ctx: 4, stride: 1 });
      assert.equal(all.scores[0].tokensScored, stream.length - 1);
      const seen: number[] = [];
      await windowedPerplexity(model, stream, new ArmRunner(model, [arm()]), { ctx: 4, stride: 2 }, (done, of) =>
        seen.push(done, of),
      );
      assert.deepEqual(seen, [1, 5, 2, 5, 3, 5, 4, 5, 5, 5]);
    } finally {
      model.close();
    }
  },
);

test(
  "checkWindows and corpusStream refuse what the model cannot take, naming where",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath("llama-f32"));
    try {
      const max = model.spec.maxPositions;
      assert.throws(
        () => checkWindows(model, 100, { ctx: max + 1, stride: 1 }),
        (e: unknown) =>
          e instanceof UserError &&
          e.message ===
            `${model.source.configFile}: a window of ${max + 1} positions (--ctx) is larger than the model's ${max} (max_position_embeddings)`,
      );
      assert.deepEqual(checkWindows(model, 3, { ctx: max, stride: 1 }), [w(0, 3, 1)]);
      assert.throws(
        () => checkWindows(model, 3, { ctx: 4, stride: 1, dropPartial: true }),
        (e: unknown) => e instanceof UserError && e.message === "3 tokens do not fill one window of 4 positions",
      );
      const V = model.spec.vocab;
      const corpus = (ids: number[]) => ({
        kind: "ids" as const,
        name: "x",
        ids,
        windowTokens: ids.length,
        source: { file: "ids.txt" },
      });
      assert.deepEqual(corpusStream(model, corpus([1, 2, 3, 4]), undefined, false, 3), [1, 2, 3]);
      assert.throws(
        () => corpusStream(model, corpus([1, V - 1, V]), undefined, false),
        (e: unknown) =>
          e instanceof DataError &&
          e.code === "TOKEN_OUT_OF_VOCABULARY" &&
          e.message === `ids.txt: token 3 (id ${V}) is outside the model's vocabulary (0..${V - 1})`,
      );
      assert.throws(
        () =>
          corpusStream(
            model,
            {
              kind: "text",
              name: "t",
              text: "hello",
              windowTokens: 0,
              source: { repo: "org/data", path: "test.txt" },
            } as never,
            undefined,
            false,
          ),
        (e: unknown) =>
          e instanceof UserError &&
          e.message ===
            `${model.path} has no tokenizer.json, so org/data/test.txt cannot be tokenized: give token ids with --ids-file`,
      );
    } finally {
      model.close();
    }
  },
);
