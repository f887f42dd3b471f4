// The eval's small parts that the end-to-end runs reach without pinning them: the restore hooks of
// interventionVariants (which row of which event holds a site, in a pass that starts after a cache or holds an
// expert's routed tokens), what makes two interventions the same variant, the coordinate and --scale parsers
// at their edges, the |w|-rank neighbourhood against a full sort on a tensor full of ties, read in blocks, and
// the null statistics, stopword mask, probability shift, repetition rate and corpus check at their edges.
// SUPERWEIGHT_BLOCK_ELEMENTS is set before the engine loads, so that a 48-row tensor is read in many blocks.
process.env.SUPERWEIGHT_BLOCK_ELEMENTS = "64";
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Model } from "../src/engine/model.js";
import type { HookEvent } from "../src/engine/hooks.js";
import type { Intervention, ActivationSite, WeightChange } from "../src/eval/interventions.js";
import type { TextTokenizer } from "../src/tokenizer/tokenizer.js";

const { interventionVariants, interventionKey, parseCoordinate, parseScale, coordinateText } =
  await import("../src/eval/interventions.js");
const { rankNeighbours, rng, sampleDistinct, zeroRandom } = await import("../src/eval/random.js");
const { MAX_BLOCK_ELEMENTS } = await import("../src/checkpoint/block-buffer.js");
const { nullStats } = await import("../src/eval/null-stats.js");
const { stopwordMask, probabilityShift } = await import("../src/eval/shift.js");
const { repetitionRate } = await import("../src/eval/generate.js");
const { corpusStream } = await import("../src/eval/perplexity.js");
const { plainEncoder } = await import("../src/eval/tokens.js");

const TENSOR = "model.layers.2.mlp.down_proj.weight";
const site: ActivationSite = { layer: 2, tensor: TENSOR, token: 5, channel: 1 };

/** A down_proj output event of `tokens` rows of width 3, each element 100·row + column + `plus`. */
function event(tokens: number, plus: number, extra: Partial<HookEvent> = {}): HookEvent {
  const data = new Float32Array(tokens * 3).map((_, i) => 100 * Math.floor(i / 3) + (i % 3) + plus);
  return { point: "down_proj_output", layer: 2, variant: 0, data, tokens, width: 3, tensor: TENSOR, ...extra };
}

/** One pass: the baseline's hooks see `base`, then the intervention's see `mine`; returns mine's data. */
function pass(variants: ReturnType<typeof interventionVariants>, base: HookEvent, mine: HookEvent): number[] {
  for (const h of variants[0].hooks ?? []) h(base);
  for (const h of variants[1].hooks ?? []) h(mine);
  return [...mine.data];
}

test("restore: the baseline's value at the site's row goes into the intervention's event, nothing else", () => {
  const clock = { offset: 0 };
  const variants = interventionVariants({} as Model, [{ weights: [], restore: [site] }, { weights: [] }], clock);
  assert.equal(variants.length, 3);
  assert.equal(variants[0].hooks?.length, 1, "the baseline records");
  assert.equal(variants[1].hooks?.length, 1, "the restoring intervention writes");
  assert.equal(variants[2].hooks?.length, 0, "an intervention without restore has no hook");
  const none = interventionVariants({} as Model, [{ weights: [] }], clock);
  assert.deepEqual(
    none.map((v) => v.hooks?.length),
    [0, 0],
    "no restore anywhere: the baseline records nothing",
  );

  // Token 5 is row 5 of a full pass: element 5·3 + 1 of the intervention's event becomes the baseline's 501.
  const mine = pass(variants, event(8, 0), event(8, 0.5));
  assert.deepEqual(
    mine,
    [...event(8, 0.5).data].map((v, i) => (i === 5 * 3 + 1 ? 501 : v)),
  );

  // A pass that starts after a cache of 4 tokens holds token 5 in row 1.
  clock.offset = 4;
  assert.deepEqual(pass(variants, event(3, 0), event(3, 0.5)), [0.5, 1.5, 2.5, 100.5, 101, 102.5, 200.5, 201.5, 202.5]);

  // A pass whose rows are an expert's routed tokens (positions 1 and 3 after the cache: tokens 5 and 7).
  const routed = { positions: [1, 3] };
  assert.deepEqual(pass(variants, event(2, 0, routed), event(2, 0.5, routed)), [0.5, 1, 2.5, 100.5, 101.5, 102.5]);
  const other = { positions: [0, 2] };
  assert.deepEqual(pass(variants, event(2, 0, other), event(2, 0.5, other)), [...event(2, 0.5).data]);
});

