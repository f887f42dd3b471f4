// What detect says while it works, from what the references say it finds: planted-llama-256's super weight
// [1, 40, 300] appears in pass 1 at layer 1, so pass 2 and its causal check start there (one more read of layer 1),
// the zeroed model and the check share one run, and pass 2 finds nothing; a model without spikes over the threshold
// has one pass, one run, no reread. Also coordinate(), the one spelling of a weight's place.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { coordinate, detect } from "../src/superweight/detect.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

async function progress(name: string, maxIterations = 10): Promise<string[]> {
  const ref = readReference(name);
  const model = Model.open(fixturePath(name));
  const lines: string[] = [];
  try {
    await detect(model, ref.input_ids, { threshold: 50, maxIterations, onProgress: (m) => lines.push(m) });
  } finally {
    model.close();
  }
  return lines;
}

test(
  "planted-llama-256: the find, the second pass beside its check, nothing new, and the sweep's cost",
  { skip: skipWithoutFixtures },
  async () => {
    const w = readReference("planted-llama-256").expectedSuperWeights[0];
    assert.deepEqual([w.layer, w.row, w.column], [1, 40, 300]);
    assert.deepEqual(await progress("planted-llama-256"), [
      "pass 1: [1, 40, 300]; pass 2 and 1 causal check start in layer 1",
      "pass 2: nothing new",
      "one sweep carried 2 forward runs; 1 layer read again where candidates appeared",
    ]);
    // With one pass allowed, the second is not run, so nothing is said of it.
    assert.deepEqual(await progress("planted-llama-256", 1), [
      "pass 1: [1, 40, 300]; pass 2 and 1 causal check start in layer 1",
      "one sweep carried 2 forward runs; 1 layer read again where candidates appeared",
    ]);
  },
);

/** The lines the reference's super weights imply: each found by its pass in its layer, then the last pass empty. */
function expectedLines(name: string): string[] {
  const found = [...readReference(name).expectedSuperWeights].sort((a: any, b: any) => a.iteration - b.iteration);
  const lines = found.map((w: any) => {
    const at = w.expert === undefined ? [w.layer, w.row, w.column] : [w.layer, w.expert, w.row, w.column];
    return `pass ${w.iteration}: [${at.join(", ")}]; pass ${w.iteration + 1} and 1 causal check start in layer ${w.layer}`;
  });
  // Runs: the full model, then one per pass after it (each pass's zeroed model is also the last check's).
  const runs = found.length + 1;
  return [
    ...lines,
    `pass ${found.length + 1}: nothing new`,
    `one sweep carried ${runs} forward runs; ${found.length} layer${found.length === 1 ? "" : "s"} read again where candidates appeared`,
  ];
}

for (const name of ["planted-llama-bf16", "newer/planted-mixtral-bf16", "newer/planted-olmo2-f32"])
  test(`${name}: one line per pass as its reference finds them`, { skip: skipWithoutFixtures }, async () => {
    assert.deepEqual(await progress(name), expectedLines(name));
  });

test(
  "planted-llama-f16: a later find by pass 1 after pass 2 has started, and a column two passes share",
  { skip: skipWithoutFixtures },
  async () => {
    // Its reference: [1, 3, 150] (pass 1), [1, 61, 150] (pass 2, same layer and column) and the canceller
    // [3, 3, 17], which pass 1 finds in layer 3 when pass 2 is already running: pass 2 runs layer 3 again.
    const at = (w: any) => `[${w.layer}, ${w.row}, ${w.column}]`;
    const [first, canceller, second] = readReference("planted-llama-f16").expectedSuperWeights;
    assert.deepEqual([first.iteration, canceller.iteration, second.iteration, canceller.class], [1, 1, 2, "outlier"]);
    assert.deepEqual(await progress("planted-llama-f16"), [
      `pass 1: ${at(first)}; pass 2 and 1 causal check start in layer ${first.layer}`,
      `pass 2: ${at(second)}; pass 3 and 1 causal check start in layer ${second.layer}`,
      `pass 1: ${at(canceller)}; pass 2 runs layer ${canceller.layer} again with it zeroed, beside 1 causal check`,
      "pass 3: nothing new",
      // Layer 1 is read again twice (a find by pass 1, then by pass 2), layer 3 once.
      "one sweep carried 5 forward runs; 3 layers read again where candidates appeared",
    ]);
  },
);

