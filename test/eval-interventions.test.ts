// Each intervention, exactly: what it changes in the weights the engine multiplies (every element compared
// with the checkpoint's, the override applied block by block as the engine applies it), the coordinates'
// mapping to stored indices (GPT-2's [in, out], an expert's tensor), and the errors a bad coordinate gets.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import { ConfigReader } from "../src/models/spec.js";
import type { TensorRows, Variant } from "../src/engine/variants.js";
import { UserError } from "../src/errors.js";
import {
  interventionVariants,
  linearWeights,
  locateWeight,
  parseCoordinate,
  parseScale,
} from "../src/eval/interventions.js";
import { planArms, type ScannedWeight } from "../src/eval/arms.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toyMoe } from "./toy-architectures.js";
import { seeded } from "./reference-forward.js";

const root = mkdtempSync(join(tmpdir(), "sw-eval-iv-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** `values` [rows, cols] as the variant's overrides of `tensor` make it: prepare on the whole tensor, then apply
 * in blocks of 7 rows (as the engine does, in smaller blocks). */
function applyTo(values: Float32Array, rows: number, cols: number, variant: Variant, tensor: string): Float32Array {
  const read = (r0: number, r1: number) => values.slice(r0 * cols, r1 * cols);
  const tensorRows: TensorRows = {
    tensor,
    rows,
    cols,
    read,
    *blocks() {
      for (let r0 = 0; r0 < rows; r0 += 7) yield [read(r0, Math.min(rows, r0 + 7)), r0] as [Float32Array, number];
    },
  };
  const out = values.slice();
  for (const o of (variant.overrides ?? []).filter((o) => o.tensor === tensor)) {
    o.prepare?.(tensorRows);
    for (let r0 = 0; r0 < rows; r0 += 7) o.apply(out.subarray(r0 * cols, Math.min(rows, r0 + 7) * cols), r0 * cols);
  }
  return out;
}

/** The tensor as the variant's overrides make it. */
function seen(model: Model, variant: Variant, tensor: string): Float32Array {
  const [rows, cols] = model.shape(tensor);
  return applyTo(model.read(tensor), rows, cols, variant, tensor);
}

/** Stored indices where two tensors differ (bitwise: +0 and −0 differ too). */
const changed = (a: Float32Array, b: Float32Array) => [...a.keys()].filter((i) => !Object.is(a[i], b[i]));

/** The k = round(fraction·candidates) largest |w| by sorting (ties in stored order), as a set. */
function largestBySort(values: Float32Array, fraction: number, spare: number[]): Set<number> {
  const idx = [...values.keys()].filter((i) => !spare.includes(i));
  idx.sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  return new Set(idx.slice(0, Math.round(fraction * idx.length)));
}

const clock = { offset: 0 };

function planted(name: string): { model: Model; ref: any; scanned: ScannedWeight[] } {
  const ref = readReference(name);
  const model = Model.open(fixturePath(name));
  const scanned = ref.expectedSuperWeights.map((w: any) => ({
    ...locateWeight(model, { layer: w.layer, row: w.row, column: w.column }),
    token: w.token,
    class: w.class,
  }));
  return { model, ref, scanned };
}

test("coordinates parse as L:R:C, L:E:R:C (E a number or shared) and L:R:C=F; anything else is named", () => {
  assert.deepEqual(parseCoordinate("1:36:71"), { layer: 1, row: 36, column: 71 });
  assert.deepEqual(parseCoordinate("1:2:3:4"), { layer: 1, expert: 2, row: 3, column: 4 });
  assert.deepEqual(parseCoordinate("0:shared:3:4"), { layer: 0, expert: "shared", row: 3, column: 4 });
  assert.deepEqual(parseScale("2:70:201=0.5"), { weight: { layer: 2, row: 70, column: 201 }, factor: 0.5 });
  assert.deepEqual(parseScale("2:70:201=-3e1"), { weight: { layer: 2, row: 70, column: 201 }, factor: -30 });
  for (const bad of ["1:2", "1:2:3:4:5", "a:b:c", "1:-2:3", "1.5:2:3", "1:x:2:3", ""])
    assert.throws(
      () => parseCoordinate(bad),
      (e: unknown) => e instanceof UserError && e.message.includes(`--zero ${bad}:`),
      bad,
    );
  for (const bad of ["1:2:3", "1:2:3=", "1:2:3=x", "1:2:3=Infinity", "1:2=2"])
    assert.throws(() => parseScale(bad), UserError, bad);
});

test(
  "a Llama coordinate is [row, column] of down_proj; GPT-2's c_proj is stored [in, out], so it is [column, row]",
  { skip: skipWithoutFixtures },
  () => {
    const { model } = planted("planted-llama-bf16");
    const w = locateWeight(model, { layer: 1, row: 11, column: 37 });
    assert.equal(w.tensor, "model.layers.1.mlp.down_proj.weight");
    assert.deepEqual(w.index, [11, 37]);
    assert.equal(w.value, 2.328125, "the planted weight (reference.json)");
    assert.throws(() => locateWeight(model, { layer: 4, row: 0, column: 0 }), /layers 0\.\.3/);
    assert.throws(
      () => locateWeight(model, { layer: 1, row: 96, column: 0 }),
      /96 output channels \(rows\) and 248 input channels/,
    );
    assert.throws(() => locateWeight(model, { layer: 1, row: 0, column: 248 }), /248 input channels/);
    assert.throws(() => locateWeight(model, { layer: 1, expert: 0, row: 0, column: 0 }), /has no experts/);
    model.close();

    const gpt2 = Model.open(fixturePath("gpt2-f32"));
    const g = locateWeight(gpt2, { layer: 1, row: 5, column: 100 });
    assert.equal(g.tensor, "transformer.h.1.mlp.c_proj.weight");
    assert.deepEqual(g.index, [100, 5]);
    const raw = Checkpoint.open(fixturePath("gpt2-f32"));
    assert.deepEqual(raw.info("transformer.h.1.mlp.c_proj.weight").shape, [240, 60]);
    assert.equal(
      g.value,
      raw.read("transformer.h.1.mlp.c_proj.weight")[100 * 60 + 5],
      "input channel 100 is stored row 100",
    );
    assert.throws(
      () => locateWeight(gpt2, { layer: 1, row: 60, column: 0 }),
      /60 output channels \(rows\) and 240 input channels/,
    );
    raw.close();
    gpt2.close();
  },
);

test("an expert's weight is L:E:R:C in that expert's down projection; a bare L:R:C there is refused", () => {
  const config = {
    model_type: "toy_moe",
    hidden_size: 16,
    intermediate_size: 12,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 4,
    num_hidden_layers: 1,
    vocab_size: 23,
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    num_experts: 2,
    num_experts_per_tok: 1,
  };
  const spec = toyMoe.config(new ConfigReader(config, "config.json"));
  const rand = seeded(3);
  const folder = join(root, "moe");
  writeCheckpoint(
    folder,
    config,
    [...toyMoe.tensors(spec)].map(([name, shape]) => ({
      name,
      dtype: "F32" as const,
      shape,
      data: rand(
        shape.reduce((a, b) => a * b, 1),
        0.5,
      ),
    })),
  );
  const model = Model.fromSource(Checkpoint.open(folder), toyMoe);
  const w = locateWeight(model, { layer: 0, expert: 1, row: 3, column: 5 });
  assert.equal(w.tensor, "model.layers.0.mlp.experts.1.down_proj.weight");
  assert.deepEqual(w.index, [3, 5]);
  assert.equal(w.value, Checkpoint.open(folder).read(w.tensor)[3 * 12 + 5]);
  assert.throws(
    () => locateWeight(model, { layer: 0, row: 3, column: 5 }),
    /Mixture-of-Experts layer; give LAYER:EXPERT:ROW:COLUMN \(experts 0, 1\)/,
  );
  assert.throws(() => locateWeight(model, { layer: 0, expert: 2, row: 3, column: 5 }), /has experts 0, 1/);
  // Zeroing it changes exactly that element of that expert's tensor.
  const { arms } = planArms(model, { zero: [{ layer: 0, expert: 1, row: 3, column: 5 }] });
  const [, variant] = interventionVariants(
    model,
    arms.slice(1).map((a) => a.intervention),
    clock,
  );
  assert.deepEqual(changed(model.read(w.tensor), seen(model, variant, w.tensor)), [3 * 12 + 5]);
  assert.deepEqual(
    changed(
      model.read("model.layers.0.mlp.experts.0.down_proj.weight"),
      seen(model, variant, "model.layers.0.mlp.experts.0.down_proj.weight"),
    ),
    [],
  );
  model.close();
});

test(
  "--zero sets exactly the named weight to 0; --scale holds exactly w·F in float32 (F rounded to float32 first)",
  { skip: skipWithoutFixtures },
  () => {
    const { model } = planted("planted-llama-bf16");
    const { arms } = planArms(model, {
      zero: [{ layer: 1, row: 11, column: 37 }],
      scale: [
        { weight: { layer: 2, row: 70, column: 201 }, factor: 0.3 },
        { weight: { layer: 2, row: 5, column: 7 }, factor: -2 },
      ],
    });
    assert.equal(arms.length, 2);
    const [, variant] = interventionVariants(model, [arms[1].intervention], clock);
    const l1 = "model.layers.1.mlp.down_proj.weight",
      l2 = "model.layers.2.mlp.down_proj.weight";
    const before1 = model.read(l1),
      after1 = seen(model, variant, l1);
    assert.deepEqual(changed(before1, after1), [11 * 248 + 37]);
    assert.equal(after1[11 * 248 + 37], 0);
    const before2 = model.read(l2),
      after2 = seen(model, variant, l2);
    assert.deepEqual(changed(before2, after2), [5 * 248 + 7, 70 * 248 + 201]);
    assert.equal(before2[70 * 248 + 201], 2, "the planted weight");
    assert.equal(after2[70 * 248 + 201], Math.fround(2 * Math.fround(0.3)));
    assert.equal(after2[5 * 248 + 7], Math.fround(-2 * before2[5 * 248 + 7]));
    // No other tensor is touched.
    for (const t of linearWeights(model).filter((t) => t !== l1 && t !== l2))
      assert.deepEqual(changed(model.read(t), seen(model, variant, t)), [], t);
    // The report's record of what changed: old and new values.
    assert.deepEqual(
      arms[1].intervention.weights.map((w) => [w.tensor, w.index, w.value, w.newValue]),
      [
        [l1, [11, 37], 2.328125, 0],
        [l2, [70, 201], 2, Math.fround(2 * Math.fround(0.3))],
        [l2, [5, 7], before2[5 * 248 + 7], Math.fround(-2 * before2[5 * 248 + 7])],
      ],
    );
    // Where rounding F first matters (as PyTorch multiplies a float32 tensor by a Python float): 2.328125 × 0.1.
    const tenth = planArms(model, { scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 0.1 }] }).arms[1];
    const scaled = seen(model, interventionVariants(model, [tenth.intervention], clock)[1], l1)[11 * 248 + 37];
    assert.equal(scaled, 0.23281250894069672);
    assert.notEqual(scaled, Math.fround(2.328125 * 0.1));
    assert.throws(
      () =>
        planArms(model, {
          zero: [{ layer: 1, row: 11, column: 37 }],
          scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 2 }],
        }),
      /already set by zero/,
    );
    model.close();
  },
);