test("restore: events of other points, layers and tensors, and rows past the pass's tokens, are left alone", () => {
  const clock = { offset: 0 };
  const variants = interventionVariants({} as Model, [{ weights: [], restore: [site] }], clock);
  pass(variants, event(8, 0), event(8, 0.5)); // records 501
  const untouched = (base: HookEvent, mine: HookEvent) => {
    const before = [...mine.data];
    assert.deepEqual(pass(variants, base, mine), before);
  };
  // down_proj's input in the same layer: not recorded over, not written.
  untouched(event(8, 7, { point: "down_proj_input" }), event(8, 0.5, { point: "down_proj_input" }));
  // Another tensor of the same layer (an expert's down_proj) and another layer.
  untouched(event(8, 7, { tensor: "other" }), event(8, 0.5, { tensor: "other" }));
  untouched(event(8, 7, { layer: 3 }), event(8, 0.5, { layer: 3 }));
  // The site's token is not among this pass's rows: one row after a cache of 5, and 3 rows of a larger buffer.
  clock.offset = 6;
  untouched(event(1, 7), event(1, 0.5));
  clock.offset = 0;
  const roomy = (plus: number) => ({ ...event(8, plus), tokens: 3 });
  untouched(roomy(7), roomy(0.5));
  // What was recorded is still the full pass's value.
  assert.equal(pass(variants, event(8, 9), event(8, 0.5))[5 * 3 + 1], 510);
});

const change = (index: [number, number], value: number, newValue: number, tensor = TENSOR): WeightChange =>
  ({ layer: 2, row: index[0], column: index[1], tensor, index, value, newValue }) as WeightChange;

test("interventionKey: the same model gives the same key, in any order; any real difference gives another", () => {
  const a = change([1, 2], 0.5, 0),
    b = change([3, 4], -2, 4);
  const key = (iv: Intervention) => interventionKey(iv);
  assert.equal(key({ weights: [a, b] }), key({ weights: [b, a] }));
  assert.equal(key({ weights: [a, change([5, 5], 3, 3)] }), key({ weights: [a] }), "×1 changes nothing");
  assert.equal(key({ weights: [] }), key({ weights: [], restore: [] }));
  assert.notEqual(key({ weights: [a] }), key({ weights: [change([1, 2], 0.5, 0.25)] }));
  assert.notEqual(key({ weights: [a] }), key({ weights: [change([1, 2], 0.5, 0, "other")] }));

  const spareA = change([1, 2], 0.5, 0.5),
    spareB = change([3, 4], 1, 1);
  const prune = (spare: WeightChange[], random?: { seed: number }): Intervention => ({
    weights: [],
    prune: { fraction: 0.01, spare, ...(random ? { random } : {}) },
  });
  assert.equal(key(prune([spareA, spareB])), key(prune([spareB, spareA])));
  assert.notEqual(key(prune([spareA])), key(prune([spareB])));
  assert.notEqual(key(prune([])), key({ weights: [] }));
  assert.notEqual(key(prune([], { seed: 1 })), key(prune([])));
  assert.notEqual(key(prune([], { seed: 1 })), key(prune([], { seed: 2 })));
  assert.notEqual(key(prune([])), key({ weights: [], prune: { fraction: 0.02, spare: [] } }));

  const at = (token: number, channel = 1, tensor = TENSOR) => ({ ...site, token, channel, tensor });
  assert.equal(key({ weights: [], restore: [at(5), at(6)] }), key({ weights: [], restore: [at(6), at(5)] }));
  assert.notEqual(key({ weights: [], restore: [at(5)] }), key({ weights: [], restore: [at(6)] }));
  assert.notEqual(key({ weights: [], restore: [at(5)] }), key({ weights: [], restore: [at(5, 2)] }));
  assert.notEqual(key({ weights: [], restore: [at(5)] }), key({ weights: [], restore: [at(5, 1, "other")] }));
  assert.notEqual(key({ weights: [], restore: [at(5)] }), key({ weights: [] }));
});

