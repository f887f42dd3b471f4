// Super experts in a scan of a sparse-MoE model: candidates named [layer, expert, row, column] with their
// tensor and routing weight, the per-expert maxima in the JSON and in the text table, how many experts each
// pass touched, and streaming — an expert no token is routed to is never read.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { scan } from "../src/superweight/scan.js";
import { renderScan, scanJson } from "../src/report/scan-text.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

async function scanOf(name: string, threshold = 50) {
  const ref = readReference(name);
  const model = Model.open(fixturePath(name));
  try {
    return { ref, report: await scan(model, [{ label: "ids", ids: ref.input_ids }], { threshold, maxIterations: 10 }) };
  } finally {
    model.close();
  }
}

/** Numbered experts with routed tokens in a reference pass's layers. */
const routedExperts = (layers: any[]) =>
  layers.reduce((n, l) => n + (l.experts ?? []).filter((e: any) => typeof e.expert === "number").length, 0);

test(
  "planted-mixtral: --json names the super expert, its tensor and routing weight, every expert's maxima and the experts each pass touched",
  { skip: skipWithoutFixtures },
  async () => {
    const { ref, report } = await scanOf("newer/planted-mixtral-bf16");
    const json = JSON.parse(scanJson(report));
    const [exp] = ref.expectedSuperWeights;
    assert.equal(json.superWeights.length, 1);
    const w = json.superWeights[0];
    assert.deepEqual(
      [w.layer, w.expert, w.row, w.column, w.tensor, w.class],
      [exp.layer, exp.expert, exp.row, exp.column, exp.tensor, "super"],
    );
    assert.ok(
      Math.abs(w.routingWeight - exp.routingWeight) <= 1e-4 * (1 + exp.routingWeight),
      `routing weight ${w.routingWeight}`,
    );
    assert.deepEqual(json.shape, {
      layers: 3,
      hidden: 64,
      intermediate: 112,
      experts: 4,
      expertIntermediate: 112,
      topK: 2,
      sparseLayers: [0, 1, 2],
    });
    // layers[*].experts: every routed expert of every sparse layer, with its token count, as the reference lists them.
    json.layers.forEach((l: any, j: number) =>
      assert.deepEqual(
        l.experts.map((e: any) => [e.expert, e.tokens]),
        ref.layers[j].experts.map((e: any) => [e.expert, e.tokens]),
      ),
    );
    // Experts touched per pass: those with routed tokens in the model as that pass saw it, of 3 layers × 4.
    assert.deepEqual(
      json.iterations[0].map((p: any) => p.experts),
      ref.detectionIterations.map((p: any) => ({ touched: routedExperts(p.layers), total: 12 })),
    );
    assert.equal(routedExperts(ref.detectionIterations[0].layers), 11, "one expert of layer 0 gets no token");

    const text = renderScan(report);
    assert.match(text, /4 experts of 112, top-2, in 3 sparse layers/);
    assert.match(text, /token 0 is routed to expert 2 with weight 0\.953/);
    assert.match(text, /experts routed to per pass \(only their weights are read\):\n {2}11\/12, 11\/12/);
    // The per-expert table marks expert 2 of layer 1, and only it, as above the threshold on both sides.
    const rows = text.split("\n").filter((l) => /^\s+\d+\s+(\d+|block)( \*)?\s/.test(l));
    assert.deepEqual(
      rows.filter((l) => l.includes("*")).map((l) => l.trim().split(/\s+/).slice(0, 3)),
      [["1", "2", "*"]],
    );
    assert.match(
      rows.find((l) => l.includes("*"))!,
      /159\.7\s+0\s+40\s+319\.8\s+0\s+9$/,
    );
    assert.equal(rows.length, 11 + 3, "11 routed experts and 3 block rows");
  },
);

test("a dense model's scan has no expert fields", { skip: skipWithoutFixtures }, async () => {
  const { report } = await scanOf("newer/planted-olmo2-f32");
  const json = JSON.parse(scanJson(report));
  assert.equal(json.superWeights[0].expert, undefined);
  assert.equal(json.iterations[0][0].experts, undefined);
  assert.equal(json.layers[0].experts, undefined);
  assert.doesNotMatch(renderScan(report), /expert/);
});

test(
  'Qwen2-MoE: the shared expert is expert "shared" (every token, its gate as the weight); a dense layer\'s candidate has no expert',
  { skip: skipWithoutFixtures },
  async () => {
    // Threshold 3: ordinary spikes become (outlier) candidates, enough to see how each kind is named.
    const { ref, report } = await scanOf("newer/qwen2moe-bf16", 3);
    const firstPass = report.superWeights.filter((w) => w.iteration === 1);
    const shared = firstPass.find((w) => w.layer === 0 && w.expert === "shared")!;
    const refShared = ref.layers[0].experts.find((e: any) => e.expert === "shared");
    assert.deepEqual(
      [shared.tensor, shared.row, shared.column],
      [
        "model.layers.0.mlp.shared_expert.down_proj.weight",
        refShared.downProjOutput.channel,
        refShared.downProjInput.channel,
      ],
    );
    const gate = ref.shared_expert["0"].gate[shared.token];
    assert.ok(Math.abs(shared.routingWeight! - gate) <= 1e-4 * (1 + gate), `gate ${shared.routingWeight} vs ${gate}`);
    const dense = firstPass.find((w) => w.layer === 1)!;
    assert.equal(dense.expert, undefined);
    assert.equal(dense.tensor, "model.layers.1.mlp.down_proj.weight");
    assert.equal(dense.routingWeight, undefined);
    assert.equal(report.layers[1].experts, undefined, "layer 1 is in mlp_only_layers");
    assert.deepEqual(
      report.layers[0].experts!.map((e) => e.expert),
      [0, 1, 3, 4, 5, "shared"],
    );
    assert.ok(report.superWeights.every((w) => w.class === "outlier"));
  },
);

test(
  "streaming: only the experts a token is routed to are read, each once",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "newer/mixtral-bf16";
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    const read = (await forward(model, ref.input_ids)).rowsRead;
    model.close();
    const expertTensors = [...read.keys()].filter((t) => t.includes(".experts."));
    const routed = Object.entries(ref.expert_down_proj_input as Record<string, Record<string, unknown>>).flatMap(
      ([l, experts]) =>
        Object.keys(experts).flatMap((e) =>
          ["w1", "w3", "w2"].map((w) => `model.layers.${l}.block_sparse_moe.experts.${e}.${w}.weight`),
        ),
    );
    assert.deepEqual(expertTensors.sort(), routed.sort());
    assert.ok(routed.length < 2 * 4 * 3, "some expert is never routed to (layer 1, expert 3)");
    for (const t of expertTensors) assert.equal(read.get(t), model.shape(t)[0], `${t} read once`);
  },
);
