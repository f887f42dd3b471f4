// GGUF export against llama.cpp's own files: planted-llama-256 at every type the fixtures hold (and the fixture
// made with the super weight's tensor kept at F16), qwen2/phi3 at F32 and bytes-llama-6m at Q8_0 through its
// tokenizer.json give byte-identical tensor data, the same names, types, shapes and order, and the same metadata
// but for the keys named here. Every other fixture architecture round-trips through the project's reader to its
// reference.json. The file read back holds exactly what the quantizers made; kept super weights read back at their
// values; clipping is what its definition says; recipes compare as the fixtures' own perplexities say.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { readGgufFile, readTensorBytes, type GgufFile, type GgufKv } from "../src/gguf/container.js";
import { dequantize } from "../src/gguf/dequant.js";
import { ggmlTypeByName } from "../src/gguf/types.js";
import { planGgufExport, writeGgufExport, type GgufExportOptions } from "../src/export/gguf.js";
import { compareGgufRecipes, standardRecipes } from "../src/export/compare.js";
import { ropeFactors } from "../src/export/plan.js";
import type { SuperWeight } from "../src/export/recipe.js";
import { GgufCheckpoint } from "../src/gguf/source.js";
import { quantizedSize, quantizeRow } from "../src/gguf/quantize.js";
import { CheckpointError, UserError } from "../src/errors.js";
import { ggufTokenizerMetadata } from "../src/tokenizer/gguf-vocab-write.js";
import { writeCheckpoint } from "../src/checkpoint/writer.js";
import type { TensorSource } from "../src/checkpoint/source.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";
import { seeded } from "./reference-forward.js";