test(
  "--prune-outliers 0.001 zeroes exactly the largest 0.1% |w| of each linear weight; --keep-super spares super weights",
  { skip: skipWithoutFixtures },
  () => {
    for (const name of ["planted-llama-bf16", "gpt2-f32"]) {
      const { model, scanned } =
        name === "gpt2-f32" ? { model: Model.open(fixturePath(name)), scanned: [] as ScannedWeight[] } : planted(name);
      const tensors = linearWeights(model);
      const perLayer =
        name === "gpt2-f32"
          ? ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"]
          : [
              "self_attn.q_proj",
              "self_attn.k_proj",
              "self_attn.v_proj",
              "self_attn.o_proj",
              "mlp.gate_proj",
              "mlp.up_proj",
              "mlp.down_proj",
            ];
      assert.deepEqual(
        new Set(tensors),
        new Set(
          Array.from({ length: model.spec.layers }, (_, l) =>
            perLayer.map((p) => `${model.arch.layerPrefix(l)}${p}.weight`),
          ).flat(),
        ),
      );
      for (const keepSuper of name === "gpt2-f32" ? [false] : [false, true]) {
        const { arms } = planArms(model, { prune: { fraction: 0.001, keepSuper }, scanned });
        const [, variant] = interventionVariants(model, [arms[1].intervention], clock);
        for (const t of tensors) {
          const before = model.read(t),
            after = seen(model, variant, t);
          const spare = keepSuper
            ? scanned.filter((w) => w.tensor === t).map((w) => w.index[0] * model.shape(t)[1] + w.index[1])
            : [];
          const want = largestBySort(before, 0.001, spare);
          assert.deepEqual(
            new Set(changed(before, after)),
            new Set([...want].filter((i) => before[i] !== 0)),
            `${name} ${t}`,
          );
          for (const i of want) assert.equal(after[i], 0);
          for (const i of spare) assert.equal(after[i], before[i], `${t}: super weight ${i} kept`);
        }
        if (!keepSuper)
          for (const w of scanned.filter((s) => s.class === "super"))
            assert.equal(
              seen(model, variant, w.tensor)[w.index[0] * model.shape(w.tensor)[1] + w.index[1]],
              0,
              "without --keep-super the (largest) super weight goes too",
            );
      }
      model.close();
    }
  },
);

