// Kernels the fixtures do not reach on their own: rope_scaling "linear", the exact-erf GELU, softmax windows.
import { test } from "node:test";
import assert from "node:assert/strict";
import { inverseFrequencies, ropeTable, applyRope } from "../src/engine/rope.js";
import { erf, activate, softmaxRows } from "../src/engine/kernels.js";

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