test("parseCoordinate and parseScale: what they accept and the message for each kind of bad text", () => {
  assert.equal(coordinateText({ layer: 1, expert: 2, row: 3, column: 4 }), "[1, 2, 3, 4]");
  assert.equal(coordinateText({ layer: 1, expert: "shared", row: 3, column: 4 }), "[1, shared, 3, 4]");
  assert.equal(coordinateText({ layer: 1, row: 3, column: 4 }), "[1, 3, 4]");
  assert.deepEqual(parseCoordinate("1:0:3:4"), { layer: 1, expert: 0, row: 3, column: 4 });
  const coordinate = (text: string, option = "--zero") =>
    `${option} ${text}: expected LAYER:ROW:COLUMN (or LAYER:EXPERT:ROW:COLUMN), non-negative integers`;
  for (const bad of ["1:2:3 ", "1:2: 3", "x:0:1:2", "1:0:x:2", "1:0:2:x", "1:x:2:3", "1:2", "1:2:3:4:5", "-1:2:3"])
    assert.throws(() => parseCoordinate(bad), { name: "UserError", message: coordinate(bad) }, bad);

  assert.deepEqual(parseScale("1:2:3=-0.5"), { weight: { layer: 1, row: 2, column: 3 }, factor: -0.5 });
  assert.deepEqual(parseScale("1:2:3:4=3"), { weight: { layer: 1, expert: 2, row: 3, column: 4 }, factor: 3 });
  const factor = (text: string) => `--scale ${text}: expected LAYER:ROW:COLUMN=FACTOR with a finite FACTOR`;
  for (const bad of ["1:2:3", "5", "1:2:3=", "1:2:3= ", "1:2:3=x", "1:2:3=Infinity"])
    assert.throws(() => parseScale(bad), { name: "UserError", message: factor(bad) }, bad);
  // A factor with a bad coordinate before it: the coordinate's message, for --scale.
  assert.throws(() => parseScale("=2"), { message: coordinate("", "--scale") });
  assert.throws(() => parseScale("1:x:3=2"), { message: coordinate("1:x:3", "--scale") });
});

/** A stand-in model holding one tensor, read by rows as the engine does. */
function tensorModel(values: Float32Array, cols: number): Model {
  const rows = values.length / cols;
  return {
    shape: () => [rows, cols],
    readRows: (_: string, r0: number, r1: number) => values.slice(r0 * cols, r1 * cols),
  } as unknown as Model;
}

