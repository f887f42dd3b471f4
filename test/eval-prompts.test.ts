// measurePrompts against the reference fixtures, number by number: each prompt's NLL, the per-layer maxima of the
// down projections' input and output, the residual traced at a channel (at a given token, or where a weight's
// input column peaks), the logits when kept, and the next-token distribution averaged over prompts — for the
// baseline and for a model with the super weights zeroed, in one batch. The prompts are the fixture's ids and
// prefixes of them: a causal model's values at the first k positions are the reference's at those positions.
// Also the runner's refusal of arm lists that do not start with the baseline.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { planArms } from "../src/eval/arms.js";
import { ArmRunner } from "../src/eval/runner.js";
import { measurePrompts, type TraceSite } from "../src/eval/prompts.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";

const opts = { skip: skipWithoutFixtures };

interface Spike {
  max: number;
  value: number;
  token: number;
  channel: number;
}

/** The first largest |x| in [token][channel] order over rows[0..k). */
function firstMax(rows: number[][], k = rows.length): Spike {
  let best: Spike = { max: -1, value: 0, token: 0, channel: 0 };
  for (let t = 0; t < k; t++)
    for (let c = 0; c < rows[t].length; c++)
      if (Math.abs(rows[t][c]) > best.max)
        best = { max: Math.abs(rows[t][c]), value: rows[t][c], token: t, channel: c };
  return best;
}

function sameSpike(got: Spike, want: Spike, what: string): void {
  assert.deepEqual([got.token, got.channel], [want.token, want.channel], `${what}: token, channel`);
  assert.ok(toleranceUsed([got.max, got.value], [want.max, want.value]) <= 1, `${what}: ${got.value} vs ${want.value}`);
}