test(
  "a model with nothing over the threshold: one pass, one run, nothing read again",
  { skip: skipWithoutFixtures },
  async () => {
    assert.deepEqual(await progress("llama-f32"), [
      "pass 1: nothing new",
      "one sweep carried 1 forward run; 0 layers read again where candidates appeared",
    ]);
  },
);

test("coordinate: [layer, row, column], or [layer, expert, row, column] for an expert's weight (expert 0 too)", () => {
  assert.deepEqual(coordinate({ layer: 2, row: 3968, column: 7003 }), [2, 3968, 7003]);
  assert.deepEqual(coordinate({ layer: 1, expert: 0, row: 4, column: 5 }), [1, 0, 4, 5]);
  assert.deepEqual(coordinate({ layer: 1, expert: 3, row: 4, column: 5 }), [1, 3, 4, 5]);
  assert.deepEqual(coordinate({ layer: 1, expert: "shared", row: 4, column: 5 }), [1, "shared", 4, 5]);
});

test("planted-llama-256: what the sweep cost, and the candidate as found", { skip: skipWithoutFixtures }, async () => {
  const ref = readReference("planted-llama-256");
  const model = Model.open(fixturePath("planted-llama-256"));
  try {
    const d = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 10 });
    // The full model through 4 layers, the zeroed one through layers 1–3: 7 layer evaluations, 5 layer reads.
    assert.equal(d.forwardRuns, 2);
    assert.equal(d.layerPasses, 7 / 4);
    assert.equal(d.weightPasses, 5 / 4);
    assert.ok(d.seconds > 0 && d.seconds < 60, `${d.seconds} s`);
    // The full model's mean NLL of the prompt, and the zeroed model's, from the reference.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(Math.abs(d.meanNll! - mean(ref.nll)) < 1e-4, `${d.meanNll} vs ${mean(ref.nll)}`);
    assert.ok(Math.abs(d.withCandidatesZeroed.meanNll! - mean(ref.withSuperWeightsZeroed.nll)) < 1e-4);
    assert.equal(d.candidates.length, 1);
    const c = d.candidates[0];
    assert.equal("expert" in c, false, "a dense model's candidate has no expert field");
    assert.deepEqual([c.layer, c.row, c.column, c.iteration, c.token], [1, 40, 300, 1, 0]);
    assert.deepEqual(d.withCandidatesZeroed.zeroed, [[1, 40, 300]]);
    // The check's residual is recorded from the candidate's layer on; before it, nothing.
    assert.equal(c.ablation.residual[0], null);
    assert.equal(c.ablation.residual.length, 4);
    assert.ok(c.ablation.residual.slice(1).every((v) => typeof v === "number"));
  } finally {
    model.close();
  }
});

/** A spike as the reference writes it, against ours: value to the fixture's tolerance, place exactly. */
function sameSpike(got: any, want: any, what: string): void {
  assert.deepEqual([got.token, got.channel], [want.token, want.channel], `${what} place`);
  assert.ok(
    Math.abs(got.value - want.value) <= 1e-3 * Math.abs(want.value) + 1e-4,
    `${what}: ${got.value} vs ${want.value}`,
  );
}

for (const name of ["newer/planted-mixtral-bf16"])
  test(
    `${name}: each pass's sparse layers — every expert's spikes, the largest over them, the block's output`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      try {
        const d = await detect(model, ref.input_ids, { threshold: ref.threshold ?? 50, maxIterations: 10 });
        assert.equal(d.iterations.length, ref.detectionIterations.length);
        d.iterations.forEach((it, k) => {
          for (const want of ref.detectionIterations[k].layers) {
            const got = it.layers.find((l) => l.layer === want.layer)!;
            const where = `pass ${k + 1} layer ${want.layer}`;
            if (!want.experts) {
              assert.equal(got.experts, undefined, `${where}: dense`);
              sameSpike(got.downProjOutput, want.downProjOutput, `${where} output`);
              continue;
            }
            assert.deepEqual(
              got.experts!.map((e) => [e.expert, e.tokens]),
              want.experts.map((e: any) => [e.expert, e.tokens]),
              `${where} experts and their tokens`,
            );
            got.experts!.forEach((e, i) => {
              sameSpike(e.downProjInput, want.experts[i].downProjInput, `${where} expert ${e.expert} input`);
              sameSpike(e.downProjOutput, want.experts[i].downProjOutput, `${where} expert ${e.expert} output`);
            });
            for (const side of ["downProjInput", "downProjOutput"] as const) {
              const top = want.experts.reduce((a: any, b: any) => (b[side].max > a[side].max ? b : a))[side];
              sameSpike(got[side], top, `${where} largest ${side}`);
            }
            if (want.blockOutput) sameSpike(got.blockOutput, want.blockOutput, `${where} block output`);
          }
        });
      } finally {
        model.close();
      }
    },
  );

