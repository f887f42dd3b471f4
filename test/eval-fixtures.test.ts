// evaluate() against the fixtures' references: the NLL of every fixture (per token and windowed), the
// planted models with their super weights zeroed (--zero by coordinate and --zero-super through the scan:
// NLL, logits, per-layer maxima, the super activations' collapse through the residual stream), the restored
// super activation. (The real bytes-llama-6m's held-out perplexity is in eval-heldout.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { evaluate, type EvalReport } from "../src/eval/eval.js";
import { fixtureNames, fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

const meanOf = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const name of fixtureNames().length ? fixtureNames() : ["(fixtures)"]) {
  test(
    `${name}: the baseline's per-token NLL and one-window perplexity match the reference`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      try {
        const ids: number[] = ref.input_ids;
        const r = await evaluate(model, {
          plan: {},
          prompts: [{ label: "ids", ids }],
          perplexity: {
            corpus: { kind: "ids", name, ids, windowTokens: ids.length, source: { file: "reference.json" } },
            ctx: ids.length,
          },
        });
        assert.equal(r.arms.length, 1);
        assert.ok(toleranceUsed(r.prompts!.items[0].arms[0].nll, ref.nll, 1e-4, 0) <= 1, "per-token NLL");
        const p = r.perplexity!.arms[0];
        assert.equal(p.tokensScored, ids.length - 1);
        assert.ok(Math.abs(p.meanNll - meanOf(ref.nll)) <= 1e-4, `mean NLL ${p.meanNll} vs ${meanOf(ref.nll)}`);
        assert.ok(Math.abs(p.perplexity / ref.perplexity - 1) <= 1e-4, "perplexity");
      } finally {
        model.close();
      }
    },
  );
}

/** Arm 1 against withSuperWeightsZeroed; arm 0 against the full model. */
function checkZeroed(r: EvalReport, ref: any): void {
  const z = ref.withSuperWeightsZeroed,
    T = ref.input_ids.length;
  const [base, zeroed] = r.prompts!.items[0].arms;
  assert.ok(toleranceUsed(base.logits!, ref.logits.flat()) <= 1, "baseline logits");
  assert.ok(toleranceUsed(zeroed.logits!, z.logits.flat()) <= 1, "zeroed logits");
  assert.ok(toleranceUsed(zeroed.nll, z.nll, 1e-4, 0) <= 1, "zeroed NLL");
  assert.ok(Math.abs(Math.exp(zeroed.meanNll!) / z.perplexity - 1) <= 1e-4, "zeroed perplexity");
  assert.equal(zeroed.nll.length, T - 1);
  zeroed.layers.forEach((l, i) => {
    // (A sparse layer's reference lists its experts instead: those are the MoE tests' business.)
    if (!z.layers[i].downProjInput) return;
    for (const side of ["downProjInput", "downProjOutput"] as const) {
      const want = z.layers[i][side];
      assert.ok(toleranceUsed([l[side].max], [want.max]) <= 1, `layer ${i} ${side} max ${l[side].max} vs ${want.max}`);
      assert.equal(l[side].token, want.token, `layer ${i} ${side} token`);
      assert.equal(l[side].channel, want.channel, `layer ${i} ${side} channel`);
    }
  });
  // Each super activation collapses through the residual stream as the reference says; the baseline keeps it.
  for (const sa of ref.superActivations) {
    const at = base.traces.findIndex((t) => t.channel === sa.channel && t.token === sa.token);
    assert.ok(at >= 0, `a trace of channel ${sa.channel} at token ${sa.token}`);
    assert.ok(toleranceUsed(base.traces[at].byLayer, sa.residualByLayer) <= 1, `baseline residual[${sa.channel}]`);
    assert.ok(
      toleranceUsed(zeroed.traces[at].byLayer, sa.residualByLayerWithSuperWeightsZeroed) <= 1,
      `zeroed residual[${sa.channel}]`,
    );
  }
}