const dir = mkdtempSync(join(tmpdir(), "sw-gguf-export-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

const PLANTED = "planted-llama-256";
const SW_TENSOR = "model.layers.1.mlp.down_proj.weight";
const expectedOf = (file: string) => JSON.parse(readFileSync(fixturePath("gguf", `${file}.expected.json`), "utf8"));

function plantedSuperWeight(model: Model): SuperWeight {
  return { layer: 1, row: 40, column: 300, tensor: SW_TENSOR, value: model.weight(SW_TENSOR, 40, 300) };
}

type Options = Partial<GgufExportOptions> & Pick<GgufExportOptions, "ftype">;

function exportModel(model: Model, o: Options) {
  const path = join(dir, `e${counter++}.gguf`);
  const plan = planGgufExport(model, {
    keepSuper: false,
    keepType: "Q8_0",
    clip: { method: "none" },
    superWeights: [],
    standIn: true,
    name: "fixture",
    ...o,
  });
  return { path, plan, result: writeGgufExport(plan, path) };
}

const exported = new Map<string, ReturnType<typeof exportModel>>();

/** A fixture exported once per set of options (the files are only read). */
function exportFixture(fixture: string, o: Options) {
  const key = JSON.stringify([fixture, o]);
  if (!exported.has(key)) {
    const model = Model.open(fixturePath(fixture));
    try {
      const superWeights = o.superWeights ?? (o.keepSuper ? [plantedSuperWeight(model)] : []);
      exported.set(key, exportModel(model, { ...o, superWeights }));
    } finally {
      model.close();
    }
  }
  return exported.get(key)!;
}

function tensorBytes(f: GgufFile, name: string): Uint8Array {
  const t = f.tensors.find((x) => x.name === name)!;
  const fd = openSync(f.path, "r");
  try {
    const bytes = new Uint8Array(t.byteLength);
    readTensorBytes(fd, t, 0, bytes);
    return bytes;
  } finally {
    closeSync(fd);
  }
}

const json = (kv: GgufKv | undefined) => JSON.stringify(kv, (_, v) => (typeof v === "bigint" ? String(v) : v));

/** Tensor infos and data equal; metadata equal but for `differs` (and our superweight.* keys). */
function assertLikeFixture(ours: string, fixtureFile: string, differs: string[], sameOrder: boolean) {
  const a = readGgufFile(ours);
  const b = readGgufFile(fixturePath("gguf", fixtureFile));
  const infos = (f: GgufFile) => f.tensors.map((t) => `${t.name} ${t.type.name} [${t.ne}]`);
  if (sameOrder) assert.deepEqual(infos(a), infos(b));
  else assert.deepEqual(infos(a).sort(), infos(b).sort());
  for (const t of b.tensors)
    assert.ok(Buffer.from(tensorBytes(a, t.name)).equals(tensorBytes(b, t.name)), `${fixtureFile}: ${t.name} bytes`);
  const unequal = [...new Set([...a.metadata.keys(), ...b.metadata.keys()])].filter(
    (k) => !k.startsWith("superweight.") && json(a.metadata.get(k)) !== json(b.metadata.get(k)),
  );
  assert.deepEqual(unequal.sort(), [...differs].sort(), `${fixtureFile}: metadata keys that differ`);
  assert.equal(a.version, 3);
}

// The fixture converter's cosmetic keys (from its --model-name and the parameter count) are not written.
const COSMETIC = ["general.version", "general.basename", "general.size_label"];

for (const type of ["F32", "F16", "Q8_0", "Q6_K", "Q4_0", "Q4_K_M"] as const) {
  test(
    `${PLANTED} ${type}: llama.cpp's tensor data byte for byte, its types and order`,
    { skip: skipWithoutFixtures },
    () => {
      const { path } = exportFixture(PLANTED, { ftype: type });
      // llama-quantize writes llama.cpp's tensor order (as we do); the converter's F32/F16 files its own
      assertLikeFixture(path, `${PLANTED}.${type}.gguf`, COSMETIC, type !== "F32" && type !== "F16");
    },
  );
}

test(
  `${PLANTED} Q4_K_M keeping the super weight's tensor at F16: llama.cpp's own such file, byte for byte`,
  { skip: skipWithoutFixtures },
  () => {
    const { path, result } = exportFixture(PLANTED, { ftype: "Q4_K_M", keepSuper: true, keepType: "F16" });
    assertLikeFixture(path, `${PLANTED}.Q4_K_M-keep-sw-F16.gguf`, COSMETIC, true);
    const md = readGgufFile(path).metadata;
    assert.deepEqual(md.get("superweight.version"), { type: "UINT32", value: 1 });
    assert.deepEqual(md.get("superweight.super_weights"), { type: "ARRAY", itemType: "STRING", value: ["1:40:300"] });
    assert.deepEqual(md.get("superweight.original_values"), { type: "ARRAY", itemType: "FLOAT32", value: [2.21875] });
    assert.equal(
      md.get("superweight.recipe")!.value,
      "Q4_K_M; tensors holding super weights at F16 " +
        "(blk.1.ffn_down.weight), every other tensor at its stock type; clip none",
    );
    assert.deepEqual(
      result.superWeights.map((w) => [w.type, w.stored]),
      [["F16", 2.21875]],
    );
  },
);

test(
  `${PLANTED} Q4_K_M keeping at Q8_0: only blk.1.ffn_down changes; it reads back as llama.cpp's Q8_0 file has it`,
  { skip: skipWithoutFixtures },
  () => {
    const { path, result } = exportFixture(PLANTED, { ftype: "Q4_K_M", keepSuper: true, keepType: "Q8_0" });
    const ours = readGgufFile(path);
    const stock = readGgufFile(fixturePath("gguf", `${PLANTED}.Q4_K_M.gguf`));
    const q8 = readGgufFile(fixturePath("gguf", `${PLANTED}.Q8_0.gguf`));
    for (const t of stock.tensors) {
      const from = t.name === "blk.1.ffn_down.weight" ? q8 : stock;
      assert.ok(Buffer.from(tensorBytes(ours, t.name)).equals(tensorBytes(from, t.name)), t.name);
    }
    const sw = expectedOf(`${PLANTED}.Q8_0`).superWeights[0];
    assert.deepEqual(
      result.superWeights.map((w) => [w.type, w.stored, w.value]),
      [["Q8_0", Math.fround(sw.dequantized), sw.original]],
    );
    assert.ok(Math.abs(result.superWeights[0].error - 1.1e-4) < 1e-5);
  },
);

for (const fixture of ["qwen2-bf16", "phi3-bf16"]) {
  test(
    `${fixture} F32: llama.cpp's converter output, byte for byte (stand-in vocabulary included)`,
    { skip: skipWithoutFixtures },
    () => {
      const { path } = exportFixture(fixture, { ftype: "F32" });
      assertLikeFixture(path, `${fixture}.F32.gguf`, ["general.size_label"], false);
    },
  );
}

test(
  "bytes-llama-6m Q8_0 with its tokenizer.json: llama.cpp's tensor data; ggufTokenizerMetadata's tokenizer keys",
  { skip: skipWithoutFixtures },
  () => {
    const { path, result } = exportFixture("bytes-llama-6m", { ftype: "Q8_0", standIn: false });
    assert.equal(result.vocabulary, "tokenizer.json");
    // the fixture generator wrote one stand-in merge and add_bos false; the tokenizer.json has no merges and adds <s>
    assertLikeFixture(
      path,
      "bytes-llama-6m.Q8_0.gguf",
      ["general.basename", "general.size_label", "tokenizer.ggml.merges", "tokenizer.ggml.add_bos_token"],
      true,
    );
    const md = readGgufFile(path).metadata;
    const folder = fixturePath("bytes-llama-6m");
    const written = ggufTokenizerMetadata(
      JSON.parse(readFileSync(join(folder, "tokenizer.json"), "utf8")),
      JSON.parse(readFileSync(join(folder, "tokenizer_config.json"), "utf8")),
      "tokenizer.json",
    );
    for (const e of written) assert.deepEqual((md.get(e.key) as { value: unknown }).value, e.value, e.key);
    // 688 is not a multiple of 32: every ffn_down is F16 whatever the recipe
    const down = result.tensors.filter((t) => t.name.endsWith("ffn_down.weight"));
    assert.deepEqual(
      down.map((t) => t.type),
      Array(8).fill("F16"),
    );
  },
);

test(
  `${PLANTED} Q4_K_M read back by the project's reader: exactly what the quantizer made, transforms undone`,
  { skip: skipWithoutFixtures },
  () => {
    const { path, result } = exportFixture(PLANTED, { ftype: "Q4_K_M", keepSuper: true, keepType: "Q8_0" });
    const model = Model.open(fixturePath(PLANTED));
    const back = GgufCheckpoint.open(path);
    try {
      for (const t of result.tensors) {
        const hf = t.hf!;
        const src = model.read(hf);
        const rows = t.ne.length === 2 ? t.ne[1] : 1;
        const cols = t.ne[0];
        // the converter's q/k permutation, from the README: GGUF row h·hd + 2i + j = HF row h·hd + j·hd/2 + i
        const heads = hf.endsWith("q_proj.weight") ? 4 : hf.endsWith("k_proj.weight") ? 2 : 0;
        const hfRow = (g: number) => {
          if (!heads) return g;
          const hd = rows / heads,
            h = Math.floor(g / hd),
            r = g % hd;
          return h * hd + (r % 2) * (hd / 2) + Math.floor(r / 2);
        };
        const stored = new Float32Array(src.length);
        for (let g = 0; g < rows; g++) stored.set(src.subarray(hfRow(g) * cols, (hfRow(g) + 1) * cols), g * cols);
        const bytes = new Uint8Array(quantizedSize(t.type, stored.length));
        quantizeRow(t.type, stored, bytes);
        const deq = new Float32Array(stored.length);
        dequantize(deq, bytes, ggmlTypeByName(t.type)!, deq.length);
        const expected = new Float32Array(deq.length);
        for (let g = 0; g < rows; g++) expected.set(deq.subarray(g * cols, (g + 1) * cols), hfRow(g) * cols);
        const read = back.read(hf);
        assert.deepEqual(new Uint32Array(read.buffer), new Uint32Array(expected.buffer), `${t.name} (${t.type})`);
      }
    } finally {
      back.close();
      model.close();
    }
  },
);

test(
  `${PLANTED} Q4_K_M through Model.open and forward: expected.json's NLL for llama.cpp's own file`,
  { skip: skipWithoutFixtures },
  async () => {
    const { path } = exportFixture(PLANTED, { ftype: "Q4_K_M" });
    const e = expectedOf(`${PLANTED}.Q4_K_M`);
    const model = Model.open(path);
    try {
      const out = await forward(model, e.input_ids, { head: { logits: true } });
      assert.ok(toleranceUsed(out.logits!, e.logits.flat()) <= 1);
    } finally {
      model.close();
    }
  },
);

// Every other architecture the converter handles: written here, read back, run against the checkpoint's reference.
const ROUND_TRIP: [string, string][] = [
  ["llama-f32", "F32"],
  ["llama3-gqa-bf16", "F32"],
  ["mistral-f16", "F32"],
  ["mistral-window-f32", "F32"],
  ["olmo-f32", "F32"],
  ["gemma-bf16", "F32"],
  ["gpt2-f32", "F32"],
  ["stories260k", "F32"],
  ["llama-default-rope-bf16", "BF16"],
  ["planted-llama-bf16", "BF16"],
  ["planted-llama-f16", "F16"],
];
for (const [fixture, type] of ROUND_TRIP) {
  test(`${fixture} → GGUF ${type} → Model.open: reference.json's logits`, { skip: skipWithoutFixtures }, async () => {
    const { path } = exportFixture(fixture, { ftype: type as "F32" });
    const ref = readReference(fixture);
    const model = Model.open(path);
    try {
      const out = await forward(model, ref.input_ids, { head: { logits: true } });
      const { abs, rel } = ref.tolerance;
      assert.ok(toleranceUsed(out.logits!, ref.logits.flat(), abs, rel) <= 1, fixture);
    } finally {
      model.close();
    }
  });
}

test(
  "llama3 rope_freqs.weight: the converter's factors (1 at high frequency, the factor at low, smoothed between)",
  { skip: skipWithoutFixtures },
  () => {
    const cfg = JSON.parse(readFileSync(fixturePath("llama3-gqa-bf16", "config.json"), "utf8"));
    const { rope_scaling: s, rope_theta: theta } = cfg;
    const dim = cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads;
    const factors = ropeFactors({
      theta,
      dim,
      scaling: {
        type: "llama3",
        factor: s.factor,
        lowFreqFactor: s.low_freq_factor,
        highFreqFactor: s.high_freq_factor,
        originalMaxPositions: s.original_max_position_embeddings,
      },
    })!;
    assert.equal(factors.length, dim / 2);
    // wavelength 2π·θ^(2i/d) against original / high_freq_factor and original / low_freq_factor, in float64
    for (let i = 0; i < dim / 2; i++) {
      const wavelen = 2 * Math.PI * theta ** ((2 * i) / dim);
      const original = s.original_max_position_embeddings;
      const smooth = (original / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      const expected =
        wavelen < original / s.high_freq_factor
          ? 1
          : wavelen > original / s.low_freq_factor
            ? s.factor
            : 1 / ((1 - smooth) / s.factor + smooth);
      assert.ok(Math.abs(factors[i] - expected) <= 1e-6 * expected, `factor ${i}: ${factors[i]} vs ${expected}`);
    }
    assert.ok(
      factors.some((x) => x !== 1),
      "the scaling applies",
    );
  },
);

test("what llama.cpp cannot run is refused before anything is written", { skip: skipWithoutFixtures }, () => {
  const before = readdirSync(dir).length;
  const model = Model.open(fixturePath("gpt2-layerscale-f32"));
  try {
    assert.throws(
      () => exportModel(model, { ftype: "F32" }),
      (e: unknown) =>
        e instanceof CheckpointError &&
        e.code === "GGUF_EXPORT_UNSUPPORTED" &&
        /scales attention scores/.test(e.message),
    );
  } finally {
    model.close();
  }
  const planted = Model.open(fixturePath(PLANTED));
  try {
    assert.throws(
      () => exportModel(planted, { ftype: "Q8_0", standIn: false }),
      (e: unknown) =>
        e instanceof CheckpointError && e.code === "GGUF_EXPORT_NO_TOKENIZER" && /--stand-in-vocab/.test(e.message),
    );
    assert.throws(() => exportModel(planted, { ftype: "Q8_0", name: "my-Phi3-test" }), /Phi-3's special tokens/);
  } finally {
    planted.close();
  }
  assert.equal(readdirSync(dir).length, before);
});

// ---- tiny checkpoints built here ----

const TINY = {
  model_type: "llama",
  hidden_size: 64,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 128,
  num_hidden_layers: 1,
  vocab_size: 40,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
  bos_token_id: 1,
  eos_token_id: 2,
};

/** Seeded uniform weights in ±0.035 (norms 1), with `edit` applied to down_proj. */
function writeTinyModel(folder: string, edit: (down: Float32Array) => void = () => {}): string {
  const { hidden_size: H, intermediate_size: I, vocab_size: V } = TINY;
  const rand = seeded(7);
  const t = (name: string, shape: number[], norm = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = norm ? new Float32Array(n).fill(1) : rand(n, 0.035);
    if (name.endsWith("down_proj.weight")) edit(data);
    return { name, dtype: "F32" as const, shape, data };
  };
  const p = "model.layers.0.";
  writeCheckpoint(
    folder,
    TINY,
    [
      t("model.embed_tokens.weight", [V, H]),
      t(`${p}input_layernorm.weight`, [H], true),
      t(`${p}self_attn.q_proj.weight`, [H, H]),
      t(`${p}self_attn.k_proj.weight`, [H, H]),
      t(`${p}self_attn.v_proj.weight`, [H, H]),
      t(`${p}self_attn.o_proj.weight`, [H, H]),
      t(`${p}post_attention_layernorm.weight`, [H], true),
      t(`${p}mlp.gate_proj.weight`, [I, H]),
      t(`${p}mlp.up_proj.weight`, [I, H]),
      t(`${p}mlp.down_proj.weight`, [H, I]),
      t("model.norm.weight", [H], true),
      t("lm_head.weight", [V, H]),
    ],
    1,
  );
  return folder;
}

test("clipping: Q8_0 bytes equal quantizing the weights clipped by the definition, the super weight held out", () => {
  const SW = { row: 5, column: 37, value: 1.5 };
  const folder = writeTinyModel(join(dir, "tiny-clip"), (down) => {
    down[SW.row * 128 + SW.column] = SW.value; // a super weight …
    down[SW.row * 128 + 40] = 0.6; // … and an outlier in its block, and one elsewhere
    down[9 * 128 + 100] = -0.8;
  });
  const model = Model.open(folder);
  try {
    const sw: SuperWeight = { layer: 0, ...SW, tensor: "model.layers.0.mlp.down_proj.weight" };
    const down = model.read(sw.tensor);
    const { path } = exportModel(model, { ftype: "Q8_0", clip: { method: "zscore", k: 2 }, superWeights: [sw] });
    // by hand: per 32-block of each row, T = mean + 2·std (Bessel) of |w| over the block without the super weight
    const clipped = down.slice();
    for (let b = 0; b < clipped.length; b += 32) {
      const free = [...clipped.subarray(b, b + 32)]
        .map((v, j) => ({ v, at: b + j }))
        .filter((x) => x.at !== SW.row * 128 + SW.column);
      const m = free.reduce((s, x) => s + Math.abs(x.v), 0) / free.length;
      const sd = Math.sqrt(free.reduce((s, x) => s + (Math.abs(x.v) - m) ** 2, 0) / (free.length - 1));
      const T = Math.fround(m + 2 * sd);
      for (const x of free) clipped[x.at] = Math.min(T, Math.max(-T, x.v));
    }
    assert.equal(clipped[SW.row * 128 + SW.column], SW.value);
    assert.ok(clipped[SW.row * 128 + 40] < 0.6 && clipped[9 * 128 + 100] > -0.8, "the outliers are clipped");
    const expected = new Uint8Array(quantizedSize("Q8_0", clipped.length));
    quantizeRow("Q8_0", clipped, expected);
    assert.ok(Buffer.from(tensorBytes(readGgufFile(path), "blk.0.ffn_down.weight")).equals(expected));
    // F32 tensors (norms) are never clipped; the unclipped export differs only where clipping bit
    const plain = exportModel(model, { ftype: "Q8_0", superWeights: [sw] });
    assert.ok(!Buffer.from(tensorBytes(readGgufFile(plain.path), "blk.0.ffn_down.weight")).equals(expected));
  } finally {
    model.close();
  }
});

test("tensor-pct / block-pct clip to the k-th largest |w| of the tensor / of each block, super weight held out", () => {
  const folder = writeTinyModel(join(dir, "tiny-pct"), (down) => {
    down[3 * 128 + 64] = 2; // the super weight
    down[7 * 128 + 1] = 0.9;
    down[8 * 128 + 2] = -0.7;
  });
  const model = Model.open(folder);
  try {
    const sw: SuperWeight = { layer: 0, row: 3, column: 64, value: 2, tensor: "model.layers.0.mlp.down_proj.weight" };
    const down = model.read(sw.tensor);
    const sorted = [...down]
      .map(Math.abs)
      .filter((_, i) => i !== 3 * 128 + 64)
      .sort((a, b) => b - a);
    // 8191 weights besides the super weight; tensor-pct F = 2.5/8191: k = ⌊8191·F⌋ = 2 → T = 2nd largest |w|, 0.7
    const clip = { method: "tensor-pct", fraction: 2.5 / 8191 } as const;
    const { path } = exportModel(model, { ftype: "Q8_0", clip, superWeights: [sw] });
    assert.equal(sorted[1], Math.fround(0.7));
    const clipped = down.map((v, i) => (i === 3 * 128 + 64 ? v : Math.max(-sorted[1], Math.min(sorted[1], v))));
    const expected = new Uint8Array(quantizedSize("Q8_0", clipped.length));
    quantizeRow("Q8_0", clipped, expected);
    assert.ok(Buffer.from(tensorBytes(readGgufFile(path), "blk.0.ffn_down.weight")).equals(expected));
    // block-pct F = 0: k = 1, T = the block's own largest |w|: nothing changes
    const same = exportModel(model, { ftype: "Q8_0", clip: { method: "block-pct", fraction: 0 }, superWeights: [sw] });
    const plain = exportModel(model, { ftype: "Q8_0", superWeights: [sw] });
    assert.ok(
      Buffer.from(tensorBytes(readGgufFile(same.path), "blk.0.ffn_down.weight")).equals(
        tensorBytes(readGgufFile(plain.path), "blk.0.ffn_down.weight"),
      ),
    );
  } finally {
    model.close();
  }
});

test("a failure while writing leaves nothing behind: no file, no temporary", () => {
  const folder = writeTinyModel(join(dir, "tiny-nan"), (down) => (down[777] = NaN));
  const out = mkdtempSync(join(dir, "out-"));
  const model = Model.open(folder);
  try {
    const plan = planGgufExport(model, {
      ftype: "Q8_0",
      keepSuper: false,
      keepType: "Q8_0",
      clip: { method: "none" },
      superWeights: [],
      standIn: true,
    });
    assert.throws(
      () => writeGgufExport(plan, join(out, "x.gguf")),
      (e: unknown) =>
        e instanceof UserError && /model\.layers\.0\.mlp\.down_proj\.weight.*value 777 is NaN/.test(e.message),
    );
    assert.deepEqual(readdirSync(out), []);
  } finally {
    model.close();
  }
});

test("a tokenizer.json llama.cpp cannot express is refused at planning, with its file named", () => {
  const folder = writeTinyModel(join(dir, "tiny-wordpiece"));
  const tokenizer = { model: { type: "WordPiece", vocab: { "[UNK]": 0, a: 1 }, unk_token: "[UNK]" }, added_tokens: [] };
  writeFileSync(join(folder, "tokenizer.json"), JSON.stringify(tokenizer));
  const model = Model.open(folder);
  try {
    assert.throws(
      () =>
        planGgufExport(model, {
          ftype: "Q8_0",
          keepSuper: false,
          keepType: "Q8_0",
          clip: { method: "none" },
          superWeights: [],
          standIn: true,
        }),
      (e: unknown) =>
        e instanceof CheckpointError &&
        e.code === "TOKENIZER_GGUF_UNSUPPORTED_MODEL" &&
        e.message.startsWith(join(folder, "tokenizer.json")),
    );
  } finally {
    model.close();
  }
});

test(
  `${PLANTED} compare: the stock and keep-at-F16 rows give expected.json's perplexities for llama.cpp's files`,
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath(PLANTED));
    try {
      const ref = readReference(PLANTED);
      const recipes = standardRecipes("Q4_K_M", "Q8_0", { method: "none" }, [plantedSuperWeight(model)]);
      assert.deepEqual(
        recipes.map((r) => r.label),
        ["stock", "keep-super Q8_0", "keep-super F16"],
      );
      const c = await compareGgufRecipes(model, recipes, {
        ids: ref.input_ids,
        window: 128,
        standIn: true,
        name: "fixture",
      });
      assert.ok(Math.abs(c.checkpoint.perplexity - ref.perplexity) < 1e-5);
      const close = (row: string, file: string) => {
        const r = c.recipes.find((x) => x.label === row)!;
        const want = expectedOf(`${PLANTED}.${file}`).perplexity;
        assert.ok(Math.abs(r.perplexity - want) < 1e-5, `${row}: ${r.perplexity} vs ${want}`);
        return r;
      };
      const stock = close("stock", "Q4_K_M");
      const f16 = close("keep-super F16", "Q4_K_M-keep-sw-F16");
      const q8 = c.recipes[1];
      // tensor bytes: the stock file's, plus the super weight's 512 × 256 matrix at Q8_0 / F16 instead of Q4_K
      assert.equal(q8.tensorBytes - stock.tensorBytes, (256 * 512 * 34) / 32 - (256 * 512 * 144) / 256);
      assert.equal(f16.tensorBytes - stock.tensorBytes, 256 * 512 * 2 - (256 * 512 * 144) / 256);
      assert.deepEqual(
        q8.superWeights.map((w) => w.type),
        ["Q8_0"],
      );
    } finally {
      model.close();
    }
  },
);

test("streaming: a 16M-value embedding is read and written in blocks of rows, never whole", async () => {
  // a synthetic source: values computed on demand, every read recorded
  const H = 256,
    V = 65536,
    I = 512;
  const config = {
    ...TINY,
    hidden_size: H,
    intermediate_size: I,
    vocab_size: V,
    num_attention_heads: 4,
    num_key_value_heads: 4,
  };
  const shapes = new Map<string, number[]>([
    ["model.embed_tokens.weight", [V, H]],
    ["model.norm.weight", [H]],
    ["lm_head.weight", [V, H]],
  ]);
  const p = "model.layers.0.";
  for (const [n, s] of [
    ["input_layernorm", [H]],
    ["post_attention_layernorm", [H]],
    ["self_attn.q_proj", [H, H]],
    ["self_attn.k_proj", [H, H]],
    ["self_attn.v_proj", [H, H]],
    ["self_attn.o_proj", [H, H]],
    ["mlp.gate_proj", [I, H]],
    ["mlp.up_proj", [I, H]],
    ["mlp.down_proj", [H, I]],
  ] as [string, number[]][])
    shapes.set(`${p}${n}.weight`, s);
  let largestRead = 0;
  const source: TensorSource = {
    path: join(dir, "synthetic"),
    config,
    configFile: join(dir, "synthetic", "config.json"),
    names: () => [...shapes.keys()],
    info: (name) => {
      const shape = shapes.get(name)!;
      return { name, shape, dtype: "F32", bytes: 4 * shape.reduce((a, b) => a * b, 1) };
    },
    readRows(name, r0, r1, out) {
      const shape = shapes.get(name)!;
      const row = shape.length === 2 ? shape[1] : 1;
      const n = (r1 - r0) * row;
      largestRead = Math.max(largestRead, n);
      const values = out ?? new Float32Array(n);
      for (let i = 0; i < n; i++) values[i] = shape.length === 1 ? 1 : Math.sin(r0 * row + i) / 16;
      return values;
    },
    fileOf: () => join(dir, "synthetic"),
    close() {},
  };
  const model = Model.fromSource(source);
  const { result } = exportModel(model, { ftype: "F16" });
  assert.equal(result.tensors.find((t) => t.name === "token_embd.weight")!.bytes, V * H * 2);
  assert.ok(largestRead <= 1 << 22 && largestRead < V * H, `largest read ${largestRead} values`);
});