test("largest takes the first of equal magnitudes; medianAbs is the lower middle |x|, sampled beyond 65,536", async () => {
  const { largest, medianAbs } = await import("../src/superweight/detect.js");
  assert.deepEqual(largest(new Float32Array([1, -3, 3, 2, -3, 0]), 3), { max: 3, value: -3, token: 0, channel: 1 });
  assert.deepEqual(largest(new Float32Array([0, 0, 0, 0, 7, 0]), 2), { max: 7, value: 7, token: 2, channel: 0 });
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);
  for (let n = 1; n <= 120; n++) {
    const x = new Float32Array(n).map(() => Math.round((rand() - 0.5) * 20) / 2); // many ties
    const sorted = [...x].map(Math.abs).sort((a, b) => a - b);
    assert.equal(medianAbs(x), sorted[(n - 1) >> 1], `n = ${n}: ${[...x]}`);
  }
  // 3 · 65,536 values: every third is sampled.
  const big = new Float32Array(3 * 65536).map((_, i) => (i % 3 === 0 ? -(i % 1000) : 5000));
  const samples = Array.from({ length: 65536 }, (_, j) => Math.abs(big[3 * j])).sort((a, b) => a - b);
  assert.equal(medianAbs(big), samples[(65536 - 1) >> 1]);
});

test(
  "scan: a line per prompt, and the published coordinates of the model id checked against this model",
  { skip: skipWithoutFixtures },
  async () => {
    const { scan } = await import("../src/superweight/scan.js");
    const ref = readReference("planted-llama-256");
    const model = Model.open(fixturePath("planted-llama-256"));
    try {
      const lines: string[] = [];
      const inputs = [
        { label: "a", ids: ref.input_ids },
        { label: "b", ids: ref.input_ids.slice(0, 4) },
      ];
      const r = await scan(model, inputs, {
        threshold: 50,
        maxIterations: 10,
        modelId: "huggyllama/llama-7b",
        onProgress: (m) => lines.push(m),
      });
      assert.deepEqual(
        lines.filter((l) => l.startsWith("prompt")),
        ["prompt 1/2", "prompt 2/2"],
      );
      // Llama-7B's published [2, 3968, 7003]: not found, and outside a 4-layer, hidden-256 model.
      assert.deepEqual(r.published, {
        modelId: "huggyllama/llama-7b",
        source: r.published!.source,
        coordinates: [{ layer: 2, row: 3968, column: 7003, found: false, fits: false }],
      });
      assert.ok(r.published!.source.length > 0);
      assert.equal(
        (await scan(model, inputs.slice(0, 1), { threshold: 50, maxIterations: 10, modelId: "someone/else" }))
          .published,
        null,
      );
      assert.equal((await scan(model, inputs.slice(0, 1), { threshold: 50, maxIterations: 10 })).published, null);
      // Both prompts start with the trigger token, so both find [1, 40, 300].
      assert.deepEqual(
        r.superWeights.map((w) => [w.layer, w.row, w.column, w.prompts, w.allPrompts]),
        [[1, 40, 300, [0, 1], true]],
      );
    } finally {
      model.close();
    }
  },
);

