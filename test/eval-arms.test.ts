// The arms around an intervention: sweeps (all scales in one pass), each weight alone and leave-one-out,
// the nulls (draws from the |w| rank neighbourhood, checked against a sort; seeded), where a real effect falls
// among them, and the next-token shift's arithmetic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { locateWeight } from "../src/eval/interventions.js";
import { nullNeighbourhood, planArms, type ScannedWeight } from "../src/eval/arms.js";
import { rankNeighbours, rng, sampleDistinct } from "../src/eval/random.js";
import { nullStats } from "../src/eval/null-stats.js";
import { probabilityShift } from "../src/eval/shift.js";
import { evaluate } from "../src/eval/eval.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { UserError } from "../src/errors.js";

const name = "planted-llama-bf16";

function scannedOf(model: Model, ref: any): ScannedWeight[] {
  return ref.expectedSuperWeights.map((w: any) => ({
    ...locateWeight(model, { layer: w.layer, row: w.row, column: w.column }),
    token: w.token,
    class: w.class,
  }));
}

/** Ranks by |w| descending, ties in stored order. */
function ranksBySort(values: Float32Array): Int32Array {
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  const rank = new Int32Array(values.length);
  order.forEach((i, r) => (rank[i] = r));
  return rank;
}

test(
  "rankNeighbours: the target's |w| rank and the nearest ranks around it, as a full sort says",
  { skip: skipWithoutFixtures },
  () => {
    const model = Model.open(fixturePath(name));
    const tensor = "model.layers.1.mlp.down_proj.weight";
    const values = model.read(tensor),
      rank = ranksBySort(values);
    for (const target of [11 * 248 + 37, 5, 12345, values.length - 1]) {
      const exclude = new Set([70 * 248 + 201, 3]);
      const { rank: r, neighbours } = rankNeighbours(model, tensor, target, 20, exclude);
      assert.equal(r, rank[target], `target ${target}`);
      // The 20 nearest ranks (excluded ones skipped), nearer first, above before below on a tie.
      const want = [...values.keys()]
        .filter((i) => i !== target && !exclude.has(i))
        .sort((a, b) => Math.abs(rank[a] - r) - Math.abs(rank[b] - r) || rank[a] - rank[b])
        .slice(0, 20);
      assert.deepEqual(
        neighbours.map((n) => n.index),
        want,
      );
      neighbours.forEach((n) => assert.equal(n.rank, rank[n.index]));
    }
    assert.equal(rank[11 * 248 + 37], 0, "the planted super weight is its tensor's largest");
    model.close();
  },
);

test("sampleDistinct draws k distinct values of [0, n), seeded", () => {
  const a = sampleDistinct(rng(7), 100, 30),
    b = sampleDistinct(rng(7), 100, 30),
    c = sampleDistinct(rng(8), 100, 30);
  assert.equal(new Set(a).size, 30);
  assert.ok(a.every((x) => x >= 0 && x < 100));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual([...sampleDistinct(rng(1), 5, 5)], [0, 1, 2, 3, 4]);
  assert.throws(() => sampleDistinct(rng(1), 3, 4), RangeError);
});

test("nullStats: rank by |effect| among the draws and the z-score", () => {
  const s = nullStats(0.5, [0.1, -0.2, 0.3, 0.6]);
  assert.equal(s.rank, 2);
  assert.equal(s.of, 5);
  assert.ok(Math.abs(s.nullMean - 0.2) < 1e-15);
  const sd = Math.sqrt(((0.1 - 0.2) ** 2 + (-0.2 - 0.2) ** 2 + (0.3 - 0.2) ** 2 + (0.6 - 0.2) ** 2) / 3);
  assert.ok(Math.abs(s.nullSd! - sd) < 1e-15);
  assert.ok(Math.abs(s.z! - (0.5 - 0.2) / sd) < 1e-12);
  assert.equal(nullStats(1, [0, 0]).z, null, "draws that do not vary give no z");
  assert.equal(nullStats(-3, [1, 2]).rank, 1, "a large negative effect ranks first");
});

