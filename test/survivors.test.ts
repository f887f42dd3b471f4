// Cases a mutation review (issue 15) found no test for: each one fails under a realistic single-line bug that
// the rest of the suite lets through. Named after the bug it catches.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { softmaxRows } from "../src/engine/kernels.js";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { editWeights, scaleWeights, type Variant } from "../src/engine/variants.js";
import type { HookEvent } from "../src/engine/hooks.js";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import { MAX_HEADER_BYTES, parseHeader } from "../src/checkpoint/safetensors.js";
import { CheckpointError } from "../src/errors.js";
import { detect, largest, spikeCandidate, type DownProjSpikes } from "../src/superweight/detect.js";
import { classify } from "../src/superweight/classify.js";
import { DIRECTORY, lookupPublished } from "../src/superweight/directory.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { cliJson } from "./cli-child.js";
import { toleranceUsed } from "./tolerance.js";
import { creator } from "./candidates.js";

const root = mkdtempSync(join(tmpdir(), "sw-survivors-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A fixture rewritten as float32 (every value exact) with some stored elements changed: flat index → value. */
function rewritten(name: string, folder: string, changes: Record<string, [number, number][]>): void {
  const source = Checkpoint.open(fixturePath(name));
  const tensors = source.names().map((n) => {
    const data = source.read(n);
    for (const [i, v] of changes[n] ?? []) data[i] = v;
    return { name: n, dtype: "F32" as const, shape: source.info(n).shape, data };
  });
  writeCheckpoint(folder, source.config as Record<string, unknown>, tensors);
  source.close();
}

// ---- engine ----

test("softmax subtracts the row maximum: scores [1000, 1000, 999] do not overflow exp", () => {
  const x = new Float32Array([1000, 1000, 999]);
  softmaxRows(
    x,
    1,
    3,
    () => 0,
    () => 2,
  );
  // e^0 / (2 + e^-1) and e^-1 / (2 + e^-1), worked out by hand.
  const want = [0.4223187982, 0.4223187982, 0.1553624036];
  [...x].forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `p[${i}] = ${v}, want ${want[i]}`));
});

for (const name of ["qwen2-bf16", "gpt2-f32"]) {
  test(
    `${name}: biases reach every variant's rows (two variants in one pass = two single passes)`,
    { skip: skipWithoutFixtures },
    async () => {
      const ref = readReference(name);
      const model = Model.open(fixturePath(name));
      const tensor = model.arch.layerPrefix(1) + (name === "gpt2-f32" ? "mlp.c_proj.weight" : "mlp.down_proj.weight");
      const edited: Variant = { overrides: editWeights(model, [{ tensor, row: 2, column: 5, value: 3 }]) };
      const both = (await forward(model, ref.input_ids, { variants: [{}, edited] })).logits!;
      const alone = [
        (await forward(model, ref.input_ids)).logits!,
        (await forward(model, ref.input_ids, { variants: [edited] })).logits!,
      ];
      model.close();
      const size = alone[0].length;
      assert.ok(toleranceUsed(alone[0], ref.logits.flat()) <= 1, "the single pass matches the reference");
      for (const v of [0, 1]) {
        const used = toleranceUsed(both.subarray(v * size, (v + 1) * size), [...alone[v]], 1e-5, 1e-5);
        assert.ok(
          used <= 1,
          `variant ${v} of the two-variant pass vs its own pass: ${used.toFixed(2)}× of 1e-5 + 1e-5·|b|`,
        );
      }
    },
  );
}

test(
  "an edit on the first row of a weight block (normal block size) gives the logits of that checkpoint on disk",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "llama-f32";
    const ref = readReference(name);
    const model = Model.open(fixturePath(name));
    const tensor = "model.layers.1.mlp.down_proj.weight";
    const [rows, cols] = model.shape(tensor);
    assert.ok(rows * cols <= 4 * 1024 * 1024, "the whole tensor is one block: row 0 is its first row");
    const factor = 50,
      w0 = model.weight(tensor, 0, 0);
    const value = Math.fround(w0 * Math.fround(factor));
    const variants: Variant[] = [
      {},
      { overrides: editWeights(model, [{ tensor, row: 0, column: 0, value }]) },
      { overrides: [scaleWeights(tensor, [0], factor)] },
    ];
    const out = (await forward(model, ref.input_ids, { variants })).logits!;
    model.close();
    const folder = join(root, "edited-first-row");
    rewritten(name, folder, { [tensor]: [[0, value]] });
    const onDisk = Model.open(folder);
    const expected = (await forward(onDisk, ref.input_ids)).logits!;
    onDisk.close();
    const size = expected.length;
    let moved = 0;
    for (let i = 0; i < size; i++) moved = Math.max(moved, Math.abs(out[i] - expected[i]));
    assert.ok(moved > 1e-3, `the edit moves the logits (${moved})`);
    for (const v of [1, 2]) {
      const used = toleranceUsed(out.subarray(v * size, (v + 1) * size), [...expected], 1e-5, 1e-5);
      assert.ok(used <= 1, `variant ${v} vs the checkpoint written with w[0, 0] = ${value}: ${used.toFixed(2)}×`);
    }
  },
);