test(
  "scan's report: labels, shape, coordinates note, per-prompt figures, sums over prompts, weights in pass order",
  { skip: skipWithoutFixtures },
  async () => {
    const { scan, DEFAULT_PROMPT } = await import("../src/superweight/scan.js");
    assert.equal(DEFAULT_PROMPT, "Apple Inc. is a worldwide tech company.");
    const ref = readReference("planted-llama-bf16");
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      const ids: number[] = ref.input_ids;
      const inputs = [
        { label: "whole", ids },
        { label: "again", ids },
      ];
      const one = await detect(model, ids, { threshold: 50, maxIterations: 10 });
      const before = performance.now();
      const r = await scan(model, inputs, {
        threshold: 50,
        maxIterations: 10,
        label: "my model",
        tokenText: (id) => `<${id}>`,
      });
      const wall = (performance.now() - before) / 1000;
      assert.equal(r.label, "my model");
      assert.equal(r.model, model.path);
      assert.equal(r.modelId, null);
      assert.equal(r.modelType, "llama");
      assert.deepEqual(r.shape, { layers: 4, hidden: 96, intermediate: 248 }); // its config.json
      assert.equal(r.coordinates, "row = output channel, column = input channel; weight[row, column]");
      assert.equal(r.storedTransposed, false);
      assert.deepEqual(
        r.prompts.map((p) => [p.label, p.ids.length, p.iterations]),
        [
          ["whole", ids.length, 3],
          ["again", ids.length, 3],
        ],
      );
      assert.ok(Math.abs(r.prompts[0].meanNll! - one.meanNll!) < 1e-12);
      assert.ok(Math.abs(r.prompts[1].meanNllCandidatesZeroed! - one.withCandidatesZeroed.meanNll!) < 1e-12);
      // The same prompt twice: every sum is twice one detection's.
      assert.equal(r.forwardPasses, 2 * one.forwardRuns);
      assert.equal(r.layerPasses, 2 * one.layerPasses);
      assert.equal(r.weightPasses, 2 * one.weightPasses);
      assert.equal(r.bytesRead, 2 * one.bytesRead);
      assert.ok(r.seconds > 0 && r.seconds <= wall, `${r.seconds} s of ${wall} s`);
      // Its two super weights, in the order the passes found them (iteration 1 then 2), each on both prompts.
      const expected = [...ref.expectedSuperWeights].sort((a: any, b: any) => a.iteration - b.iteration);
      assert.deepEqual(
        r.superWeights.map((w) => [
          w.layer,
          w.row,
          w.column,
          w.iteration,
          w.prompts,
          w.allPrompts,
          w.classes,
          w.perPrompt.length,
        ]),
        expected.map((w: any) => [w.layer, w.row, w.column, w.iteration, [0, 1], true, ["super", "super"], 2]),
      );
      assert.deepEqual(
        r.superWeights.map((w) => w.tokenText),
        expected.map((w: any) => `<${ids[w.token]}>`),
      );
      assert.equal("expert" in r.superWeights[0], false);
      assert.equal("routingWeight" in r.superWeights[0], false);
      const alone = await scan(model, inputs.slice(0, 1), { threshold: 50, maxIterations: 10 });
      assert.equal(alone.label, model.path);
      assert.equal("tokenText" in alone.superWeights[0], false);
      assert.equal(alone.superWeights[0].allPrompts, true);
    } finally {
      model.close();
    }
  },
);

test("scan's report for GPT-2: the Conv1D note and a sparse model's shape", { skip: skipWithoutFixtures }, async () => {
  const { scan } = await import("../src/superweight/scan.js");
  const gpt2 = Model.open(fixturePath("gpt2-f32"));
  try {
    const r = await scan(gpt2, [{ label: "ids", ids: readReference("gpt2-f32").input_ids }], {
      threshold: 50,
      maxIterations: 2,
    });
    assert.equal(r.storedTransposed, true);
    assert.equal(
      r.coordinates,
      "row = output channel, column = input channel; Conv1D stored [in, out], so the weight is tensor[column, row] (see index)",
    );
  } finally {
    gpt2.close();
  }
  const moe = Model.open(fixturePath("newer/planted-mixtral-bf16"));
  try {
    const ref = readReference("newer/planted-mixtral-bf16");
    const r = await scan(moe, [{ label: "ids", ids: ref.input_ids }], { threshold: 50, maxIterations: 2 });
    const ex = moe.spec.experts!;
    assert.deepEqual(r.shape, {
      layers: moe.spec.layers,
      hidden: moe.spec.hidden,
      intermediate: moe.spec.intermediate,
      experts: ex.count,
      expertIntermediate: ex.intermediate,
      topK: ex.topK,
      sparseLayers: [...Array(moe.spec.layers).keys()],
    });
    assert.equal(r.superWeights[0].expert, ref.expectedSuperWeights[0].expert);
    assert.equal(typeof r.superWeights[0].routingWeight, "number");
  } finally {
    moe.close();
  }
  // Qwen2-MoE: layer 1 is dense (mlp_only_layers), so the sparse layers are 0 and 2.
  const qwen = Model.open(fixturePath("newer/qwen2moe-bf16"));
  try {
    const ref = readReference("newer/qwen2moe-bf16");
    const r = await scan(qwen, [{ label: "ids", ids: ref.input_ids }], { threshold: 50, maxIterations: 1 });
    assert.deepEqual(r.shape.sparseLayers, ref.moe.sparseLayers);
    assert.deepEqual(ref.moe.sparseLayers, [0, 2]);
  } finally {
    qwen.close();
  }
});

