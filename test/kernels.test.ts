// Kernels the fixtures do not reach on their own: rope_scaling "linear", the exact-erf GELU, softmax windows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inverseFrequencies, ropeTable, applyRope } from "../src/engine/rope.js";
import { erf, activate, softmaxRows, layerNorm, rmsNorm, clampInPlace, addBias } from "../src/engine/kernels.js";

test("inverse frequencies: default, linear scaling (÷ factor), llama3 (low frequencies ÷ factor, high kept)", () => {
  const base = inverseFrequencies({ theta: 10000, dim: 8 });
  assert.deepEqual(
    [...base].map((v) => +v.toPrecision(6)),
    [1, 0.1, 0.01, 0.001],
  );
  const linear = inverseFrequencies({ theta: 10000, dim: 8, scaling: { type: "linear", factor: 4 } });
  assert.deepEqual(
    [...linear],
    [...base].map((v) => Math.fround(v / 4)),
  );
  // Wavelengths 2π/inv: 6.3, 63, 628, 6283. With original 1000 positions, low 1, high 4: wavelengths
  // > 1000 are scaled by 1/8, < 250 kept, and 628 is blended.
  const l3 = inverseFrequencies({
    theta: 10000,
    dim: 8,
    scaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 1000 },
  });
  assert.equal(l3[0], base[0]);
  assert.equal(l3[1], base[1]);
  const smooth = (1000 / ((2 * Math.PI) / base[2]) - 1) / 3;
  assert.ok(Math.abs(l3[2] - (((1 - smooth) * base[2]) / 8 + smooth * base[2])) < 1e-9);
  assert.equal(l3[3], Math.fround(base[3] / 8));
});

test("rotate-half RoPE pairs dims i and i + d/2 of each head, position 0 untouched", () => {
  const table = ropeTable({ theta: 10000, dim: 4 }, 2);
  const x = new Float32Array([1, 2, 3, 4, 1, 2, 3, 4]); // [T=2, heads=1, d=4]
  applyRope(x, 2, 1, 4, table);
  assert.deepEqual([...x.subarray(0, 4)], [1, 2, 3, 4]);
  // position 1, pair (x0, x2) rotated by angle 1, pair (x1, x3) by 0.01
  const c = Math.cos(1),
    s = Math.sin(1),
    c2 = Math.cos(0.01),
    s2 = Math.sin(0.01);
  const want = [1 * c - 3 * s, 2 * c2 - 4 * s2, 3 * c + 1 * s, 4 * c2 + 2 * s2];
  [...x.subarray(4)].forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `dim ${i}: ${v} vs ${want[i]}`));
});

test("erf to double precision on both sides of the series/continued-fraction switch", () => {
  const known: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2.4, 0.9993114861033549],
    [2.6, 0.9997639655834707],
    [3, 0.9999779095030014],
    [-1, -0.8427007929497149],
  ];
  for (const [x, v] of known) assert.ok(Math.abs(erf(x) - v) < 1e-14, `erf(${x}) = ${erf(x)}`);
  const g = new Float32Array([1]);
  activate(g, "gelu");
  assert.ok(Math.abs(g[0] - 0.8413447460685429) < 1e-7);
});

test("softmax rows honour the causal and sliding windows", () => {
  const x = new Float32Array(9).fill(1); // 3 rows of 3
  softmaxRows(
    x,
    3,
    3,
    (r) => Math.max(0, r - 1),
    (r) => r,
  ); // window 2
  assert.deepEqual(
    [...x].map((v) => +v.toFixed(6)),
    [1, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5],
  );
});

test("exact GELU is x·Φ(x) away from 1 too: Φ from erf's table values", () => {
  // x·(1 + erf(x/√2))/2 with erf(√2) = 0.9544997361036416, erf(1/(2√2)) = 0.3829249225480262, erf(3/√2) = 0.9973002039367398
  const x = new Float32Array([2, -0.5, 3, 0]);
  activate(x, "gelu");
  const want = [1.9544997361036416, -0.5 * (1 - 0.3829249225480262) * 0.5, 3 * 0.9986501019683699, 0];
  [...x].forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 2e-7, `gelu at ${i}: ${v} vs ${want[i]}`));
});

test("softmax finds the maximum wherever it sits in the row, in every row", () => {
  // Any maximum other than the true one overflows exp: exp(1005) is infinite.
  const x = new Float32Array([-5, 1000, -5, 1000, -5, -5, -5, -5, 1000]);
  softmaxRows(
    x,
    3,
    3,
    () => 0,
    () => 2,
  );
  const small = Math.exp(-1005);
  assert.deepEqual([...x], [small, 1, small, 1, small, small, small, small, 1].map(Math.fround));
});