test("rankNeighbours on a tensor full of ties, read in blocks: ranks and neighbours as a full sort says", () => {
  assert.equal(MAX_BLOCK_ELEMENTS, 64, "the tensor is read 4 rows at a time");
  const cols = 16,
    n = 48 * cols;
  const r = rng(3);
  // |w| takes 5 values, so nearly every element ties with many others; the signs differ.
  const values = new Float32Array(n).map(() => (Math.floor(r() * 5) + 1) * (r() < 0.5 ? -1 : 1));
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  const rank = new Int32Array(n);
  order.forEach((i, k) => (rank[i] = k));
  const model = tensorModel(values, cols);
  for (const target of [0, 7, 300, 555, n - 1, order[0], order[n - 1], order[n >> 1]])
    for (const count of [0, 1, 2, 5, 40])
      for (const exclude of [
        new Set<number>(),
        new Set([order[rank[target] + 1], order[Math.max(0, rank[target] - 1)]]),
      ]) {
        exclude.delete(target);
        const got = rankNeighbours(model, TENSOR, target, count, exclude);
        const what = `target ${target}, ${count} neighbours, excluding ${[...exclude]}`;
        assert.equal(got.rank, rank[target], what);
        const want = [...values.keys()]
          .filter((i) => i !== target && !exclude.has(i))
          .sort((a, b) => Math.abs(rank[a] - rank[target]) - Math.abs(rank[b] - rank[target]) || rank[a] - rank[b])
          .slice(0, count);
        assert.deepEqual(
          got.neighbours.map((e) => [e.index, e.rank, e.abs]),
          want.map((i) => [i, rank[i], Math.abs(values[i])]),
          what,
        );
      }
  // More neighbours asked for than the tensor has: all the others.
  const all = rankNeighbours(model, TENSOR, 10, 2 * n, new Set());
  assert.equal(all.neighbours.length, n - 1);
  assert.deepEqual(
    all.neighbours.map((e) => e.index).sort((a, b) => a - b),
    [...values.keys()].filter((i) => i !== 10),
  );
});

test("sampleDistinct refuses a count outside [0, n]", () => {
  for (const [n, k] of [
    [5, -1],
    [5, 6],
    [0, 1],
  ])
    assert.throws(() => sampleDistinct(rng(1), n, k), {
      name: "RangeError",
      message: `cannot draw ${k} distinct values from ${n}`,
    });
  assert.deepEqual([...sampleDistinct(rng(1), 0, 0)], []);
});

test("zeroRandom: exactly round(fraction · unspared) zeroed for every seed, writing only inside each block", () => {
  const n = 200,
    cols = 10;
  const spare = [...Array(n).keys()].filter((i) => i % 2 === 1);
  for (let seed = 1; seed <= 6; seed++) {
    const o = zeroRandom("w", 0.5, spare, seed);
    o.prepare!({ tensor: "w", rows: n / cols, cols, read: () => new Float32Array(0), *blocks() {} });
    // Plain arrays, so that a write outside a block would add a key rather than vanish.
    const zeroed: number[] = [];
    for (let first = 0; first < n; first += 7) {
      const block = Array.from({ length: Math.min(7, n - first) }, () => 1);
      o.apply(block as unknown as Float32Array, first);
      assert.deepEqual(Object.keys(block), [...block.keys()].map(String), `seed ${seed}: block at ${first}`);
      block.forEach((v, j) => v === 0 && zeroed.push(first + j));
    }
    assert.equal(zeroed.length, 50, `seed ${seed}`);
    assert.ok(
      zeroed.every((i) => i % 2 === 0),
      `seed ${seed}: spared ones kept`,
    );
  }
});

test("nullStats: a single draw has no spread, so no sd and no z", () => {
  const s = nullStats(0.5, [0.2]);
  assert.deepEqual(s, { real: 0.5, nullMean: 0.2, nullSd: null, z: null, rank: 1, of: 2 });
});

test("stopwordMask trims and lower-cases each token's text; probabilityShift's ties and zero probabilities", () => {
  const texts = [" The", "cat", "AND ", "x", "\tof\n"];
  const tokenizer = { decode: (ids: number[]) => texts[ids[0]] } as unknown as TextTokenizer;
  assert.deepEqual([...stopwordMask(tokenizer, 5)], [1, 0, 1, 0, 1]);
  // Equal changes come in ascending ids; a token the baseline gives 0 adds nothing to the KL.
  const before = Float64Array.from([0.25, 0.25, 0.25, 0.25, 0]),
    after = Float64Array.from([0.35, 0.15, 0.35, 0.1, 0.05]);
  const s = probabilityShift(before, after, 2);
  assert.deepEqual(
    s.rises.map((t) => t.id),
    [0, 2],
  );
  assert.deepEqual(
    s.falls.map((t) => t.id),
    [3, 1],
  );
  const kl = 0.25 * (2 * Math.log(0.25 / 0.35) + Math.log(0.25 / 0.15) + Math.log(0.25 / 0.1));
  assert.ok(Math.abs(s.kl - kl) < 1e-15, `${s.kl} vs ${kl}`);
  const tie = probabilityShift(Float64Array.from([0.5, 0.25, 0.25]), Float64Array.from([0.5, 0.3, 0.2]), 5);
  assert.deepEqual([tie.rises.map((t) => t.id), tie.falls.map((t) => t.id)], [[1], [2]]);
});

