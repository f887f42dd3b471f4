// What an evaluation's plan says about itself: every arm's label and role for a plan that asks for everything at
// once (mixed operations, a kept-super prune, restore, leave-one-out, a sweep and nulls), each null's description
// and neighbourhood against a full sort of the tensor, the nulls of an expert's weight (the expert kept in every
// coordinate, through the report too) and of GPT-2's transposed Conv1D weights, each weight counted once, every
// refusal's message, and a prune's overrides per tensor.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { interventionVariants, locateWeight } from "../src/eval/interventions.js";
import { nullNeighbourhood, planArms, type ScannedWeight } from "../src/eval/arms.js";
import { evaluate } from "../src/eval/eval.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { writeTiny } from "./tiny.js";

function scannedOf(model: Model, ref: any): ScannedWeight[] {
  return ref.expectedSuperWeights.map((w: any) => ({
    ...locateWeight(model, {
      layer: w.layer,
      ...(w.expert !== undefined ? { expert: w.expert } : {}),
      row: w.row,
      column: w.column,
    }),
    token: w.token,
    class: w.class,
  }));
}

/** Every element's rank by |w| descending, ties in stored order; and the `count` nearest ranks to `flat`. */
function neighbourhoodBySort(values: Float32Array, flat: number, count: number) {
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  const rank = new Int32Array(values.length);
  order.forEach((i, r) => (rank[i] = r));
  const near = [...values.keys()]
    .filter((j) => j !== flat)
    .sort((a, b) => Math.abs(rank[a] - rank[flat]) - Math.abs(rank[b] - rank[flat]) || rank[a] - rank[b])
    .slice(0, count);
  return { rank, near };
}

test(
  "planArms: every arm's label and role when a plan asks for everything, and each null's description",
  { skip: skipWithoutFixtures },
  () => {
    const name = "planted-llama-bf16";
    const model = Model.open(fixturePath(name));
    try {
      const scanned = scannedOf(model, readReference(name));
      const { arms, nulls } = planArms(model, {
        zero: [{ layer: 1, row: 11, column: 37 }],
        scale: [{ weight: { layer: 2, row: 70, column: 201 }, factor: 2 }],
        scanned,
        prune: { fraction: 0.01, keepSuper: true },
        restoreSuperActivation: true,
        leaveOneOut: true,
        sweepScale: [0.5],
        nulls: 2,
        seed: 1,
      });
      const both = "zero [1, 11, 37], ×2 [2, 70, 201]";
      const prune = "prune 1% largest |w| (super weights kept)";
      const restore = " + restore super activation";
      assert.deepEqual(
        arms.map((a) => [a.role, a.label]),
        [
          ["baseline", "baseline"],
          ["intervention", `${both} + ${prune}${restore}`],
          ["single", `only zero [1, 11, 37]${restore}`],
          ["single", `only ×2 [2, 70, 201]${restore}`],
          ["leave-one-out", `all but [1, 11, 37]${restore}`],
          ["leave-one-out", `all but [2, 70, 201]${restore}`],
          ["sweep", "scale ×0.5"],
          // The nulls compare the weight change alone: new arms without the restore.
          ["single", "only zero [1, 11, 37]"],
          ...arms.slice(8, 10).map((a) => ["null", a.label]),
          ["single", "only ×2 [2, 70, 201]"],
          ...arms.slice(11, 13).map((a) => ["null", a.label]),
          ["joint", both],
          ["null", "null 1: joint"],
          ["null", "null 2: joint"],
          ["prune", prune],
          ["null", "null 1: random 1%"],
          ["null", "null 2: random 1%"],
        ],
      );
      assert.deepEqual(
        arms.map((a) => a.factor),
        arms.map((a) => (a.role === "sweep" ? 0.5 : undefined)),
      );
      assert.equal("factor" in arms[1], false, "only a sweep's arms carry a factor");
      // Each single with restore puts back its own weight's activation; each leave-one-out the other's.
      const site = (w: ScannedWeight) => ({ layer: w.layer, tensor: w.tensor, token: w.token, channel: w.row });
      assert.deepEqual(arms[1].intervention.restore, scanned.map(site));
      assert.deepEqual(arms[2].intervention.restore, [site(scanned[0])]);
      assert.deepEqual(arms[3].intervention.restore, [site(scanned[1])]);
      assert.deepEqual(arms[4].intervention.restore, [site(scanned[1])]);
      assert.deepEqual(arms[5].intervention.restore, [site(scanned[0])]);
      assert.deepEqual(arms[1].intervention.prune, { fraction: 0.01, spare: scanned });
      assert.deepEqual(
        arms[6].intervention.weights.map((w) => [w.index, w.newValue]),
        scanned.map((w) => [w.index, Math.fround(w.value * 0.5)]),
        "the sweep scales the named weights",
      );
      assert.deepEqual(arms[17].intervention.prune, {
        fraction: 0.01,
        spare: scanned,
        random: arms[17].intervention.prune!.random,
      });

      assert.deepEqual(
        nulls.map((g) => [g.real, g.arms, g.what]),
        [
          [7, [8, 9], `zero [1, 11, 37] vs the same on 2 random weights of ${scanned[0].tensor} near it in |w| rank`],
          [10, [11, 12], `×2 [2, 70, 201] vs the same on 2 random weights of ${scanned[1].tensor} near it in |w| rank`],
          [13, [14, 15], `${both} vs the same on one random |w|-rank neighbour of each, 2 times`],
          [16, [17, 18], `${prune} vs zeroing random sets of the same size in every linear weight, 2 times`],
        ],
      );
      for (const [i, w] of scanned.entries()) {
        const g = nulls[i];
        const values = model.read(w.tensor),
          [rows, cols] = model.shape(w.tensor);
        const flat = w.index[0] * cols + w.index[1];
        const { rank, near } = neighbourhoodBySort(values, flat, nullNeighbourhood(2));
        const drawn = g.arms.map((id) => arms[id].intervention.weights[0]);
        assert.deepEqual(g.neighbourhood, {
          tensor: w.tensor,
          elements: rows * cols,
          rank: rank[flat],
          window: [Math.min(...near.map((j) => rank[j])), Math.max(...near.map((j) => rank[j]))],
          drawn: drawn.map((d) => ({
            coordinate: { layer: w.layer, row: d.index[0], column: d.index[1] },
            value: values[d.index[0] * cols + d.index[1]],
            rank: rank[d.index[0] * cols + d.index[1]],
          })),
        });
        const op = i === 0 ? "zero" : "×2";
        g.arms.forEach((id, j) =>
          assert.equal(arms[id].label, `null ${j + 1}: ${op} [${w.layer}, ${drawn[j].index.join(", ")}]`),
        );
        drawn.forEach((d) => assert.equal(d.newValue, i === 0 ? 0 : Math.fround(d.value * 2)));
        drawn.forEach((d) => assert.ok(near.includes(d.index[0] * cols + d.index[1]), `${d.index} is a neighbour`));
      }
    } finally {
      model.close();
    }
  },
);