/** softmax(logits) in float64. */
function softmax(logits: number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** The token with the largest |x[t][column]| over t < k, the first of equals. */
function peakToken(rows: number[][], column: number, k = rows.length): number {
  let at = 0;
  for (let t = 1; t < k; t++) if (Math.abs(rows[t][column]) > Math.abs(rows[at][column])) at = t;
  return at;
}

for (const keepLogits of [false, true])
  test(
    `planted-llama-bf16, logits ${keepLogits ? "kept" : "not kept"}: every prompt's NLL, spikes, traces and mean next-token distribution, baseline and super weights zeroed`,
    opts,
    async () => {
      const name = "planted-llama-bf16";
      const ref = readReference(name);
      const ids: number[] = ref.input_ids;
      const T = ids.length;
      const zeroedRef = ref.withSuperWeightsZeroed;
      const model = Model.open(fixturePath(name));
      try {
        const { arms } = planArms(model, {
          zero: zeroedRef.zeroed.map(([layer, row, column]: number[]) => ({ layer, row, column })),
        });
        const runner = new ArmRunner(model, arms);
        assert.equal(runner.models.length, 2);
        const sa = ref.superActivations[0];
        // A column of layer 0's down_proj whose |input| peaks after token 0: where the peak is looked up matters.
        const inputs0: number[][] = ref.down_proj_input[0];
        const column = inputs0[0].findIndex((_, c) => peakToken(inputs0, c) > 2);
        assert.ok(column >= 0);
        const sites: TraceSite[] = [
          { layer: 1, channel: sa.channel, token: 0 },
          { layer: 0, channel: 5, tensor: "model.layers.0.mlp.down_proj.weight", column },
          { layer: 1, channel: 3, token: T }, // past every prompt: no value
        ];
        const k = 6;
        const prompts = [
          { label: "all", ids },
          { label: "prefix", ids: ids.slice(0, k) },
          { label: "one", ids: ids.slice(0, 1) },
        ];
        const run = await measurePrompts(model, prompts, sites, runner, { logits: keepLogits });
        assert.equal(run.scores.length, 3);

        // The baseline: every value is in the reference.
        prompts.forEach((p, i) => {
          const n = p.ids.length;
          const s = run.scores[i][0];
          assert.ok(toleranceUsed(s.nll, ref.nll.slice(0, n - 1), 1e-4, 0) <= 1, `${p.label} nll`);
          if (n === 1) assert.equal(s.meanNll, null);
          else {
            const want = ref.nll.slice(0, n - 1).reduce((a: number, b: number) => a + b, 0) / (n - 1);
            assert.ok(Math.abs(s.meanNll! - want) <= 1e-4, `${p.label} mean NLL ${s.meanNll} vs ${want}`);
          }
          assert.deepEqual(
            s.layers.map((l) => l.layer),
            [0, 1, 2, 3],
          );
          for (const l of s.layers) {
            sameSpike(l.downProjInput, firstMax(ref.down_proj_input[l.layer], n), `${p.label} layer ${l.layer} input`);
            sameSpike(
              l.downProjOutput,
              firstMax(ref.down_proj_output[l.layer], n),
              `${p.label} layer ${l.layer} output`,
            );
          }
          if (n === T)
            for (const l of s.layers) {
              sameSpike(
                l.downProjInput,
                ref.layers[l.layer].downProjInput,
                `layer ${l.layer} input (reference.layers)`,
              );
              sameSpike(l.downProjOutput, ref.layers[l.layer].downProjOutput, `layer ${l.layer} output`);
            }
          const [atToken, atPeak, past] = s.traces;
          assert.deepEqual([atToken.layer, atToken.channel, atToken.token], [1, sa.channel, 0]);
          assert.ok(toleranceUsed(atToken.byLayer, sa.residualByLayer) <= 1, `${p.label} super activation`);
          const peak = peakToken(inputs0, column, n);
          assert.deepEqual([atPeak.layer, atPeak.channel, atPeak.token], [0, 5, peak], `${p.label} peak token`);
          assert.ok(
            toleranceUsed(
              atPeak.byLayer,
              ref.residual.map((r: number[][]) => r[peak][5]),
            ) <= 1,
            `${p.label} residual at the peak`,
          );
          assert.equal(past.token, T);
          assert.deepEqual(past.byLayer, [NaN, NaN, NaN, NaN]);
          if (keepLogits) {
            assert.ok(s.logits);
            assert.ok(toleranceUsed(s.logits, ref.logits.slice(0, n).flat()) <= 1, `${p.label} logits`);
          } else assert.equal("logits" in s, false);
        });

        // Zeroed: the NLL, the maxima and the super activation with every super weight zeroed.
        const z = run.scores[0][1];
        assert.ok(toleranceUsed(z.nll, zeroedRef.nll, 1e-4, 0) <= 1, "zeroed nll");
        for (const l of z.layers) {
          sameSpike(l.downProjInput, zeroedRef.layers[l.layer].downProjInput, `zeroed layer ${l.layer} input`);
          sameSpike(l.downProjOutput, zeroedRef.layers[l.layer].downProjOutput, `zeroed layer ${l.layer} output`);
        }
        assert.ok(toleranceUsed(z.traces[0].byLayer, sa.residualByLayerWithSuperWeightsZeroed) <= 1, "zeroed trace");
        for (const [i, p] of prompts.entries())
          if (keepLogits)
            assert.ok(
              toleranceUsed(run.scores[i][1].logits!, zeroedRef.logits.slice(0, p.ids.length).flat()) <= 1,
              `${p.label} zeroed logits`,
            );

        // The next-token distribution after each prompt's last position, averaged over the three prompts.
        for (const [m, logits] of [ref.logits, zeroedRef.logits].entries()) {
          const want = new Array(model.spec.vocab).fill(0);
          for (const p of prompts) softmax(logits[p.ids.length - 1]).forEach((q, j) => (want[j] += q / prompts.length));
          assert.equal(run.meanNext[m].length, model.spec.vocab);
          assert.ok(toleranceUsed(run.meanNext[m], want, 1e-6, 1e-3) <= 1, `model ${m} mean next-token distribution`);
        }
      } finally {
        model.close();
      }
    },
  );

test(
  "mixtral-bf16: a layer's spikes are the largest over its experts, at sequence positions; a site in an expert peaks at its routed token",
  opts,
  async () => {
    const name = "newer/mixtral-bf16";
    const ref = readReference(name);
    const ids: number[] = ref.input_ids;
    const model = Model.open(fixturePath(name));
    try {
      const runner = new ArmRunner(model, planArms(model, {}).arms);
      // Expert 1 of layer 0, at a column whose largest |input| is on a routed token other than its first.
      const routed = ref.expert_down_proj_input["0"]["1"];
      const column = routed.values[0].findIndex((_: number, c: number) => peakToken(routed.values, c) > 0);
      assert.ok(column >= 0);
      const peak = routed.tokens[peakToken(routed.values, column)];
      assert.ok(peak > 0);
      const sites: TraceSite[] = [
        { layer: 0, channel: 2, tensor: "model.layers.0.block_sparse_moe.experts.1.w2.weight", column },
      ];
      const run = await measurePrompts(model, [{ label: "all", ids }], sites, runner);
      const s = run.scores[0][0];
      for (const l of s.layers) {
        const experts = ref.layers[l.layer].experts as { downProjInput: Spike; downProjOutput: Spike }[];
        const over = (side: "downProjInput" | "downProjOutput") =>
          experts.map((e) => e[side]).reduce((a, b) => (b.max > a.max ? b : a));
        sameSpike(l.downProjInput, over("downProjInput"), `layer ${l.layer} input`);
        sameSpike(l.downProjOutput, over("downProjOutput"), `layer ${l.layer} output`);
      }
      assert.equal(s.traces[0].token, peak);
      assert.ok(
        toleranceUsed(
          s.traces[0].byLayer,
          ref.residual.map((r: number[][]) => r[peak][2]),
        ) <= 1,
      );
    } finally {
      model.close();
    }
  },
);

test("the runner refuses arms that do not start with the baseline", opts, () => {
  const model = Model.open(fixturePath("llama-f32"));
  try {
    const { arms } = planArms(model, { zero: [{ layer: 0, row: 1, column: 2 }] });
    assert.equal(arms[0].role, "baseline");
    const refuse = (list: typeof arms) =>
      assert.throws(() => new ArmRunner(model, list), { message: "arm 0 must be the baseline" });
    refuse([]);
    refuse([arms[1], arms[0]]);
    // Called baseline, but it changes a weight.
    refuse([{ ...arms[1], role: "baseline" }, arms[0]]);
    // The baseline's model under another role is still refused as the first arm.
    refuse([{ ...arms[0], role: arms[1].role }, arms[1]]);
    assert.equal(new ArmRunner(model, arms).models.length, 2);
    assert.deepEqual(new ArmRunner(model, arms).clock, { offset: 0 });
  } finally {
    model.close();
  }
});