test(
  "nulls: draws from the tensor's |w| rank neighbourhood, the same change, seeded; joint and leave-one-out arms",
  { skip: skipWithoutFixtures },
  () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    const scanned = scannedOf(model, ref);
    const plan = { zeroSuper: true, scanned, nulls: 5, seed: 3, leaveOneOut: true };
    const { arms, nulls } = planArms(model, plan);
    assert.deepEqual(
      arms.filter((a) => a.role !== "null").map((a) => [a.role, a.label]),
      [
        ["baseline", "baseline"],
        ["intervention", "zero [1, 11, 37] [2, 70, 201]"],
        ["single", "only zero [1, 11, 37]"],
        ["single", "only zero [2, 70, 201]"],
        ["leave-one-out", "all but [1, 11, 37]"],
        ["leave-one-out", "all but [2, 70, 201]"],
      ],
    );
    // Leave-one-out of two weights is each other alone: the same model, one variant.
    assert.equal(arms[4].key, arms[3].key);
    assert.equal(nulls.length, 3, "one per weight, one joint");
    for (const [i, w] of scanned.entries()) {
      const g = nulls[i];
      assert.equal(g.real, 2 + i, "compared with the weight alone");
      const values = model.read(w.tensor),
        rank = ranksBySort(values);
      const cols = model.shape(w.tensor)[1];
      const flat = w.index[0] * cols + w.index[1];
      assert.equal(g.neighbourhood!.rank, rank[flat]);
      assert.equal(g.arms.length, 5);
      // Every draw: the same tensor, zeroed, within the neighbourhood of nearest ranks, never the real weight.
      const window = [...values.keys()]
        .filter((j) => j !== flat)
        .sort((a, b) => Math.abs(rank[a] - rank[flat]) - Math.abs(rank[b] - rank[flat]) || rank[a] - rank[b])
        .slice(0, nullNeighbourhood(5));
      for (const id of g.arms) {
        const [change] = arms[id].intervention.weights;
        assert.equal(arms[id].intervention.weights.length, 1);
        assert.equal(change.tensor, w.tensor);
        assert.equal(change.newValue, 0);
        assert.ok(
          window.includes(change.index[0] * cols + change.index[1]),
          `draw ${change.index} in the neighbourhood`,
        );
        assert.equal(change.value, values[change.index[0] * cols + change.index[1]]);
      }
      assert.equal(new Set(g.arms.map((id) => arms[id].key)).size, 5, "distinct draws");
    }
    const joint = nulls[2];
    assert.equal(arms[joint.real].label, "zero [1, 11, 37] [2, 70, 201]");
    joint.arms.forEach((id, j) =>
      assert.deepEqual(
        arms[id].intervention.weights.map((w) => w.index),
        nulls.slice(0, 2).map((g) => arms[g.arms[j]].intervention.weights[0].index),
      ),
    );
    const again = planArms(model, plan);
    assert.deepEqual(
      again.arms.map((a) => a.key),
      arms.map((a) => a.key),
      "seeded",
    );
    assert.notDeepEqual(
      planArms(model, { ...plan, seed: 4 }).arms.map((a) => a.key),
      arms.map((a) => a.key),
    );
    model.close();
  },
);

test(
  "--sweep-scale: one arm per factor scaling every super weight, one pass per input; ×1 is the baseline's model",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    const factors = [0, 0.2, 0.5, 1, 1.5, 2, 3];
    const r = await evaluate(model, {
      plan: { sweepScale: factors },
      prompts: [{ label: "ids", ids: ref.input_ids }],
      perplexity: {
        corpus: { kind: "ids", name: "ids", ids: ref.input_ids, windowTokens: 11, source: { file: "x" } },
        ctx: 6,
        stride: 3,
      },
    });
    assert.deepEqual(
      r.arms.map((a) => a.factor ?? null),
      [null, ...factors],
    );
    assert.equal(r.variants.batches, 1);
    assert.equal(r.arms[4].model, 0, "×1 computes the baseline");
    assert.equal(
      r.passes,
      1 + r.perplexity!.windows,
      "one pass for the prompt, one per window: every factor rides along",
    );
    for (const [i, f] of factors.entries())
      assert.deepEqual(
        r.arms[i + 1].applied.weights.map((w) => [w.layer, w.row, w.column, w.new]),
        ref.expectedSuperWeights
          .filter((w: any) => w.class === "super")
          .map((w: any) => [w.layer, w.row, w.column, Math.fround(Math.fround(w.value) * Math.fround(f))]),
      );
    // ×0 is the zeroed model (withSuperWeightsZeroed); ×1 the baseline.
    const nll = r.prompts!.items[0].arms;
    nll[1].nll.forEach((v, t) => assert.ok(Math.abs(v - ref.withSuperWeightsZeroed.nll[t]) <= 1e-4, `×0 nll[${t}]`));
    assert.deepEqual(nll[4].nll, nll[0].nll);
    model.close();
  },
);

test("the next-token shift: largest rises and falls, stopword mass, KL", () => {
  const before = Float64Array.from([0.5, 0.2, 0.2, 0.1]),
    after = Float64Array.from([0.2, 0.4, 0.2, 0.2]);
  const s = probabilityShift(before, after, 2, Uint8Array.from([1, 0, 1, 0]));
  assert.deepEqual(s.rises, [
    { id: 1, before: 0.2, after: 0.4 },
    { id: 3, before: 0.1, after: 0.2 },
  ]);
  assert.deepEqual(s.falls, [{ id: 0, before: 0.5, after: 0.2 }]);
  assert.deepEqual(s.stopwordMass, { before: 0.7, after: 0.4 });
  const kl = 0.5 * Math.log(0.5 / 0.2) + 0.2 * Math.log(0.2 / 0.4) + 0 + 0.1 * Math.log(0.1 / 0.2);
  assert.ok(Math.abs(s.kl - kl) < 1e-15);
  assert.equal(probabilityShift(before, after, 2).stopwordMass, null);
});

