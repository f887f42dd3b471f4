// The engine's small pure parts in this process: finding non-finite values (and the error that names the weights
// holding them), next-token NLL / perplexity / top-k from logits, and the list of hook points. The hardening tests
// reach the non-finite path through the CLI; these pin its arithmetic and wording. Expected values are worked by
// hand from the definitions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_BLOCK_ELEMENTS } from "../src/checkpoint/block-buffer.js";
import type { Model } from "../src/engine/model.js";
import { checksNonFinite, firstNonFinite, NonFiniteError, nonFiniteError, nonFiniteIn } from "../src/engine/finite.js";
import { logSumExp, mean, nextTokenNll, perplexity, topK } from "../src/engine/nll.js";
import { HOOK_POINTS } from "../src/engine/hooks.js";

test("firstNonFinite: the index of the first NaN or ±Infinity, or −1", () => {
  assert.equal(firstNonFinite(new Float32Array([1, -0, 3e38, -3e38, 1e-45])), -1);
  assert.equal(firstNonFinite(new Float32Array([])), -1);
  assert.equal(firstNonFinite(new Float32Array([0, 1, NaN, Infinity])), 2);
  assert.equal(firstNonFinite(new Float32Array([-Infinity, NaN])), 0);
  assert.equal(firstNonFinite(new Float32Array([5, 6, Infinity])), 2);
});

test("checksNonFinite: on unless the caller or SUPERWEIGHT_ALLOW_NON_FINITE=1 says otherwise", () => {
  const saved = process.env.SUPERWEIGHT_ALLOW_NON_FINITE;
  try {
    delete process.env.SUPERWEIGHT_ALLOW_NON_FINITE;
    assert.equal(checksNonFinite(), true);
    assert.equal(checksNonFinite(true), false);
    assert.equal(checksNonFinite(false), true);
    process.env.SUPERWEIGHT_ALLOW_NON_FINITE = "1";
    assert.equal(checksNonFinite(), false);
    assert.equal(checksNonFinite(false), true, "the caller's word wins over the environment");
    process.env.SUPERWEIGHT_ALLOW_NON_FINITE = "0";
    assert.equal(checksNonFinite(), true);
  } finally {
    if (saved === undefined) delete process.env.SUPERWEIGHT_ALLOW_NON_FINITE;
    else process.env.SUPERWEIGHT_ALLOW_NON_FINITE = saved;
  }
});

/** A model that is only stored tensors (what finite.ts asks of one), recording each readRows call. */
function storedModel(tensors: Record<string, { shape: number[]; data: (flat: number) => number }>) {
  const reads: [string, number, number][] = [];
  const model = {
    path: "/models/m",
    shape: (name: string) => tensors[name].shape,
    readRows: (name: string, r0: number, r1: number) => {
      reads.push([name, r0, r1]);
      const { shape, data } = tensors[name];
      const cols = shape.slice(1).reduce((a, b) => a * b, 1);
      const out = new Float32Array((r1 - r0) * cols);
      for (let i = 0; i < out.length; i++) out[i] = data(r0 * cols + i);
      return out;
    },
  };
  return { model: model as unknown as Model, reads };
}

test("nonFiniteIn counts the non-finite values of a tensor and gives the first by [row, column]", () => {
  const { model } = storedModel({
    w: { shape: [4, 3], data: (i) => (i === 7 ? NaN : i === 10 || i === 11 ? -Infinity : i) },
    v: { shape: [5], data: (i) => (i === 3 ? Infinity : 1) },
    fine: { shape: [2, 2], data: () => 2 },
    scalar: { shape: [], data: () => NaN },
  });
  assert.deepEqual(nonFiniteIn(model, "w"), { count: 3, first: [2, 1], kind: "NaN" });
  assert.deepEqual(nonFiniteIn(model, "v"), { count: 1, first: [3], kind: "infinite" });
  assert.equal(nonFiniteIn(model, "fine"), undefined);
  assert.deepEqual(nonFiniteIn(model, "scalar"), { count: 1, first: [0], kind: "NaN" });
  // Only the rows asked for (an embedding's prompt tokens), each once however often it is named.
  assert.deepEqual(nonFiniteIn(model, "w", [3, 3, 0]), { count: 2, first: [3, 1], kind: "infinite" });
  assert.equal(nonFiniteIn(model, "w", [0, 1]), undefined);
});