const planted = fixtureNames().filter((n) => readReference(n).withSuperWeightsZeroed);
const coordinate = (c: number[]) =>
  c.length === 4 ? { layer: c[0], expert: c[1], row: c[2], column: c[3] } : { layer: c[0], row: c[1], column: c[2] };

test(
  "the planted fixtures include a dense, a post-norm and a Mixture-of-Experts model",
  { skip: skipWithoutFixtures },
  () => {
    for (const n of [
      "planted-llama-bf16",
      "planted-llama-f16",
      "newer/planted-olmo2-f32",
      "newer/planted-mixtral-bf16",
    ])
      assert.ok(planted.includes(n), n);
  },
);

for (const name of planted.length ? planted : ["(planted fixtures)"]) {
  test(
    `${name}: --zero of the reference's coordinates and --zero-super give withSuperWeightsZeroed`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      const prompts = [{ label: "ids", ids: ref.input_ids as number[] }];
      const zero = ref.withSuperWeightsZeroed.zeroed.map(coordinate);
      const byCoordinate = await evaluate(model, { plan: { zero }, prompts, keepLogits: true });
      assert.equal(byCoordinate.scan, null, "no scan is needed for coordinates");
      checkZeroed(byCoordinate, ref);
      // Traces of a coordinate without a scan sit where the baseline's down_proj output peaks in its channel: token 0.
      const bySuper = await evaluate(model, { plan: { zeroSuper: true }, prompts, keepLogits: true });
      const where = (w: any) => [w.layer, ...(w.expert !== undefined ? [w.expert] : []), w.row, w.column];
      assert.deepEqual(
        bySuper.scan!.found.map((w) => [...where(w), w.class]),
        ref.expectedSuperWeights.map((w: any) => [...where(w), w.class]),
      );
      assert.deepEqual(
        bySuper.arms[1].applied.weights.map((w) => [...where(w), w.new]),
        ref.withSuperWeightsZeroed.zeroed.map((c: number[]) => [...c, 0]),
      );
      if (ref.withSuperWeightsZeroed.zeroedTensors)
        assert.deepEqual(
          bySuper.arms[1].applied.weights.map((w) => w.tensor),
          ref.withSuperWeightsZeroed.zeroedTensors.map((t: any) => t.tensor),
        );
      checkZeroed(bySuper, ref);
      model.close();
    },
  );

  test(
    `${name}: --restore-super-activation brings the residual at the super activation back to the original`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      const r = await evaluate(model, {
        plan: { zeroSuper: true, restoreSuperActivation: true },
        prompts: [{ label: "ids", ids: ref.input_ids }],
      });
      const restored = r.prompts!.items[0].arms[1];
      assert.match(r.arms[1].label, /restore super activation/);
      const supers = ref.superActivations.filter((s: any) =>
        ref.withSuperWeightsZeroed.zeroed.some((z: number[]) => z.join() === s.fromSuperWeight.join()),
      );
      assert.deepEqual(
        r.arms[1].applied.restore!.map((s) => [s.layer, s.token, s.channel]),
        supers.map((s: any) => [s.fromSuperWeight[0], s.token, s.channel]),
      );
      for (const sa of supers) {
        const t = restored.traces.find((x) => x.channel === sa.channel && x.token === sa.token)!;
        assert.ok(
          toleranceUsed(t.byLayer, sa.residualByLayer) <= 1,
          `residual[${sa.channel}] restored: ${t.byLayer} vs ${sa.residualByLayer}`,
        );
        // Far from the zeroed model's: the restore did something.
        assert.ok(
          toleranceUsed(t.byLayer, sa.residualByLayerWithSuperWeightsZeroed) > 100 ||
            sa.residualByLayer.every(
              (v: number, i: number) => Math.abs(v - sa.residualByLayerWithSuperWeightsZeroed[i]) < 1,
            ),
        );
      }
      // Token 0 sees only itself: with every super activation restored its whole residual is the original's,
      // so its NLL is too.
      assert.ok(Math.abs(restored.nll[0] - ref.nll[0]) <= 1e-4, `token 0's NLL ${restored.nll[0]} vs ${ref.nll[0]}`);
      model.close();
    },
  );
}
