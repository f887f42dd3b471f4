// Weight overrides, exactly: what each one changes, and that a variant with an override gives the logits of a
// checkpoint with that change written to disk.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import {
  editWeights,
  scaleWeights,
  zeroLargest,
  type TensorRows,
  type WeightOverride,
} from "../src/engine/variants.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "sw-overrides-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** An override applied as the engine applies it: prepare on the whole tensor, then apply block by block. */
function applied(o: WeightOverride, values: Float32Array, rows: number, cols: number, blockRows = 3): Float32Array {
  const out = values.slice();
  const read = (r0: number, r1: number) => values.slice(r0 * cols, r1 * cols);
  const tensorRows: TensorRows = {
    tensor: o.tensor,
    rows,
    cols,
    read,
    *blocks() {
      for (let r0 = 0; r0 < rows; r0 += blockRows)
        yield [read(r0, Math.min(rows, r0 + blockRows)), r0] as [Float32Array, number];
    },
  };
  o.prepare?.(tensorRows);
  for (let r0 = 0; r0 < rows; r0 += blockRows) {
    const block = out.subarray(r0 * cols, Math.min(rows, r0 + blockRows) * cols);
    o.apply(block, r0 * cols);
  }
  return out;
}

/** The k = round(fraction·n) largest |w| by sorting (ties: row-major order), as a set of flat indices. */
function largestBySort(values: Float32Array, fraction: number, keep: number[] = []): Set<number> {
  const spared = new Set(keep);
  const idx = [...values.keys()].filter((i) => !spared.has(i));
  idx.sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  return new Set(idx.slice(0, Math.round(fraction * idx.length)));
}

test("zeroLargest zeroes exactly the k largest |w| (ties in row-major order), sparing kept weights", () => {
  const rows = 7,
    cols = 11;
  const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.fround(((i * 37) % 23) - 11) / 4);
  values[5] = -9;
  values[40] = 9;
  values[41] = 9;
  values[60] = -9; // ties at the top
  for (const [fraction, keep] of [
    [0.05, []],
    [0.1, [40]],
    [0.3, [5, 60]],
    [0, []],
    [1, [3]],
  ] as [number, number[]][]) {
    const want = largestBySort(values, fraction, keep);
    const got = applied(zeroLargest("w", fraction, keep), values, rows, cols);
    const zeroed = new Set([...got.keys()].filter((i) => got[i] === 0 && values[i] !== 0));
    const changed = [...got.keys()].filter((i) => got[i] !== values[i]);
    assert.deepEqual(
      new Set(changed),
      new Set([...want].filter((i) => values[i] !== 0)),
      `fraction ${fraction}: changed elements`,
    );
    assert.equal([...want].length, Math.round(fraction * (rows * cols - keep.length)));
    for (const i of keep) assert.equal(got[i], values[i], `kept ${i}`);
    assert.ok([...zeroed].every((i) => want.has(i)));
  }
});

test("editWeights sets exactly the listed weights and scaleWeights multiplies exactly (w·F in float32)", () => {
  const values = Float32Array.from({ length: 12 }, (_, i) => i + 0.5);
  const model = { has: () => true, shape: () => [3, 4], path: "m" } as unknown as Model;
  const [edit] = editWeights(model, [
    { tensor: "w", row: 2, column: 1, value: 0 },
    { tensor: "w", row: 0, column: 0, value: -3 },
  ]);
  const e = applied(edit, values, 3, 4, 1);
  assert.deepEqual(
    [...e],
    [...values].map((v, i) => (i === 9 ? 0 : i === 0 ? -3 : v)),
  );
  const s = applied(scaleWeights("w", [9, 2], 1.7), values, 3, 4, 2);
  assert.deepEqual(
    [...s],
    [...values].map((v, i) => (i === 9 || i === 2 ? Math.fround(v * Math.fround(1.7)) : v)),
  );
  assert.throws(() => editWeights(model, [{ tensor: "w", row: 3, column: 0, value: 0 }]), /outside its shape/);
});

test(
  "zeroing the largest 0.1% |w| of every linear weight by override gives the logits of that checkpoint written to disk",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "planted-llama-bf16";
    const ref = readReference(name);
    const source = Checkpoint.open(fixturePath(name));
    const linear = source.names().filter((n) => /layers\.\d+\..*_proj\.weight$/.test(n));
    // The changed checkpoint, computed here by sorting and written as float32 (every other value exact).
    const tensors = source.names().map((n) => {
      const data = source.read(n);
      if (linear.includes(n)) for (const i of largestBySort(data, 0.001)) data[i] = 0;
      return { name: n, dtype: "F32" as const, shape: source.info(n).shape, data };
    });
    const folder = join(root, "pruned");
    writeCheckpoint(folder, source.config as Record<string, unknown>, tensors);
    source.close();

    const model = Model.open(fixturePath(name));
    const overrides = linear.map((n) => zeroLargest(n, 0.001));
    const out = await forward(model, ref.input_ids, { variants: [{}, { overrides }] });
    const size = ref.input_ids.length * model.spec.vocab;
    const [base, pruned] = [out.logits!.subarray(0, size), out.logits!.subarray(size)];
    model.close();
    const onDisk = Model.open(folder);
    const expected = (await forward(onDisk, ref.input_ids)).logits!;
    onDisk.close();
    let worst = 0,
      moved = 0;
    for (let i = 0; i < expected.length; i++) {
      worst = Math.max(worst, Math.abs(pruned[i] - expected[i]) / (1e-5 + 1e-5 * Math.abs(expected[i])));
      moved = Math.max(moved, Math.abs(base[i] - expected[i]));
    }
    assert.ok(worst <= 1, `pruned logits vs the written checkpoint: ${worst.toFixed(2)}× of 1e-5 + 1e-5·|b|`);
    assert.ok(moved > 1e-2, `pruning changes the logits (${moved})`);
  },
);