test("nonFiniteIn reads a big tensor block by block, every row once, the last block short", () => {
  const cols = MAX_BLOCK_ELEMENTS / 2; // two rows per block
  const { model, reads } = storedModel({ big: { shape: [5, cols], data: (i) => (i === 4 * cols + 9 ? NaN : 0) } });
  assert.deepEqual(nonFiniteIn(model, "big"), { count: 1, first: [4, 9], kind: "NaN" });
  assert.deepEqual(reads, [
    ["big", 0, 2],
    ["big", 2, 4],
    ["big", 4, 5],
  ]);
  // A row wider than a block is still read one row at a time.
  const wide = storedModel({ wide: { shape: [2, MAX_BLOCK_ELEMENTS + 1], data: () => 1 } });
  assert.equal(nonFiniteIn(wide.model, "wide"), undefined);
  assert.deepEqual(wide.reads, [
    ["wide", 0, 1],
    ["wide", 1, 2],
  ]);
});

test("nonFiniteError names where the value appeared and which suspects hold such values", () => {
  const bad = (n: number) => ({ shape: [2, 2], data: (i: number) => (i < n ? NaN : 1) });
  const { model } = storedModel({ a: bad(1), b: bad(4), c: bad(2), d: bad(3), ok: { shape: [2], data: () => 1 } });
  const err = nonFiniteError(model, 3, "down_proj_output", new Float32Array([1, NaN]), 1, ["ok", "a", "b"]);
  assert.ok(err instanceof NonFiniteError);
  assert.equal(err.name, "NonFiniteError");
  assert.equal(
    err.message,
    "/models/m: NaN first appears at layer 3, down_proj_output: a holds 1 NaN value (first at [0, 0]); " +
      "b holds 4 NaN values (first at [0, 0]). Pass --allow-non-finite to go on anyway",
  );
  assert.equal(
    nonFiniteError(model, 0, "logits", new Float32Array([Infinity]), 0, ["ok"]).message,
    "/models/m: an infinite value first appears at the logits: the weights read there are finite: the arithmetic " +
      "overflowed float32, or the config makes it fail. Pass --allow-non-finite to go on anyway",
  );
  assert.equal(
    nonFiniteError(model, 1, "layer_output", new Float32Array([-Infinity]), 0, ["a", "b", "c", "d", "ok"]).message,
    "/models/m: an infinite value first appears at layer 1, layer_output: a holds 1 NaN value (first at [0, 0]); " +
      "b holds 4 NaN values (first at [0, 0]); c holds 2 NaN values (first at [0, 0]); and 1 more tensors. " +
      "Pass --allow-non-finite to go on anyway",
  );
  // The rows callback limits a suspect to the rows read (the prompt's tokens in an embedding).
  const rows = storedModel({ e: { shape: [3, 2], data: (i) => (i === 1 ? NaN : 1) } });
  assert.match(
    nonFiniteError(rows.model, 0, "layer_input", new Float32Array([NaN]), 0, ["e"], () => [1, 2]).message,
    /the weights read there are finite/,
  );
  assert.match(
    nonFiniteError(rows.model, 0, "layer_input", new Float32Array([NaN]), 0, ["e"], () => [0]).message,
    /: e holds 1 NaN value \(first at \[0, 1\]\)\./,
  );
});

test("next-token NLL is log-sum-exp minus the next token's logit, position by position", () => {
  // Two positions over a vocabulary of 3; ids [2, 0, 1]: position 0 predicts 0, position 1 predicts 1.
  const logits = new Float32Array([1, 2, 3, 0, 0, Math.log(2)]);
  const nll = nextTokenNll(logits, [2, 0, 1], 3);
  const lse0 = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
  assert.equal(nll.length, 2);
  assert.ok(Math.abs(nll[0] - (lse0 - 1)) < 1e-12);
  assert.ok(Math.abs(nll[1] - Math.log(4)) < 1e-7); // log(1 + 1 + 2) − 0
  assert.deepEqual(nextTokenNll(logits, [2], 3), []);
  // Large logits do not overflow: the maximum is taken out first, wherever it sits.
  const big = new Float32Array([-1000, 1000, 999, 0, 1000, 0]);
  assert.ok(Math.abs(logSumExp(big, 0, 3) - (1000 + Math.log(1 + Math.exp(-1)))) < 1e-9);
  assert.ok(Math.abs(logSumExp(big, 3, 3) - (1000 + Math.log(1 + 2 * Math.exp(-1000)))) < 1e-9);
  assert.equal(logSumExp(new Float32Array([0, 5, 0]), 1, 1), 5);
});

test("perplexity is exp of the mean NLL, NaN with no predictions; mean is the plain mean", () => {
  assert.ok(Math.abs(perplexity([Math.log(2), Math.log(8)]) - 4) < 1e-12);
  assert.ok(Number.isNaN(perplexity([])));
  assert.equal(mean([1, 2, 6]), 3);
});