test(
  "the prune null zeroes a random set of the same size per tensor, sparing the same weights; seeded",
  { skip: skipWithoutFixtures },
  () => {
    const { model, scanned } = planted("planted-llama-bf16");
    const plan = { prune: { fraction: 0.01, keepSuper: true }, scanned, nulls: 3, seed: 5 };
    const { arms, nulls } = planArms(model, plan);
    const group = nulls.find((g) => g.what.startsWith("prune"))!;
    assert.equal(group.real, 1, "the real arm is the prune itself");
    assert.equal(group.arms.length, 3);
    const draw = (list: typeof arms, id: number) => interventionVariants(model, [list[id].intervention], clock)[1];
    const [a, b] = [draw(arms, group.arms[0]), draw(arms, group.arms[1])];
    const a2 = draw(planArms(model, plan).arms, group.arms[0]);
    const real = draw(arms, group.real);
    for (const t of linearWeights(model)) {
      const [rows, cols] = model.shape(t);
      const spare = scanned
        .filter((w) => w.tensor === t && w.class === "super")
        .map((w) => w.index[0] * cols + w.index[1]);
      // On a tensor of ones the zeroed set shows whole: exactly round(fraction · candidates) elements, the
      // spared never.
      const ones = new Float32Array(rows * cols).fill(1);
      const zeros = (v: Variant) => changed(ones, applyTo(ones, rows, cols, v, t));
      const k = Math.round(0.01 * (rows * cols - spare.length));
      assert.equal(zeros(a).length, k, t);
      assert.equal(changed(model.read(t), seen(model, real, t)).length, k, `${t}: the real prune zeroes as many`);
      for (const i of spare) assert.ok(!zeros(a).includes(i), `${t}: spared ${i}`);
      assert.deepEqual(zeros(a2), zeros(a), "same seed, same draw");
      assert.notDeepEqual(zeros(b), zeros(a), "another draw differs");
      // On the real tensor the draw only zeroes.
      const after = seen(model, a, t);
      assert.ok(changed(model.read(t), after).every((i) => after[i] === 0));
    }
    model.close();
  },
);