test(
  "nulls of an expert's weight draw from that expert's tensor and name the expert in every coordinate",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("newer", "planted-mixtral-bf16");
    const model = Model.open(dir);
    try {
      const w = readReference("newer/planted-mixtral-bf16").expectedSuperWeights[0];
      assert.deepEqual([w.layer, w.expert, w.row, w.column], [1, 2, 9, 40]);
      const zero = [{ layer: 1, expert: 2, row: 9, column: 40 }];
      const { arms, nulls } = planArms(model, { zero, nulls: 3, seed: 5 });
      const [g] = nulls;
      const tensor = "model.layers.1.block_sparse_moe.experts.2.w2.weight";
      assert.equal(g.neighbourhood!.tensor, tensor);
      assert.equal(g.what, `zero [1, 2, 9, 40] vs the same on 3 random weights of ${tensor} near it in |w| rank`);
      const values = model.read(tensor),
        cols = model.shape(tensor)[1];
      g.arms.forEach((id, j) => {
        const [d] = arms[id].intervention.weights;
        assert.equal(d.tensor, tensor);
        assert.equal(d.expert, 2);
        assert.equal(arms[id].label, `null ${j + 1}: zero [1, 2, ${d.index.join(", ")}]`);
        assert.deepEqual(g.neighbourhood!.drawn[j].coordinate, {
          layer: 1,
          expert: 2,
          row: d.index[0],
          column: d.index[1],
        });
        assert.equal(d.value, values[d.index[0] * cols + d.index[1]]);
      });

      // The same row and column in another expert is another weight.
      const two = planArms(model, { zero: [...zero, { ...zero[0], expert: 3 }] }).arms;
      assert.equal(two[1].label, "zero [1, 2, 9, 40] [1, 3, 9, 40]");

      // Found by the scan, the report keeps the expert in the scan's list, the applied weights and the traces;
      // the nulls' own weights are not traced.
      const ids = readReference("newer/planted-mixtral-bf16").input_ids as number[];
      const corpus = { kind: "ids" as const, name: "c", ids, windowTokens: ids.length, source: { file: "c" } };
      const r = await evaluate(model, {
        plan: { zeroSuper: true, nulls: 3, seed: 5 },
        prompts: [{ label: "p", ids }],
        perplexity: { corpus },
      });
      assert.deepEqual(
        r.scan!.found.filter((x) => x.class === "super").map((x) => [x.layer, x.expert, x.row, x.column]),
        [[1, 2, 9, 40]],
      );
      assert.deepEqual(
        r.arms.map((a) => a.applied.weights.map((x) => x.expert)),
        [[], [2], [2], [2], [2]],
      );
      for (const a of r.prompts!.items[0].arms)
        assert.deepEqual(
          a.traces.map((t) => [t.layer, t.channel, t.token]),
          [[1, 9, w.token]],
        );
      assert.deepEqual(
        r.nulls[0].stats.map((x) => x.metric),
        ["prompts: mean NLL", "c: mean NLL"],
      );
      // A one-token prompt gives the nulls no prompt metric.
      const short = await evaluate(model, { plan: { zero, nulls: 1 }, prompts: [{ label: "p", ids: [1] }] });
      assert.deepEqual(short.nulls[0].stats, []);
      assert.deepEqual(r.arms[1].applied.weights[0], {
        layer: 1,
        expert: 2,
        row: 9,
        column: 40,
        tensor,
        index: [9, 40],
        old: 2,
        new: 0,
      });
    } finally {
      model.close();
    }
  },
);