// ---- detection ----

test(
  "GPT-2: a planted Conv1D super weight is reported at its stored index [column, row]",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "gpt2-f32";
    const ref = readReference(name);
    const original = Model.open(fixturePath(name));
    const tensor = original.arch.layerPrefix(1) + "mlp.c_proj.weight";
    const outFeatures = original.shape(tensor)[1];
    assert.equal(original.layout(tensor), "kn");
    // The largest input of layer 1's c_proj, found on the unchanged model.
    let input = { max: 0, value: 0, token: 0, channel: 0 };
    const hook = (e: HookEvent) => {
      if (e.point === "down_proj_input" && e.layer === 1) input = largest(e.data, e.width);
    };
    await forward(original, ref.input_ids, { hooks: [hook], head: false });
    original.close();
    const column = input.channel,
      row = 17;
    const planted = Math.fround(400 / input.value); // output ≈ 400 at (token, row)
    const folder = join(root, "gpt2-planted");
    rewritten(name, folder, { [tensor]: [[column * outFeatures + row, planted]] });

    const model = Model.open(folder);
    const d = await detect(model, ref.input_ids, { threshold: 0.9 * input.max, maxIterations: 2 });
    model.close();
    const found = d.candidates.filter((c) => c.layer === 1);
    assert.equal(found.length, 1, `one candidate in layer 1: ${JSON.stringify(found.map((c) => [c.row, c.column]))}`);
    const [c] = found;
    assert.deepEqual([c.row, c.column, c.token], [row, column, input.token]);
    assert.deepEqual(c.index, [column, row], "Conv1D is stored [in, out]");
    assert.equal(c.tensor, tensor);
    assert.equal(c.value, planted);
  },
);

const spikes = (input: number, output: number): DownProjSpikes => ({
  downProjInput: { max: input, value: input, token: 0, channel: 7 },
  downProjOutput: { max: output, value: -output, token: 0, channel: 3 },
});

test("the rule needs both spikes strictly above the threshold: a spike exactly at it is no candidate", () => {
  assert.equal(spikeCandidate(spikes(50, 80), 50), undefined, "input at the threshold");
  assert.equal(spikeCandidate(spikes(80, 50), 50), undefined, "output at the threshold");
  assert.equal(spikeCandidate(spikes(50, 50), 50), undefined, "both at the threshold");
  assert.deepEqual(spikeCandidate(spikes(Math.fround(50.001), 80), 50), { row: 3, column: 7, token: 0 });
});

// ---- classification ----

test("a canceller is looked for in later layers only, never in the candidate's own layer", () => {
  assert.equal(classify(creator, 4).class, "super");
  const sameLayer = { ...creator, column: 40, outputActivation: -290 };
  const v = classify(creator, 4, [sameLayer]);
  assert.equal(v.evidence.cancelledBy, null);
  assert.equal(v.evidence.laterLayers, 2);
  assert.equal(v.class, "super");
});

test("an output spike whose sign disagrees with the residual it lands in creates nothing", () => {
  // Residual +300 after the layer, but this weight's output spike is −300: something else made it.
  const v = classify({ ...creator, outputActivation: -300 }, 4);
  assert.equal(v.evidence.creates, false);
  assert.equal(v.class, "outlier");
  assert.ok(
    v.reasons.some((r) => r.includes("opposes the residual")),
    v.reasons.join("; "),
  );
});

// ---- checkpoint ----

/** The 8-byte little-endian header length. */
const prefix = (n: number) => {
  const p = new Uint8Array(8);
  new DataView(p.buffer).setBigUint64(0, BigInt(n), true);
  return p;
};