test("topK: the k most likely tokens in order, with softmax probabilities", () => {
  // Row 1 of [2, 5]: logits 0, 3, 1, 3.5, -2.
  const logits = new Float32Array([9, 9, 9, 9, 9, 0, 3, 1, 3.5, -2]);
  const z = Math.exp(0) + Math.exp(3) + Math.exp(1) + Math.exp(3.5) + Math.exp(-2);
  const top = topK(logits, 1, 5, 3);
  assert.deepEqual(
    top.map((t) => t.id),
    [3, 1, 2],
  );
  assert.deepEqual(
    top.map((t) => t.logit),
    [3.5, 3, 1],
  );
  top.forEach((t) => assert.ok(Math.abs(t.prob - Math.exp(t.logit) / z) < 1e-7, `prob of ${t.id}`));
  assert.deepEqual(
    topK(logits, 1, 5, 1).map((t) => t.id),
    [3],
  );
  assert.deepEqual(
    topK(logits, 1, 5, 5).map((t) => t.id),
    [3, 1, 2, 0, 4],
  );
  // The best arrives last, after the list is full.
  assert.deepEqual(
    topK(new Float32Array([1, 2, 0, 5]), 0, 4, 2).map((t) => t.id),
    [3, 1],
  );
});

test("the hook points, in the order a layer reaches them", () => {
  assert.deepEqual(HOOK_POINTS, [
    "layer_input",
    "linear_input",
    "attn_output",
    "down_proj_input",
    "down_proj_output",
    "layer_output",
    "logits",
  ]);
});

test("KvCache keeps every position through growth, per layer and variant, and refuses what does not fit", async () => {
  const { KvCache } = await import("../src/engine/kv-cache.js");
  for (const bad of [0, -1, 1.5])
    assert.throws(() => new KvCache(bad), { message: `a KV cache needs ≥ 1 variant, got ${bad}` });
  const cache = new KvCache(2);
  const rows = (from: number, n: number) => new Float32Array(2 * n).map((_, i) => from + i);
  // 16 positions of width 2 fill the first allocation; the 17th grows it, keeping the 16.
  cache.extend(0, 1, rows(0, 16), rows(100, 16), 2);
  cache.advance(16);
  const grown = cache.extend(0, 1, rows(32, 1), rows(132, 1), 2);
  assert.deepEqual([...grown.k], [...rows(0, 17)]);
  assert.deepEqual([...grown.v], [...rows(100, 17)]);
  cache.advance(1);
  assert.equal(cache.length, 17);
  // Another layer and variant have slots of their own, written at the shared length (all layers advance together).
  const other = cache.extend(3, 0, rows(7, 2), rows(9, 2), 2);
  assert.deepEqual([...other.k], [...new Float32Array(34), 7, 8, 9, 10]);
  assert.deepEqual([...other.v.subarray(34)], [9, 10, 11, 12]);
  assert.throws(() => cache.extend(0, 2, rows(0, 1), rows(0, 1), 2), { message: "variant 2 outside the cache's 2" });
  assert.throws(() => cache.extend(0, -1, rows(0, 1), rows(0, 1), 2), { message: "variant -1 outside the cache's 2" });
  assert.throws(() => cache.extend(0, 1, rows(0, 1), rows(0, 1), 1), {
    message: "layer 0: cached rows are 2 wide, not 1",
  });
  // Truncating forgets a continuation: the next extend writes over it.
  cache.truncate(2);
  assert.equal(cache.length, 2);
  const again = cache.extend(0, 1, rows(50, 1), rows(60, 1), 2);
  assert.deepEqual([...again.k], [0, 1, 2, 3, 50, 51]);
  for (const bad of [3, -1, 0.5])
    assert.throws(() => cache.truncate(bad), { message: `cannot truncate a cache of 2 positions to ${bad}` });
  cache.truncate(0);
  assert.equal(cache.length, 0);
});

