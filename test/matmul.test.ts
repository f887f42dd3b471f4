// The matmul backends against a naive triple loop, with an error bound that holds for any f32
// summation order (so it is tight enough to catch a wrong index or a dropped term).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  createOrtBackend,
  getBackend,
  jsBackend,
  matmulRef,
  type Layout,
  type MatmulBackend,
} from "../src/engine/matmul.js";

// ---- helpers ----

/** Deterministic uniform values in [-1, 1) (mulberry32). */
function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Exact-ish product in float64: the value and Σ|x·w| for each output, x[m,k] · W → [m,n]. */
function naive(x: Float32Array, m: number, k: number, w: Float32Array, n: number, layout: Layout) {
  const value = new Float64Array(m * n);
  const absSum = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0,
        a = 0;
      for (let p = 0; p < k; p++) {
        const t = x[i * k + p] * (layout === "nk" ? w[j * k + p] : w[p * n + j]);
        s += t;
        a += Math.abs(t);
      }
      value[i * n + j] = s;
      absSum[i * n + j] = a;
    }
  }
  return { value, absSum };
}

const U = 2 ** -24; // unit roundoff of f32

/**
 * Index of the first element outside the bound, or -1.
 * Bound: |got − exact| ≤ γ_k·Σ|x·w| + u·|exact|, γ_k = k·u / (1 − k·u). This is the standard forward
 * error bound of an f32 dot product of length k in ANY summation order, with or without FMA (Higham,
 * Accuracy and Stability, §3.1), plus one rounding of the result to f32. It is rigorous, so a correct
 * GEMM never fails it, yet a single dropped or misplaced term (|x·w| ~ 0.25 here) exceeds it for every k
 * we test (the bound is ~1e-3 at k = 257, ~2e-7 at k = 5).
 */
function firstMismatch(got: Float32Array, ref: { value: Float64Array; absSum: Float64Array }, k: number): number {
  if (got.length !== ref.value.length) return 0;
  const gamma = (k * U) / (1 - k * U);
  for (let i = 0; i < got.length; i++) {
    const tol = gamma * ref.absSum[i] + U * Math.abs(ref.value[i]);
    if (!(Math.abs(got[i] - ref.value[i]) <= tol)) return i; // also catches NaN
  }
  return -1;
}

function assertClose(
  got: Float32Array,
  ref: { value: Float64Array; absSum: Float64Array },
  k: number,
  what: string,
): void {
  assert.equal(got.length, ref.value.length, `${what}: length`);
  const i = firstMismatch(got, ref, k);
  assert.equal(i, -1, i < 0 ? "" : `${what}: element ${i} is ${got[i]}, expected ${ref.value[i]}`);
}

/** Reference for the batched op: one naive product per batch entry. */
function naiveBatched(
  a: Float32Array,
  bm: Float32Array,
  batch: number,
  m: number,
  k: number,
  n: number,
  transB: boolean,
) {
  const value = new Float64Array(batch * m * n);
  const absSum = new Float64Array(batch * m * n);
  for (let b = 0; b < batch; b++) {
    const r = naive(
      a.subarray(b * m * k, (b + 1) * m * k),
      m,
      k,
      bm.subarray(b * n * k, (b + 1) * n * k),
      n,
      transB ? "nk" : "kn",
    );
    value.set(r.value, b * m * n);
    absSum.set(r.absSum, b * m * n);
  }
  return { value, absSum };
}

const SIZES = { m: [1, 3, 17], k: [5, 64, 257], n: [1, 7, 130] };
const LAYOUTS: Layout[] = ["nk", "kn"];

// onnxruntime-node is a dependency: under CI=true a load failure fails; elsewhere the tests skip with the reason.
let ortBackend: MatmulBackend | undefined;
let ortSkip: string | false = false;
try {
  ortBackend = await createOrtBackend(2);
} catch (e) {
  if (process.env.CI === "true") throw e;
  ortSkip = `onnxruntime-node did not load: ${(e as Error).message}`;
}
const backends: [string, () => MatmulBackend, string | false][] = [
  ["js", () => jsBackend, false],
  ["onnxruntime", () => ortBackend!, ortSkip],
];

// ---- the checker itself ----

test("the comparison rejects a dropped term, a wrong layout and NaN", () => {
  const m = 3,
    k = 64,
    n = 7;
  const x = random(m * k, 1),
    w = random(n * k, 2);
  const ref = naive(x, m, k, w, n, "nk");
  const out = new Float32Array(m * n);
  matmulRef(out, x, m, k, w, n, "nk");
  assert.equal(firstMismatch(out, ref, k), -1);
  // drop the last term of one output
  const dropped = out.slice();
  dropped[4] -= x[0 * k + k - 1] * w[4 * k + k - 1];
  assert.notEqual(firstMismatch(dropped, ref, k), -1);
  // same data read as [k,n]
  matmulRef(out, x, m, k, w, n, "kn");
  assert.notEqual(firstMismatch(out, ref, k), -1);
  const nan = new Float32Array(m * n).fill(NaN);
  assert.notEqual(firstMismatch(nan, ref, k), -1);
});

// ---- linear ----

