// Attention on its own, against a float64 reference written from the definition: grouped-query heads, a KV cache
// (queries fewer than keys), the sliding window, Gemma2's softcap, and a sequence long enough that the heads are
// computed in chunks (the last one short). Then the backend choice and its settings, in this process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { attention, type AttentionShape } from "../src/engine/attention.js";
import { chooseBackend, jsBackend, threadCount, type MatmulBackend } from "../src/engine/matmul.js";

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = ((x >>> 0) / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** out[t, h, :] = Σ_j softmax_j(cap·tanh(q·k·scale / cap), masked) v[j] in float64. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array, s: AttentionShape): Float64Array {
  const { tokens: T, heads, kvHeads, headDim: d } = s;
  const S = s.keys ?? T;
  const out = new Float64Array(T * heads * d);
  for (let h = 0; h < heads; h++) {
    const kvh = Math.floor(h / (heads / kvHeads));
    for (let t = 0; t < T; t++) {
      const pos = S - T + t;
      const lo = s.window ? Math.max(0, pos - s.window + 1) : 0;
      const scores: number[] = [];
      for (let j = lo; j <= pos; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[(t * heads + h) * d + i] * k[(j * kvHeads + kvh) * d + i];
        let score = dot * s.scale;
        if (s.softcap !== undefined) score = Math.tanh(score / s.softcap) * s.softcap;
        scores.push(score);
      }
      const max = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - max));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = lo; j <= pos; j++)
        for (let i = 0; i < d; i++) out[(t * heads + h) * d + i] += (e[j - lo] / z) * v[(j * kvHeads + kvh) * d + i];
    }
  }
  return out;
}

async function check(s: AttentionShape, tolerance: number, backend: MatmulBackend = jsBackend): Promise<void> {
  const S = s.keys ?? s.tokens;
  const q = values(s.tokens * s.heads * s.headDim, 1);
  const k = values(S * s.kvHeads * s.headDim, 2).map((x) => x * 3);
  const v = values(S * s.kvHeads * s.headDim, 3);
  const got = await attention(backend, q, k, v, s);
  const want = reference(q, k, v, s);
  assert.equal(got.length, want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  assert.ok(worst < tolerance, `${JSON.stringify(s)}: max error ${worst}`);
}

test("causal attention with grouped-query heads matches the definition", async () => {
  await check({ tokens: 5, heads: 4, kvHeads: 2, headDim: 3, scale: 0.5 }, 1e-6);
  await check({ tokens: 3, heads: 3, kvHeads: 3, headDim: 4, scale: 1 }, 1e-6);
});

test("after a KV cache the queries are the last positions of the keys", async () => {
  await check({ tokens: 2, keys: 6, heads: 2, kvHeads: 1, headDim: 4, scale: 0.7 }, 1e-6);
  await check({ tokens: 1, keys: 4, heads: 2, kvHeads: 2, headDim: 2, scale: 1 }, 1e-6);
});

test("a sliding window masks keys more than window − 1 back, and softcap bounds the scores", async () => {
  await check({ tokens: 6, heads: 2, kvHeads: 1, headDim: 3, scale: 1, window: 2 }, 1e-6);
  await check({ tokens: 3, keys: 7, heads: 2, kvHeads: 2, headDim: 3, scale: 1, window: 3 }, 1e-6);
  await check({ tokens: 4, heads: 2, kvHeads: 1, headDim: 3, scale: 4, softcap: 1.5 }, 1e-6);
});

test("a long sequence is computed in head chunks (2, 2, 1 of 5 heads) with the same result", async () => {
  // 2 MB / (1000 · 1000) = 2 heads per chunk.
  await check({ tokens: 1000, heads: 5, kvHeads: 1, headDim: 2, scale: 1 }, 1e-5);
});

test("attention refuses keys and values that do not fit the shape", async () => {
  const s = { tokens: 3, heads: 2, kvHeads: 1, headDim: 2, scale: 1 };
  const q = new Float32Array(12);
  await assert.rejects(attention(jsBackend, q, new Float32Array(4), new Float32Array(4), s), {
    name: "RangeError",
    message: "attention: 3 queries over 2 keys, 3 expected",
  });
  await assert.rejects(attention(jsBackend, q, new Float32Array(6), new Float32Array(4), s), {
    message: "attention: 3 queries over 3 keys, 3 expected",
  });
  await assert.rejects(attention(jsBackend, q, new Float32Array(4), new Float32Array(4), { ...s, keys: 2 }), {
    message: "attention: 3 queries over 2 keys, 2 expected",
  });
});

test("threadCount: SUPERWEIGHT_THREADS, else every core; anything but a positive integer is refused", () => {
  const saved = process.env.SUPERWEIGHT_THREADS;
  try {
    delete process.env.SUPERWEIGHT_THREADS;
    const cores = threadCount();
    assert.ok(Number.isInteger(cores) && cores >= 1);
    process.env.SUPERWEIGHT_THREADS = "";
    assert.equal(threadCount(), cores);
    process.env.SUPERWEIGHT_THREADS = "3";
    assert.equal(threadCount(), 3);
    process.env.SUPERWEIGHT_THREADS = "1";
    assert.equal(threadCount(), 1);
    for (const bad of ["0", "-2", "1.5", "two"]) {
      process.env.SUPERWEIGHT_THREADS = bad;
      assert.throws(() => threadCount(), {
        name: "RangeError",
        message: `SUPERWEIGHT_THREADS must be a positive integer, got "${bad}"`,
      });
    }
  } finally {
    if (saved === undefined) delete process.env.SUPERWEIGHT_THREADS;
    else process.env.SUPERWEIGHT_THREADS = saved;
  }
});

test("chooseBackend: js when asked, onnxruntime otherwise, and the plain fallback says why", async () => {
  const fails = async (): Promise<MatmulBackend> => {
    throw new Error("no binary for this platform");
  };
  const threads: number[] = [];
  const fake: MatmulBackend = { ...jsBackend, name: "fake" };
  const loads = async (t: number) => (threads.push(t), fake);
  assert.equal(await chooseBackend("js", fails), jsBackend);
  assert.equal(await chooseBackend("", loads), fake);
  assert.equal(await chooseBackend("onnxruntime", loads), fake);
  assert.deepEqual(threads, [threadCount(), threadCount()]);
  const fallback = await chooseBackend("", fails);
  assert.equal(fallback.name, "js");
  assert.equal(fallback.fallbackReason, "onnxruntime-node did not load: no binary for this platform");
  assert.equal(jsBackend.fallbackReason, undefined);
  await assert.rejects(chooseBackend("onnxruntime", fails), { message: "no binary for this platform" });
  await assert.rejects(chooseBackend("cuda", loads), {
    name: "RangeError",
    message: 'SUPERWEIGHT_BACKEND must be "js" or "onnxruntime", got "cuda"',
  });
});