test("repetitionRate counts distinct 4-grams of whole ids; four ids are one 4-gram", () => {
  assert.equal(repetitionRate([1, 2, 3, 4]), 0);
  assert.equal(repetitionRate([1, 2, 3]), null);
  // "1,12,3,4" and "11,2,3,4" are different 4-grams, though their digits are the same.
  assert.equal(repetitionRate([1, 12, 3, 4, 11, 2, 3, 4]), 0);
  assert.equal(repetitionRate([5, 5, 5, 5, 5]), 1 - 1 / 2);
});

test("corpusStream: a token id outside the vocabulary, the first one included, is a DataError naming it", () => {
  const model = { spec: { vocab: 10 }, path: "m" } as unknown as Model;
  const corpus = (ids: number[]) =>
    ({ kind: "ids", name: "c", ids, windowTokens: 4, source: { file: "c.ids" } }) as const;
  assert.deepEqual(corpusStream(model, corpus([9, 0, 3]), undefined, false), [9, 0, 3]);
  assert.deepEqual(
    corpusStream(model, corpus([9, 0, 3, 12]), undefined, false, 3),
    [9, 0, 3],
    "cut before the bad one",
  );
  for (const [ids, at] of [
    [[10, 1], 0],
    [[1, 2, 11], 2],
  ] as const)
    assert.throws(() => corpusStream(model, corpus([...ids]), undefined, false), {
      name: "DataError",
      message: `c.ids: token ${at + 1} (id ${ids[at]}) is outside the model's vocabulary (0..9)`,
    });
});

test("plainEncoder drops exactly what the tokenizer adds to every text: a BOS, an EOS, both, or nothing", () => {
  const bytesOf = (s: string) => [...new TextEncoder().encode(s)];
  const tokenizerOf = (before: number[], after: number[]) =>
    ({ encode: (s: string) => [...before, ...bytesOf(s), ...after] }) as unknown as TextTokenizer;
  for (const [before, after] of [
    [[1], [2]],
    [[1], []],
    [[], [2]],
    [[], []],
    [[300, 301], [2]],
  ]) {
    const plain = plainEncoder(tokenizerOf(before, after));
    assert.deepEqual(plain("ab"), [97, 98], `${before} | ${after}`);
    assert.deepEqual(plain(""), []);
  }
});

test("restore: an expert's row the baseline did not route there is left alone; so is the row just past the pass", () => {
  // Fresh variants: nothing recorded yet. After a cache of 4, the baseline's expert got tokens 4 and 6, the
  // intervention's got 5 and 7: token 5 has no baseline value to put back.
  const clock = { offset: 4 };
  const variants = interventionVariants({} as Model, [{ weights: [], restore: [site] }], clock);
  const mine = event(2, 0.5, { positions: [1, 3] });
  assert.deepEqual(pass(variants, event(2, 0, { positions: [0, 2] }), mine), [...event(2, 0.5).data]);
  // Token 5 three rows after a cache of 2 is row 3: past a pass of 3 rows, even in a larger buffer.
  clock.offset = 2;
  const roomy = (plus: number) => ({ ...event(8, plus), tokens: 3 });
  assert.deepEqual(pass(variants, roomy(7), roomy(0.5)), [...roomy(0.5).data]);
});