for (const [name, backend, skip] of backends) {
  test(`${name}: linear matches the naive loop for both layouts and odd sizes`, { skip }, async () => {
    let seed = 10;
    for (const layout of LAYOUTS) {
      for (const m of SIZES.m) {
        for (const k of SIZES.k) {
          for (const n of SIZES.n) {
            const x = random(m * k, seed++),
              w = random(n * k, seed++);
            const got = await backend().linear(x, m, k, w, n, layout);
            assertClose(got, naive(x, m, k, w, n, layout), k, `${layout} m=${m} k=${k} n=${n}`);
          }
        }
      }
    }
  });

  test(`${name}: linear reads subarray views at their offset`, { skip }, async () => {
    const m = 17,
      k = 257,
      n = 130;
    // x and w sit in the middle of larger buffers full of other values
    const xs = random(m * k + 11, 3),
      ws = random(n * k + 29, 4);
    const x = xs.subarray(5, 5 + m * k),
      w = ws.subarray(13, 13 + n * k);
    assert.ok(x.byteOffset > 0 && w.byteOffset > 0);
    for (const layout of LAYOUTS) {
      const got = await backend().linear(x, m, k, w, n, layout);
      assertClose(got, naive(x.slice(), m, k, w.slice(), n, layout), k, `view ${layout}`);
    }
  });

  test(`${name}: a larger product (threaded GEMM path, several cache blocks)`, { skip }, async () => {
    const m = 64,
      k = 512,
      n = 300;
    const x = random(m * k, 5),
      w = random(n * k, 6);
    for (const layout of LAYOUTS) {
      assertClose(
        await backend().linear(x, m, k, w, n, layout),
        naive(x, m, k, w, n, layout),
        k,
        `64x512x300 ${layout}`,
      );
    }
  });

  test(`${name}: empty dimensions`, { skip }, async () => {
    const b = backend();
    assert.deepEqual(await b.linear(new Float32Array(0), 0, 4, random(12, 7), 3, "nk"), new Float32Array(0));
    assert.deepEqual(await b.linear(random(8, 8), 2, 4, new Float32Array(0), 0, "kn"), new Float32Array(0));
    assert.deepEqual(await b.linear(new Float32Array(0), 2, 0, new Float32Array(0), 3, "nk"), new Float32Array(6));
  });

  test(`${name}: wrong lengths are refused`, { skip }, async () => {
    const b = backend();
    await assert.rejects(b.linear(random(6, 9), 2, 4, random(12, 10), 3, "nk"), RangeError);
    await assert.rejects(b.linear(random(8, 9), 2, 4, random(11, 10), 3, "kn"), RangeError);
    await assert.rejects(b.batched(random(8, 9), random(12, 10), 2, 2, 2, 2, true), RangeError);
  });

  // ---- batched ----

  test(`${name}: batched matches a loop of naive products, transB true and false`, { skip }, async () => {
    let seed = 100;
    for (const transB of [false, true]) {
      for (const [batch, m, k, n] of [
        [1, 1, 5, 1],
        [3, 5, 33, 9],
        [8, 17, 64, 130],
        [4, 1, 257, 7],
      ]) {
        const a = random(batch * m * k, seed++),
          bm = random(batch * n * k, seed++);
        const got = await backend().batched(a, bm, batch, m, k, n, transB);
        assertClose(got, naiveBatched(a, bm, batch, m, k, n, transB), k, `transB=${transB} ${batch}x${m}x${k}x${n}`);
      }
    }
  });

  test(`${name}: batched reads subarray views at their offset`, { skip }, async () => {
    const batch = 3,
      m = 4,
      k = 16,
      n = 5;
    const as = random(batch * m * k + 3, 11),
      bs = random(batch * n * k + 7, 12);
    const a = as.subarray(3),
      bm = bs.subarray(7);
    for (const transB of [false, true]) {
      const got = await backend().batched(a, bm, batch, m, k, n, transB);
      assertClose(got, naiveBatched(a.slice(), bm.slice(), batch, m, k, n, transB), k, `view transB=${transB}`);
    }
  });
}

// ---- matmulRef into a view, and backend selection ----

test("matmulRef writes only its output view", () => {
  const m = 3,
    k = 5,
    n = 7;
  const x = random(m * k, 20),
    w = random(n * k, 21);
  const big = new Float32Array(m * n + 4).fill(42);
  matmulRef(big.subarray(2, 2 + m * n), x, m, k, w, n, "kn");
  assert.deepEqual([big[0], big[1], big[m * n + 2], big[m * n + 3]], [42, 42, 42, 42]);
  assertClose(big.slice(2, 2 + m * n), naive(x, m, k, w, n, "kn"), k, "view out");
});

test("getBackend is cached and names its backend", async () => {
  const a = await getBackend();
  assert.equal(a, await getBackend());
  assert.ok(a.name === "onnxruntime" || a.name === "js");
  if (!ortSkip && process.env.SUPERWEIGHT_BACKEND === undefined) assert.equal(a.name, "onnxruntime");
});

/** Runs getBackend() in a fresh process with the given environment; returns its name or the error. */
function backendIn(env: Record<string, string>): { name?: string; error?: string } {
  const url = new URL("../src/engine/matmul.js", import.meta.url).href;
  const code = `import { getBackend } from ${JSON.stringify(url)};
    getBackend().then((b) => console.log(JSON.stringify({ name: b.name })), (e) => console.log(JSON.stringify({ error: e.message })));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
  return JSON.parse(r.stdout.trim());
}

test("SUPERWEIGHT_BACKEND=js forces the fallback; bad settings are refused", () => {
  assert.deepEqual(backendIn({ SUPERWEIGHT_BACKEND: "js" }), { name: "js" });
  assert.match(backendIn({ SUPERWEIGHT_BACKEND: "cuda" }).error ?? "", /SUPERWEIGHT_BACKEND/);
  assert.match(backendIn({ SUPERWEIGHT_BACKEND: "", SUPERWEIGHT_THREADS: "two" }).error ?? "", /SUPERWEIGHT_THREADS/);
});