function truncated(fn: () => unknown, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError && e.code === "TRUNCATED", `expected TRUNCATED, got ${e}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `${JSON.stringify(m)} not in: ${e.message}`);
    return true;
  });
}

test("a header that ends exactly at the end of the file is whole; one byte more runs past it (the 8-byte prefix counts)", () => {
  for (const n of [8, 100, 4096]) {
    assert.equal(parseHeader("x.safetensors", prefix(n), 8 + n).headerLength, n);
    for (const short of [1, 8])
      truncated(() => parseHeader("x.safetensors", prefix(n), 8 + n - short), `header length ${n} runs past the end`);
  }
  // At the 100 MB limit exactly the length is allowed (then runs past a small file); one more is too large.
  assert.equal(
    parseHeader("x.safetensors", prefix(MAX_HEADER_BYTES), 8 + MAX_HEADER_BYTES).headerLength,
    MAX_HEADER_BYTES,
  );
  truncated(() => parseHeader("x.safetensors", prefix(MAX_HEADER_BYTES), MAX_HEADER_BYTES), "runs past the end");
  assert.throws(
    () => parseHeader("x.safetensors", prefix(MAX_HEADER_BYTES + 1), 16 + MAX_HEADER_BYTES),
    /HEADER_TOO_LARGE|exceeds/,
  );
});

// ---- directory ----

// Sizes from each model's published config.json on the Hugging Face Hub (num_hidden_layers, hidden_size,
// intermediate_size; GPT-2: n_layer, n_embd, and n_inner = null → 4·n_embd), read independently of
// src/superweight/directory.ts: https://huggingface.co/<model id>/blob/main/config.json.
const PUBLISHED_CONFIGS: Record<string, [modelType: string, layers: number, hidden: number, intermediate: number]> = {
  "huggyllama/llama-7b": ["llama", 32, 4096, 11008],
  "huggyllama/llama-13b": ["llama", 40, 5120, 13824],
  "huggyllama/llama-30b": ["llama", 60, 6656, 17920],
  "meta-llama/Llama-2-7b-hf": ["llama", 32, 4096, 11008],
  "meta-llama/Llama-2-13b-hf": ["llama", 40, 5120, 13824],
  "mistralai/Mistral-7B-v0.1": ["mistral", 32, 4096, 14336],
  "allenai/OLMo-1B-0724-hf": ["olmo", 16, 2048, 8192],
  "allenai/OLMo-7B-0724-hf": ["olmo", 32, 4096, 11008],
  "microsoft/Phi-3-mini-4k-instruct": ["phi3", 32, 3072, 8192],
  "meta-llama/Meta-Llama-3-8B": ["llama", 32, 4096, 14336],
  "meta-llama/Llama-3.1-8B": ["llama", 32, 4096, 14336],
  "HuggingFaceTB/SmolLM2-1.7B": ["llama", 24, 2048, 8192],
  "Qwen/Qwen2.5-3B": ["qwen2", 36, 2048, 11008],
  "openai-community/gpt2": ["gpt2", 12, 768, 3072],
};

test("the directory's sizes are the published config.json values, and every coordinate fits them", () => {
  assert.deepEqual(
    DIRECTORY.map((e) => e.modelId).sort(),
    Object.keys(PUBLISHED_CONFIGS).sort(),
    "every entry is checked",
  );
  for (const e of DIRECTORY) {
    const [modelType, layers, hidden, intermediate] = PUBLISHED_CONFIGS[e.modelId];
    assert.deepEqual([e.modelType, e.dims], [modelType, { layers, hidden, intermediate }], e.modelId);
    for (const c of e.coordinates) {
      assert.ok(
        c.layer < layers && c.row < hidden && c.column < intermediate,
        `${e.modelId} [${c.layer}, ${c.row}, ${c.column}]`,
      );
      assert.deepEqual(c.index, c.layout === "nk" ? [c.row, c.column] : [c.column, c.row], `${e.modelId} index`);
    }
  }
});

test("the directory's texts: provenance said in every entry, no empty note, every alias found", () => {
  for (const e of DIRECTORY) {
    assert.ok(e.aliases.length > 0, `${e.modelId} has a short name`);
    for (const a of e.aliases) assert.equal(lookupPublished(a)?.modelId, e.modelId, a);
    assert.match(
      e.reference,
      e.source === "paper" ? /^Yu et al\. 2024, The Super Weight/ : /^community report, not in the paper/,
    );
    for (const text of [e.notes, ...e.coordinates.map((c) => c.note)])
      if (text !== undefined) assert.ok(text.length > 20, `${e.modelId}: ${text}`);
    for (const c of e.coordinates)
      if (c.activation) assert.equal(c.activation.source, "community", `${e.modelId} activations`);
  }
  assert.equal(lookupPublished("gpt2 @main")?.modelId, "openai-community/gpt2", "space before the revision");
});

// ---- CLI ----

test(
  "scan --threshold 2.5 end to end: a layer whose output spike is 2.27 is not a candidate (it would be at 2)",
  { skip: skipWithoutFixtures },
  () => {
    const name = "llama-default-rope-bf16";
    const ref = readReference(name);
    // The reference's own spikes, per layer: the candidates the rule gives at a threshold.
    const layers = ref.layers as {
      layer: number;
      downProjInput: { max: number; channel: number };
      downProjOutput: { max: number; channel: number };
    }[];
    const at = (t: number) =>
      layers
        .filter((l) => l.downProjInput.max > t && l.downProjOutput.max > t)
        .map((l) => [l.layer, l.downProjOutput.channel, l.downProjInput.channel]);
    assert.notDeepEqual(at(2.5), at(2), "the case separates 2.5 from 2");
    const out = cliJson(
      "scan",
      fixturePath(name),
      "--ids",
      ref.input_ids.join(","),
      "--threshold",
      "2.5",
      "--max-iterations",
      "1",
    );
    assert.equal(out.threshold, 2.5);
    assert.deepEqual(
      out.superWeights.map((w: { layer: number; row: number; column: number }) => [w.layer, w.row, w.column]),
      at(2.5),
    );
  },
);