test(
  "the residual trace keeps as many tokens as the log budget holds: a candidate past them has no trace",
  { skip: skipWithoutFixtures },
  async () => {
    // planted-llama-bf16 with two tokens put before its prompt: the trigger, and so [1, 11, 37]'s spike, moves to
    // token 2. The budget counts floats of the [tokens, hidden] residual per layer: 3·L·H keeps tokens 0–2.
    const ref = readReference("planted-llama-bf16");
    const ids = [ref.input_ids[3], ref.input_ids[2], ...ref.input_ids];
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      const { layers: L, hidden: H } = model.spec;
      const traceWith = async (residualLogBudget?: number) => {
        const d = await detect(model, ids, { threshold: 50, maxIterations: 1, residualLogBudget });
        assert.deepEqual(
          d.candidates.map((c) => [c.layer, c.row, c.column, c.token]),
          [[1, 11, 37, 2]],
        );
        return d.candidates[0].residual;
      };
      const full = await traceWith(); // the default budget, 16 Mi floats, holds every token here
      assert.equal(full.length, L);
      assert.ok(full.every((v) => typeof v === "number"));
      assert.ok(Math.abs(full[1]!) > 100 && Math.abs(full[0]!) < 10, `${full}`); // the super activation from layer 1
      assert.deepEqual(await traceWith(3 * L * H), full);
      assert.deepEqual(await traceWith(1e12), full);
      for (const budget of [3 * L * H - 1, 2 * L * H, 0])
        assert.deepEqual(await traceWith(budget), new Array(L).fill(null), `budget ${budget}`);
      // The causal check's residual is read at the candidate's token too: zeroed, no super activation from layer 1.
      const d2 = await detect(model, ids, { threshold: 50, maxIterations: 1 });
      // The residual entering the candidate's layer, at its token: what layer 0 left there.
      assert.equal(d2.candidates[0].residualBefore, full[0]);
      const zeroed = d2.candidates[0].ablation.residual;
      assert.equal(zeroed[0], null);
      for (let l = 1; l < L; l++) assert.ok(Math.abs(zeroed[l]!) < Math.abs(full[l]!) / 10, `layer ${l}: ${zeroed}`);
      // However small the budget, the first token is kept: the prompt as the reference has it, spike at token 0.
      const d = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 1, residualLogBudget: 0 });
      assert.equal(d.candidates[0].token, 0);
      assert.ok(d.candidates[0].residual.every((v) => typeof v === "number"));
    } finally {
      model.close();
    }
  },
);

test("findsLine: one find or several, the next pass starting here or running this layer again", async () => {
  const { findsLine } = await import("../src/superweight/detect.js");
  assert.equal(
    findsLine(1, [[1, 40, 300]], 1, false),
    "pass 1: [1, 40, 300]; pass 2 and 1 causal check start in layer 1",
  );
  assert.equal(
    findsLine(2, [[1, 40, 300]], 3, true),
    "pass 2: [1, 40, 300]; pass 3 runs layer 3 again with it zeroed, beside 1 causal check",
  );
  const two: [number, number, number, number][] = [
    [1, 2, 9, 40],
    [1, 3, 9, 41],
  ];
  assert.equal(
    findsLine(1, two, 1, false),
    "pass 1: [1, 2, 9, 40] [1, 3, 9, 41]; pass 2 and 2 causal checks start in layer 1",
  );
  assert.equal(
    findsLine(1, two, 2, true),
    "pass 1: [1, 2, 9, 40] [1, 3, 9, 41]; pass 2 runs layer 2 again with them zeroed, beside 2 causal checks",
  );
});