test("intervention errors name what is missing", { skip: skipWithoutFixtures }, () => {
  const ref = readReference(name);
  const model = Model.open(fixturePath(name));
  const scanned = scannedOf(model, ref);
  assert.throws(() => planArms(model, { zeroSuper: true }), /--zero-super needs the scan's super weights/);
  assert.throws(() => planArms(model, { zeroSuper: true, scanned: [] }), /classified no weight as super/);
  assert.throws(
    () => planArms(model, { zero: [{ layer: 0, row: 1, column: 2 }], restoreSuperActivation: true, scanned }),
    /did not find \[0, 1, 2\]/,
  );
  assert.throws(() => planArms(model, { zeroSuper: true, scaleSuper: 2, scanned }), /not both/);
  assert.throws(() => planArms(model, { sweepScale: [1] }), /--sweep-scale needs the scan's super weights/);
  model.close();
});

test(
  "layers before the first one a batch changes run once for all its variants, with the same numbers",
  { skip: skipWithoutFixtures },
  async () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    const ids: number[] = ref.input_ids;
    // [2, 70, 201] sits in layer 2: layers 0 and 1 are shared. The prompt pass (hooks on every variant) runs them
    // per variant; the perplexity window (no hooks) shares them: both give the same NLL.
    const { arms } = planArms(model, {
      zero: [{ layer: 2, row: 70, column: 201 }],
      scale: [{ weight: { layer: 3, row: 1, column: 2 }, factor: 3 }],
    });
    const { ArmRunner } = await import("../src/eval/runner.js");
    assert.equal(new ArmRunner(model, arms).batches[0].from, 2);
    const r = await evaluate(model, {
      plan: {
        zero: [{ layer: 2, row: 70, column: 201 }],
        scale: [{ weight: { layer: 3, row: 1, column: 2 }, factor: 3 }],
      },
      prompts: [{ label: "ids", ids }],
      perplexity: {
        corpus: { kind: "ids", name: "ids", ids, windowTokens: ids.length, source: { file: "x" } },
        ctx: ids.length,
      },
    });
    for (const a of [0, 1]) {
      const prompt = r.prompts!.items[0].arms[a].meanNll!,
        window = r.perplexity!.arms[a].meanNll;
      assert.ok(Math.abs(prompt - window) <= 1e-5, `arm ${a}: ${prompt} vs ${window}`);
    }
    assert.ok(r.perplexity!.arms[1].deltaMeanNll !== 0);
    model.close();
  },
);

test(
  "--scale-super scales every super weight by the factor; each refusal of a plan says what is wrong",
  {
    skip: skipWithoutFixtures,
  },
  () => {
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    try {
      const scanned = scannedOf(model, ref);
      const { arms } = planArms(model, { scaleSuper: 0.5, scanned });
      assert.deepEqual(
        arms.map((a) => [a.role, a.label]),
        [
          ["baseline", "baseline"],
          ["intervention", "×0.5 [1, 11, 37] [2, 70, 201]"],
        ],
      );
      assert.deepEqual(
        arms[1].intervention.weights.map((w: any) => [w.layer, w.row, w.column, w.newValue]),
        // Each stored value halved, in float32 (bfloat16 values halve exactly).
        ref.expectedSuperWeights.map((w: any) => [w.layer, w.row, w.column, Math.fround(w.value * 0.5)]),
      );
      const refused = (plan: object, message: string | RegExp) =>
        assert.throws(
          () => planArms(model, plan),
          (e: unknown) => {
            assert.ok(e instanceof UserError, `${e}`);
            if (typeof message === "string") assert.equal(e.message, message);
            else assert.match(e.message, message);
            return true;
          },
        );
      refused({ scaleSuper: 2 }, "--scale-super needs the scan's super weights");
      refused(
        { restoreSuperActivation: true, scanned },
        "--restore-super-activation needs a super weight changed (--zero-super, or --zero / --scale of a weight the scan found)",
      );
      for (const nulls of [1.5, -1])
        refused({ zeroSuper: true, scanned, nulls }, `--null ${nulls}: expected a whole number of draws`);
      refused(
        { zeroSuper: true, scanned, sweepScale: [2, Infinity] },
        "--sweep-scale: Infinity is not a finite factor",
      );
      for (const fraction of [0, 1, -0.1, NaN])
        refused(
          { prune: { fraction, keepSuper: false } },
          `--prune-outliers ${fraction}: expected a fraction between 0 and 1 (e.g. 0.001 for 0.1%)`,
        );
    } finally {
      model.close();
    }
  },
);
