// The weight overrides on their own: edits, scales, replacements and zero-largest applied to blocks that start
// anywhere in a tensor, against what the definitions give (zero-largest against a sort of |w|), their keys (equal
// keys share a product), and their refusals. overrides.test.ts runs them through whole passes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../src/errors.js";
import { editWeights, replaceTensor, scaleWeights, zeroLargest, type TensorRows } from "../src/engine/variants.js";

const shapes = { path: "/m", has: (n: string) => n === "w", shape: () => [3, 4] };

/** Apply an override to a [3, 4] tensor split into blocks at these flat offsets. */
function applied(o: { apply(w: Float32Array, first: number): void }, values: number[], cuts = [0, 5, 8]): number[] {
  const out = Float32Array.from(values);
  const ends = [...cuts.slice(1), values.length];
  cuts.forEach((c, i) => o.apply(out.subarray(c, ends[i]), c));
  return [...out];
}
const base = Array.from({ length: 12 }, (_, i) => i + 1);

test("editWeights: one override per tensor, applied wherever its block starts; keys name the edits in order", () => {
  const [o] = editWeights(shapes, [
    { tensor: "w", row: 2, column: 3, value: 0 },
    { tensor: "w", row: 0, column: 0, value: -1 },
    { tensor: "w", row: 1, column: 1, value: 0.1 },
  ]);
  assert.equal(o.tensor, "w");
  assert.equal(o.key, `edit:0=-1,5=${Math.fround(0.1)},11=0`);
  const want = [...base];
  want[0] = -1;
  want[5] = Math.fround(0.1);
  want[11] = 0;
  assert.deepEqual(applied(o, base), want, "edits at a block's first element, inside one, at the tensor's last");
  assert.deepEqual(applied(o, base, [0, 4, 6, 11]), want);
  // The same edits in another order are the same override.
  assert.equal(
    editWeights(shapes, [
      { tensor: "w", row: 1, column: 1, value: 0.1 },
      { tensor: "w", row: 2, column: 3, value: 0 },
      { tensor: "w", row: 0, column: 0, value: -1 },
    ])[0].key,
    o.key,
  );
  assert.deepEqual(editWeights(shapes, []), []);
});

test("editWeights refuses a tensor that is not there and an index outside its shape", () => {
  const refuses = (e: { tensor: string; row: number; column: number }, message: string) =>
    assert.throws(
      () => editWeights(shapes, [{ ...e, value: 0 }]),
      (err: unknown) => err instanceof UserError && err.message === message,
    );
  refuses({ tensor: "x", row: 0, column: 0 }, 'cannot edit "x": no such tensor in /m');
  for (const [row, column] of [
    [3, 0],
    [0, 4],
    [-1, 0],
    [0, -1],
    [0.5, 0],
    [0, 1.5],
  ])
    refuses({ tensor: "w", row, column }, `cannot edit w[${row}, ${column}]: outside its shape [3, 4]`);
  assert.equal(editWeights(shapes, [{ tensor: "w", row: 2, column: 3, value: 1 }]).length, 1);
});

test("scaleWeights multiplies the given elements once each, in float32; replaceTensor copies its block", () => {
  const s = scaleWeights("w", [11, 0, 5, 5], 0.3);
  assert.equal(s.key, `scale:${Math.fround(0.3)}:0,5,11`);
  const want = [...base];
  for (const i of [0, 5, 11]) want[i] = Math.fround(base[i] * Math.fround(0.3));
  assert.deepEqual(applied(s, base), want);
  const values = Float32Array.from(base, (v) => -v);
  const r = replaceTensor("w", values, "q4");
  assert.equal(r.key, "replace:q4");
  assert.deepEqual(applied(r, base), [...values]);
  assert.throws(() => r.apply(new Float32Array(4), 10), { message: "replacement for w has 12 elements" });
});

/** A TensorRows over these values, [rows, cols], in blocks of `rowsPerBlock` rows. */
function rowsOf(values: number[], rows: number, cols: number, rowsPerBlock = 1): TensorRows {
  const data = Float32Array.from(values);
  return {
    tensor: "w",
    rows,
    cols,
    read: (r0, r1) => data.slice(r0 * cols, r1 * cols),
    *blocks() {
      for (let r0 = 0; r0 < rows; r0 += rowsPerBlock)
        yield [data.slice(r0 * cols, Math.min(rows, r0 + rowsPerBlock) * cols), r0] as [Float32Array, number];
    },
  };
}

/** Zero-largest by its definition: sort indices by |w| descending, ties in row-major order, zero the first k. */
function zeroedByDefinition(values: number[], fraction: number, keep: number[] = []): number[] {
  const candidates = values.map((v, i) => [Math.abs(Math.fround(v)), i]).filter(([, i]) => !keep.includes(i));
  const k = Math.round(fraction * candidates.length);
  const order = candidates.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const out = values.map(Math.fround);
  for (const [, i] of order.slice(0, k)) out[i] = 0;
  return out;
}

test("zeroLargest zeroes exactly round(fraction · n) of the largest |w|, ties in row-major order, sparing `keep`", () => {
  const values = [0.5, -3, 2, 3, -0.25, 3, 1, -2, 0.75, 2, -3, 0.1];
  for (const [fraction, keep, rowsPerBlock] of [
    [1 / 12, [], 1],
    [2 / 12, [], 2],
    [0.25, [], 3],
    [0.5, [], 1],
    [0.25, [1], 1],
    [0.25, [3, 10], 2],
    [1, [], 1],
    [0, [], 1],
    [0.04, [], 1], // rounds to 0
  ] as [number, number[], number][]) {
    const o = zeroLargest("w", fraction, keep);
    o.prepare!(rowsOf(values, 3, 4, rowsPerBlock));
    assert.deepEqual(
      applied(o, values),
      zeroedByDefinition(values, fraction, keep),
      `fraction ${fraction} keep ${keep}`,
    );
  }
  assert.equal(zeroLargest("w", 0.25, [10, 3]).key, "zero-largest:0.25:3,10");
  assert.equal(zeroLargest("w", 0.5).key, "zero-largest:0.5:");
  for (const bad of [-0.1, 1.5, NaN])
    assert.throws(() => zeroLargest("w", bad), { message: `fraction ${bad} is not in [0, 1]` });
  // Without prepare (nothing to zero) the blocks pass unchanged.
  assert.deepEqual(applied(zeroLargest("w", 0.5), values), values.map(Math.fround));
});

test("zeroLargest on values sharing their top 16 bits: the low half of the bit pattern decides", () => {
  // 1 + 2^-20 and 1 + 2^-22 differ only in the low 16 bits of their float32 patterns.
  const values = [1, 1 + 2 ** -20, 1 + 2 ** -22, 1 + 2 ** -21, 0.5, 1 + 2 ** -20];
  for (const fraction of [1 / 6, 2 / 6, 3 / 6, 4 / 6]) {
    const o = zeroLargest("w", fraction);
    o.prepare!(rowsOf(values, 2, 3));
    assert.deepEqual(applied(o, values, [0, 2]), zeroedByDefinition(values, fraction), `fraction ${fraction}`);
  }
});