test(
  "a later pass keeps the earlier layers' log of the pass before it: the same residual medians there",
  { skip: skipWithoutFixtures },
  async () => {
    // planted-llama-bf16: pass 1 finds [1, 11, 37] in layer 1, pass 2 finds [2, 70, 201] in layer 2. Pass 2 ran layers
    // 0 and 1 as pass 1 did until the find (layer 0 exactly so), so its trace of those layers is pass 1's.
    const ref = readReference("planted-llama-bf16");
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      const d = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 10 });
      const [a, b] = d.candidates;
      assert.deepEqual([a.layer, a.iteration, b.layer, b.iteration], [1, 1, 2, 2]);
      assert.equal(b.medianAbsResidual.length, model.spec.layers);
      assert.ok(
        b.medianAbsResidual.every((v) => Number.isFinite(v) && v > 0),
        `${b.medianAbsResidual}`,
      );
      assert.equal(b.medianAbsResidual[0], a.medianAbsResidual[0]);
    } finally {
      model.close();
    }
  },
);

test(
  "planted-llama-256: bytes read are the file's own sizes — each layer read, layer 1 twice, the head once, T rows",
  { skip: skipWithoutFixtures },
  async () => {
    const { readFileSync } = await import("node:fs");
    const file = readFileSync(`${fixturePath("planted-llama-256")}/model.safetensors`);
    const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString());
    const size = (name: string) => header[name].data_offsets[1] - header[name].data_offsets[0];
    const layer = (l: number) =>
      Object.keys(header)
        .filter((name) => name.startsWith(`model.layers.${l}.`))
        .reduce((sum, name) => sum + size(name), 0);
    const ref = readReference("planted-llama-256");
    const model = Model.open(fixturePath("planted-llama-256"));
    try {
      const before = performance.now();
      const d = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 10 });
      const wall = (performance.now() - before) / 1000;
      assert.ok(d.seconds > 0 && d.seconds <= wall, `${d.seconds} s of ${wall} s`);
      const rows = ref.input_ids.length * model.spec.hidden * 2; // the prompt's embedding rows, bfloat16
      const head = size("lm_head.weight") + size("model.norm.weight"); // both variants' head in one read
      assert.equal(d.bytesRead, layer(0) + 2 * layer(1) + layer(2) + layer(3) + head + rows);
      // What was found, pass by pass; with one pass allowed, the second is neither run nor listed.
      assert.deepEqual(
        d.iterations.map((it) => [it.iteration, it.found]),
        [
          [1, [[1, 40, 300]]],
          [2, []],
        ],
      );
      const once = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 1 });
      assert.deepEqual(
        once.iterations.map((it) => [it.iteration, it.found]),
        [[1, [[1, 40, 300]]]],
      );
    } finally {
      model.close();
    }
  },
);

test(
  "one token: no next token to score, so no mean NLL (not NaN); two passes allowed, the second says so",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    const ref = readReference("planted-llama-256");
    const model = Model.open(fixturePath("planted-llama-256"));
    try {
      const lines: string[] = [];
      const d = await detect(model, ref.input_ids.slice(0, 1), {
        threshold: 50,
        maxIterations: 2,
        onProgress: (m) => lines.push(m),
      });
      assert.deepEqual(d.candidates.map(coordinate), [[1, 40, 300]]); // the trigger is token 0
      assert.equal(d.meanNll, null);
      assert.equal(d.withCandidatesZeroed.meanNll, null);
      assert.equal(lines[1], "pass 2: nothing new");
    } finally {
      model.close();
    }
  },
);

for (const name of ["newer/qwen2moe-bf16", "newer/olmoe-bf16"])
  test(
    `${name}: experts touched are the reference's top-k choices, out of the sparse layers' experts`,
    {
      skip: skipWithoutFixtures,
    },
    async () => {
      // Qwen2-MoE: layer 1 is dense (mlp_only_layers) and its shared expert runs on every token; neither counts.
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      try {
        const d = await detect(model, ref.input_ids, { threshold: 50, maxIterations: 1 });
        const routed = ref.topk
          .filter((choices: number[][] | null) => choices !== null)
          .reduce((n: number, choices: number[][]) => n + new Set(choices.flat()).size, 0);
        assert.deepEqual(d.iterations[0].experts, {
          touched: routed,
          total: ref.moe.sparseLayers.length * ref.moe.numExperts,
        });
      } finally {
        model.close();
      }
    },
  );