/** Float64 LayerNorm of one row, from the definition. */
function layerNormReference(x: number[], w: number[] | undefined, b: number[] | undefined, eps: number): number[] {
  const mean = x.reduce((a, v) => a + v, 0) / x.length;
  const variance = x.reduce((a, v) => a + (v - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * (w ? w[i] : 1) + (b ? b[i] : 0));
}

test("LayerNorm with and without its weight and bias (OLMo's is non-parametric), row by row", () => {
  const rows = [
    [1, 2, 3, 10],
    [-4, 0.5, 0.5, 7],
  ];
  const x = new Float32Array(rows.flat());
  const w = [0.5, 2, -1, 1.5];
  const b = [0.25, -0.5, 1, 0];
  for (const [weight, bias] of [
    [w, b],
    [w, undefined],
    [undefined, b],
    [undefined, undefined],
  ] as const) {
    const out = new Float32Array(8);
    layerNorm(out, x, weight && new Float32Array(weight), bias && new Float32Array(bias), 2, 4, 1e-5);
    const want = rows.flatMap((r) => layerNormReference(r, weight, bias, 1e-5));
    [...out].forEach((v, i) =>
      assert.ok(Math.abs(v - want[i]) < 1e-6, `${!!weight}/${!!bias} [${i}]: ${v} vs ${want[i]}`),
    );
  }
});

test("RMSNorm scales by w, or by 1 + w (Gemma), row by row", () => {
  const x = new Float32Array([1, -2, 3, 0.5, 4, 0]);
  const w = new Float32Array([0.5, -1, 2]);
  for (const plusOne of [false, true]) {
    const out = new Float32Array(6);
    rmsNorm(out, x, w, 2, 3, 1e-6, plusOne);
    for (let r = 0; r < 2; r++) {
      const row = [...x.subarray(3 * r, 3 * r + 3)];
      const rms = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 3 + 1e-6);
      row.forEach((v, i) => {
        const want = (v / rms) * (plusOne ? 1 + w[i] : w[i]);
        assert.ok(
          Math.abs(out[3 * r + i] - want) < 1e-6,
          `plusOne ${plusOne} [${r},${i}]: ${out[3 * r + i]} vs ${want}`,
        );
      });
    }
  }
});

test("clamp to ±c (OLMo's clip_qkv) and a bias added to every row", () => {
  const x = new Float32Array([-5, -3, -1, 0, 2, 3, 7]);
  clampInPlace(x, 3);
  assert.deepEqual([...x], [-3, -3, -1, 0, 2, 3, 3]);
  const y = new Float32Array([1, 2, 3, 4, 5, 6]);
  addBias(y, new Float32Array([10, 20]), 3);
  assert.deepEqual([...y], [11, 22, 13, 24, 15, 26]);
});

test("frequency factors divide each inverse frequency by its own factor", () => {
  const base = inverseFrequencies({ theta: 10000, dim: 8 });
  const scaled = inverseFrequencies({
    theta: 10000,
    dim: 8,
    scaling: { type: "frequency_factors", factors: [1, 2, 4, 8] },
  });
  assert.deepEqual([...scaled], [base[0], base[1] / 2, base[2] / 4, base[3] / 8].map(Math.fround));
});

test("llama3 scaling with low_freq_factor 2: the wavelength bounds are original / low and original / high", () => {
  // Wavelengths 6.3, 63, 628, 6283 against low bound 1000 / 2 = 500 and high bound 1000 / 8 = 125.
  const base = inverseFrequencies({ theta: 10000, dim: 8 });
  const l3 = inverseFrequencies({
    theta: 10000,
    dim: 8,
    scaling: { type: "llama3", factor: 4, lowFreqFactor: 2, highFreqFactor: 8, originalMaxPositions: 1000 },
  });
  assert.equal(l3[0], base[0]);
  assert.equal(l3[1], base[1]);
  assert.equal(l3[2], Math.fround(base[2] / 4), "628 > 500: divided by the factor");
  assert.equal(l3[3], Math.fround(base[3] / 4));
  const mid = inverseFrequencies({
    theta: 10000,
    dim: 8,
    scaling: { type: "llama3", factor: 4, lowFreqFactor: 1, highFreqFactor: 16, originalMaxPositions: 1000 },
  });
  // 628 lies between 1000 / 16 and 1000 / 1: blended with smooth = (1000 / 628 − 1) / 15.
  const smooth = (1000 / ((2 * Math.PI) / base[2]) - 1) / 15;
  assert.ok(Math.abs(mid[2] - ((1 - smooth) * (base[2] / 4) + smooth * base[2])) < 1e-9);
  assert.equal(
    mid[1],
    Math.fround(
      (1 - (1000 / ((2 * Math.PI) / base[1]) - 1) / 15) * (base[1] / 4) +
        ((1000 / ((2 * Math.PI) / base[1]) - 1) / 15) * base[1],
    ),
  );
});