test(
  "nulls of a GPT-2 weight: stored [in, out], so each draw's coordinate is its stored index transposed",
  { skip: skipWithoutFixtures },
  () => {
    const model = Model.open(fixturePath("gpt2-f32"));
    try {
      const { arms, nulls } = planArms(model, { zero: [{ layer: 1, row: 7, column: 200 }], nulls: 4, seed: 2 });
      const { tensor } = arms[1].intervention.weights[0];
      assert.match(tensor, /h\.1\.mlp\.c_proj\.weight$/);
      const [inputs, outputs] = model.shape(tensor);
      assert.deepEqual([inputs, outputs], [4 * 60, 60], "Conv1D: [intermediate, hidden]");
      assert.deepEqual(arms[1].intervention.weights[0].index, [200, 7]);
      const values = model.read(tensor);
      for (const [j, id] of nulls[0].arms.entries()) {
        const [d] = arms[id].intervention.weights;
        const { row, column } = nulls[0].neighbourhood!.drawn[j].coordinate;
        assert.deepEqual(d.index, [column, row], "stored [column, row]");
        assert.ok(row < outputs && column < inputs);
        assert.equal(d.value, values[d.index[0] * outputs + d.index[1]]);
      }
    } finally {
      model.close();
    }
  },
);

test(
  "planArms: each weight counted once, what tells two weights apart, and each refusal's message",
  { skip: skipWithoutFixtures },
  () => {
    const name = "planted-llama-bf16";
    const model = Model.open(fixturePath(name));
    try {
      const scanned = scannedOf(model, readReference(name));
      const labels = (plan: object) => planArms(model, plan).arms.map((a) => a.label);
      // The same weight twice with the same operation is one weight; a super weight named and zeroed as super too.
      assert.deepEqual(
        labels({
          zero: [
            { layer: 1, row: 11, column: 37 },
            { layer: 1, row: 11, column: 37 },
          ],
        }),
        ["baseline", "zero [1, 11, 37]"],
      );
      assert.deepEqual(labels({ zero: [{ layer: 1, row: 11, column: 37 }], zeroSuper: true, scanned }), [
        "baseline",
        "zero [1, 11, 37] [2, 70, 201]",
      ]);
      // Weights that differ in one of layer, row or column are different weights.
      const near = [
        { layer: 1, row: 11, column: 37 },
        { layer: 2, row: 11, column: 37 },
        { layer: 1, row: 12, column: 37 },
        { layer: 1, row: 11, column: 38 },
      ];
      assert.deepEqual(labels({ zero: near }), ["baseline", "zero [1, 11, 37] [2, 11, 37] [1, 12, 37] [1, 11, 38]"]);
      // Several weights with leave-one-out but no nulls still get each weight alone; with nulls but no
      // leave-one-out, each weight alone keeps the restore, beside the plain weight change the nulls compare.
      const both = { zeroSuper: true, scanned };
      assert.deepEqual(
        planArms(model, { ...both, leaveOneOut: true }).arms.map((a) => a.role),
        ["baseline", "intervention", "single", "single", "leave-one-out", "leave-one-out"],
      );
      const restored = planArms(model, { ...both, restoreSuperActivation: true, nulls: 1 }).arms;
      assert.deepEqual(
        restored.filter((a) => a.role === "single").map((a) => a.label),
        [
          "only zero [1, 11, 37] + restore super activation",
          "only zero [2, 70, 201] + restore super activation",
          "only zero [1, 11, 37]",
          "only zero [2, 70, 201]",
        ],
      );
      // A prune alone, without the super weights kept.
      const { arms } = planArms(model, { prune: { fraction: 0.01, keepSuper: false } });
      assert.deepEqual(
        arms.map((a) => [a.label, a.intervention.prune]),
        [
          ["baseline", undefined],
          ["prune 1% largest |w|", { fraction: 0.01, spare: [] }],
        ],
      );

      const refused = (plan: object, message: string) =>
        assert.throws(() => planArms(model, plan), { name: "UserError", message });
      refused(
        {
          zero: [{ layer: 1, row: 11, column: 37 }],
          scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 2 }],
        },
        "--scale: weight [1, 11, 37] is already set by zero",
      );
      refused(
        { scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 2 }], zeroSuper: true, scanned },
        "--zero-super: weight [1, 11, 37] is already set by ×2",
      );
      refused(
        { zero: [{ layer: 2, row: 70, column: 201 }], scaleSuper: 3, scanned },
        "--scale-super: weight [2, 70, 201] is already set by zero",
      );
      refused({ prune: { fraction: 0.01, keepSuper: true } }, "--keep-super needs the scan's super weights");
      const outlier = scanned.map((w) => ({ ...w, class: "outlier" as const }));
      refused(
        { zeroSuper: true, scanned: outlier },
        "--zero-super: the scan classified no weight as super on the prompt (candidates: [1, 11, 37] [2, 70, 201])",
      );
      refused(
        { prune: { fraction: 0.01, keepSuper: true }, scanned: [] },
        "--keep-super: the scan classified no weight as super on the prompt (candidates: none)",
      );
      refused(
        { zero: [{ layer: 1, row: 11, column: 38 }], restoreSuperActivation: true, scanned },
        "--restore-super-activation: the scan did not find [1, 11, 38] on the prompt, so its super activation's token is unknown",
      );
    } finally {
      model.close();
    }
  },
);