test("the matmul backends refuse dimensions and lengths that do not fit, naming them", async () => {
  const { jsBackend } = await import("../src/engine/matmul.js");
  const x = new Float32Array(6),
    w = new Float32Array(12);
  assert.equal((await jsBackend.linear(x, 2, 3, w, 4, "nk")).length, 8);
  for (const [m, shown] of [
    [-1, "-1"],
    [1.5, "1.5"],
    [NaN, "NaN"],
  ] as const)
    await assert.rejects(jsBackend.linear(x, m, 3, w, 4, "nk"), {
      name: "RangeError",
      message: `matmul: m must be a non-negative integer, got ${shown}`,
    });
  await assert.rejects(jsBackend.linear(x, 2, 3, w, -4, "kn"), {
    message: "matmul: n must be a non-negative integer, got -4",
  });
  await assert.rejects(jsBackend.linear(x, 2, 3, w, 4, "mn" as "nk"), { message: "matmul: unknown layout mn" });
  await assert.rejects(jsBackend.linear(x, 3, 3, w, 4, "nk"), {
    message: "matmul: x has 6 floats, expected [3,3] = 9",
  });
  await assert.rejects(jsBackend.linear(x, 2, 3, w, 5, "nk"), {
    message: "matmul: w has 12 floats, expected [5,3] = 15",
  });
  await assert.rejects(jsBackend.linear(x, 2, 3, w, 5, "kn"), {
    message: "matmul: w has 12 floats, expected [3,5] = 15",
  });
  await assert.rejects(jsBackend.batched(x, w, 2, 1, 3, 3, true), {
    message: "matmul: b has 12 floats, expected [2,3,3] = 18",
  });
  await assert.rejects(jsBackend.batched(x, w, 2, 1, 3, 3, false), {
    message: "matmul: b has 12 floats, expected [2,3,3] = 18",
  });
  await assert.rejects(jsBackend.batched(x, w, 2, 2, 3, 2, true), {
    message: "matmul: a has 6 floats, expected [2,2,3] = 12",
  });
  await assert.rejects(jsBackend.batched(x, w, -2, 1, 3, 2, true), {
    message: "matmul: batch must be a non-negative integer, got -2",
  });
  assert.equal((await jsBackend.batched(x, w, 2, 1, 3, 2, false)).length, 4);
});

/** Float64 x[m,k]·W, W stored [n,k] ("nk") or [k,n] ("kn"). */
function naiveProduct(x: Float32Array, m: number, k: number, w: Float32Array, n: number, layout: "nk" | "kn") {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += x[i * k + p] * (layout === "nk" ? w[j * k + p] : w[p * n + j]);
      out[i * n + j] = s;
    }
  return out;
}

const filled = (n: number, seed: number) => new Float32Array(n).map((_, i) => Math.sin(seed * 7.3 + i * 1.7));

test("the JS products over shapes that leave remainders: k not a multiple of 4, more than 256 columns and 64 rows", async () => {
  const { jsBackend, matmulRef } = await import("../src/engine/matmul.js");
  for (const [m, k, n] of [
    [3, 5, 300],
    [2, 70, 7],
    [1, 3, 2],
    [5, 129, 513],
  ])
    for (const layout of ["nk", "kn"] as const) {
      const x = filled(m * k, m),
        w = filled(n * k, k);
      const got = await jsBackend.linear(x, m, k, w, n, layout);
      const want = naiveProduct(x, m, k, w, n, layout);
      got.forEach((v, i) =>
        assert.ok(
          Math.abs(v - want[i]) <= 1e-6 * (1 + Math.abs(want[i])),
          `${layout} ${m}×${k}×${n} [${i}]: ${v} vs ${want[i]}`,
        ),
      );
    }
  assert.throws(() => matmulRef(new Float32Array(5), filled(6, 1), 2, 3, filled(12, 2), 4, "nk"), {
    message: "matmul: out has 5 floats, expected [2,4] = 8",
  });
});

test("onnxruntime: telemetry off unless asked for, and empty products are zeros", async (t) => {
  const { createOrtBackend } = await import("../src/engine/matmul.js");
  const saved = process.env.ORT_DISABLE_TELEMETRY;
  delete process.env.ORT_DISABLE_TELEMETRY;
  let ort;
  try {
    ort = await createOrtBackend(1);
  } catch (e) {
    return t.skip(`onnxruntime-node does not load here: ${(e as Error).message}`);
  } finally {
    const set = process.env.ORT_DISABLE_TELEMETRY;
    if (saved === undefined) delete process.env.ORT_DISABLE_TELEMETRY;
    else process.env.ORT_DISABLE_TELEMETRY = saved;
    assert.equal(set, "1");
  }
  process.env.ORT_DISABLE_TELEMETRY = "0";
  await createOrtBackend(1);
  assert.equal(process.env.ORT_DISABLE_TELEMETRY, "0", "a user's own setting is kept");
  if (saved === undefined) delete process.env.ORT_DISABLE_TELEMETRY;
  else process.env.ORT_DISABLE_TELEMETRY = saved;
  assert.equal(ort.threads, 1);
  assert.deepEqual(
    [...(await ort.linear(new Float32Array(0), 2, 0, new Float32Array(0), 3, "nk"))],
    [0, 0, 0, 0, 0, 0],
  );
  assert.deepEqual([...(await ort.linear(new Float32Array(0), 0, 4, new Float32Array(8), 2, "kn"))], []);
  assert.deepEqual([...(await ort.batched(new Float32Array(0), new Float32Array(0), 2, 1, 0, 2, true))], [0, 0, 0, 0]);
  const x = filled(6, 3),
    w = filled(12, 4);
  const got = await ort.linear(x, 2, 3, w, 4, "kn");
  const want = naiveProduct(x, 2, 3, w, 4, "kn");
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6));
});