test("nulls: a tensor's other targets are left out of each one's neighbourhood", { skip: skipWithoutFixtures }, () => {
  const model = Model.open(fixturePath("gpt2-f32"));
  try {
    const tensor = "transformer.h.1.mlp.c_proj.weight";
    const values = model.read(tensor),
      cols = model.shape(tensor)[1];
    // The target, and the weight just below it in |w| rank (stored [in, out]: coordinates are transposed).
    const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
    const [a, b] = [order[100], order[101]];
    const coordinate = (flat: number) => ({ layer: 1, row: flat % cols, column: Math.floor(flat / cols) });
    const { nulls } = planArms(model, { zero: [coordinate(a), coordinate(b)], nulls: 2 });
    const rank = new Int32Array(values.length);
    order.forEach((i, r) => (rank[i] = r));
    for (const [g, self, other] of [
      [nulls[0], a, b],
      [nulls[1], b, a],
    ] as const) {
      const near = [...values.keys()]
        .filter((j) => j !== self && j !== other)
        .sort((x, y) => Math.abs(rank[x] - rank[self]) - Math.abs(rank[y] - rank[self]) || rank[x] - rank[y])
        .slice(0, nullNeighbourhood(2));
      assert.deepEqual(g.neighbourhood!.window, [
        Math.min(...near.map((j) => rank[j])),
        Math.max(...near.map((j) => rank[j])),
      ]);
    }
  } finally {
    model.close();
  }
});

test("a prune's overrides spare each kept weight in its own tensor only", { skip: skipWithoutFixtures }, () => {
  const name = "planted-llama-bf16";
  const model = Model.open(fixturePath(name));
  try {
    const [kept] = scannedOf(model, readReference(name));
    const cols = model.shape(kept.tensor)[1];
    const flat = kept.index[0] * cols + kept.index[1];
    for (const random of [undefined, { seed: 9 }]) {
      const [, variant] = interventionVariants(
        model,
        [{ weights: [], prune: { fraction: 0.01, spare: [kept], ...(random ? { random } : {}) } }],
        { offset: 0 },
      );
      const keys = new Map(variant.overrides!.map((o) => [o.tensor, o.key]));
      const kind = random ? "zero-random:9" : "zero-largest";
      assert.equal(keys.get(kept.tensor), `${kind}:0.01:${flat}`);
      assert.equal(keys.get("model.layers.2.mlp.down_proj.weight"), `${kind}:0.01:`);
      assert.equal(keys.get("model.layers.1.mlp.up_proj.weight"), `${kind}:0.01:`);
    }
  } finally {
    model.close();
  }
});

test("nulls: a tensor too small for the draws is refused, naming how many it has", () => {
  const dir = writeTiny(mkdtempSync(join(tmpdir(), "sw-plan-")));
  const model = Model.open(dir);
  try {
    // The tiny Llama's down_proj is [8, 16]: 127 weights besides the one changed.
    const zero = [{ layer: 1, row: 2, column: 3 }];
    assert.equal(planArms(model, { zero, nulls: 127 }).nulls[0].arms.length, 127);
    assert.throws(() => planArms(model, { zero, nulls: 128 }), {
      message: "--null 128: model.layers.1.mlp.down_proj.weight has only 127 other weights to draw from",
    });
  } finally {
    model.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
