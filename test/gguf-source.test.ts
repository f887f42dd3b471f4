// GgufCheckpoint against the references: llama.cpp's F32 files read back as the HF checkpoints they were
// converted from, bit for bit, with a config that agrees with config.json; the quantized files' super weight
// and its block-mates as expected.json states; the other architectures (gemma, olmo, gpt2, llama3 rope
// factors) through files converted here by tensor-map.json's documented transforms; faults by code.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { CheckpointError } from "../src/errors.js";
import { readGgufFile, readTensorBytes, shardPath, type GgufKv } from "../src/gguf/container.js";
import { ggufRowOf, GgufCheckpoint, shortestFloat32 } from "../src/gguf/source.js";
import { writeGguf, type GgufTensorToWrite } from "../src/gguf/writer.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "sw-gguf-source-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const gguf = (name: string) => fixturePath("gguf", name);
const expectedOf = (file: string) => JSON.parse(readFileSync(gguf(file.replace(/\.gguf$/, ".expected.json")), "utf8"));

function assertBitsEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const i = a.findIndex((x, k) => x !== b[k]);
  assert.equal(i, -1, `${what}: first difference at ${i}: ${actual[i]} vs ${expected[i]}`);
}

/** The config.json fields a forward pass reads, with transformers' defaults filled in. */
function forwardFields(c: Record<string, any>): Record<string, unknown> {
  if (c.model_type === "gpt2")
    return {
      model_type: "gpt2",
      n_embd: c.n_embd,
      n_head: c.n_head,
      n_layer: c.n_layer,
      n_positions: c.n_positions,
      n_inner: c.n_inner ?? 4 * c.n_embd,
      layer_norm_epsilon: c.layer_norm_epsilon,
      vocab_size: c.vocab_size,
      activation_function: c.activation_function,
    };
  const heads = c.num_attention_heads;
  return {
    model_type: c.model_type,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: c.num_key_value_heads ?? heads,
    head_dim: c.head_dim ?? c.hidden_size / heads,
    rms_norm_eps: c.model_type === "olmo" ? undefined : c.rms_norm_eps,
    rope_theta: c.rope_theta ?? 10000,
    max_position_embeddings: c.max_position_embeddings,
    vocab_size: c.vocab_size,
    tie_word_embeddings: c.tie_word_embeddings ?? c.model_type === "gemma",
    act: c.model_type === "gemma" ? c.hidden_activation : c.hidden_act,
    rope_scaling: c.rope_scaling?.rope_type ?? null,
    sliding_window: c.model_type === "phi3" ? c.sliding_window : undefined,
    clip_qkv: c.clip_qkv,
    partial_rotary_factor: c.partial_rotary_factor,
  };
}

/** The same fields from a GgufCheckpoint's config. */
function forwardFieldsOf(c: Record<string, any>): Record<string, unknown> {
  const f = forwardFields(c);
  if (c.model_type !== "gpt2") {
    f.act = c.model_type === "gemma" ? c.hidden_activation : c.hidden_act;
    f.rope_scaling = c.rope_scaling === null ? null : c.rope_scaling.rope_type === "frequency_factors" ? "llama3" : "?";
  }
  return f;
}

// ---- llama.cpp's own files ----

const F32_FILES: [string, string][] = [
  ["planted-llama-256.F32.gguf", "planted-llama-256"],
  ["qwen2-bf16.F32.gguf", "qwen2-bf16"],
  ["phi3-bf16.F32.gguf", "phi3-bf16"],
];

test(
  "llama.cpp's F32 files read back as the HF checkpoints, bit for bit, with the same config",
  { skip: skipWithoutFixtures },
  () => {
    for (const [file, folder] of F32_FILES) {
      const src = GgufCheckpoint.open(gguf(file));
      const hf = Checkpoint.open(fixturePath(folder));
      try {
        assert.deepEqual(src.names().sort(), hf.names().sort(), file);
        for (const name of hf.names()) {
          assert.deepEqual(src.info(name).shape, hf.info(name).shape, `${file} ${name}`);
          assert.equal(src.info(name).dtype, "F32");
          assertBitsEqual(src.readRows(name, 0, hf.info(name).shape[0]), hf.read(name), `${file} ${name}`);
        }
        assert.deepEqual(forwardFieldsOf(src.config), forwardFields(hf.config), file);
        assert.equal(src.config.bos_token_id, hf.config.bos_token_id);
        assert.equal(src.config.eos_token_id, hf.config.eos_token_id);
      } finally {
        src.close();
        hf.close();
      }
    }
  },
);

test(
  "partial row ranges of permuted q/k equal the HF rows (across head boundaries, into a given buffer)",
  { skip: skipWithoutFixtures },
  () => {
    const src = GgufCheckpoint.open(gguf("planted-llama-256.F32.gguf"));
    const hf = Checkpoint.open(fixturePath("planted-llama-256"));
    try {
      for (const [name, r0, r1] of [
        ["model.layers.2.self_attn.q_proj.weight", 0, 1],
        ["model.layers.2.self_attn.q_proj.weight", 31, 33],
        ["model.layers.2.self_attn.q_proj.weight", 5, 250],
        ["model.layers.0.self_attn.k_proj.weight", 63, 65],
        ["model.layers.0.self_attn.k_proj.weight", 100, 128],
      ] as [string, number, number][]) {
        const buf = new Float32Array((r1 - r0) * 256 + 3);
        const got = src.readRows(name, r0, r1, buf);
        assert.equal(got, buf, "the given buffer is filled and returned");
        assertBitsEqual(got.subarray(0, (r1 - r0) * 256), hf.readRows(name, r0, r1), `${name} [${r0}, ${r1})`);
      }
      // The map itself: GGUF rows 0, 1, 2, 3 of a 64-row head are HF rows 0, 32, 1, 33 (README).
      assert.deepEqual(
        [0, 32, 1, 33, 64, 96].map((r) => ggufRowOf(r, 64)),
        [0, 1, 2, 3, 64, 65],
      );
    } finally {
      src.close();
      hf.close();
    }
  },
);

test("every fixture: HF names, GGUF names and types as expected.json lists them", { skip: skipWithoutFixtures }, () => {
  const files = readdirSync(fixturePath("gguf")).filter((f) => f.endsWith(".gguf"));
  assert.equal(files.length, 10);
  for (const file of files) {
    const src = GgufCheckpoint.open(gguf(file));
    try {
      const tensors = expectedOf(file).gguf.tensors.filter((t: any) => t.hf !== null);
      assert.deepEqual(src.names().sort(), tensors.map((t: any) => t.hf).sort(), file);
      for (const t of tensors) {
        assert.equal(src.ggufName(t.hf), t.name);
        const info = src.info(t.hf);
        assert.equal(info.dtype, t.type);
        assert.equal(info.bytes, t.nbytes);
        assert.deepEqual(info.shape, [...t.ne].reverse());
      }
    } finally {
      src.close();
    }
  }
});

test(
  "quantized files: the super weight and its block-mates come out as expected.json states",
  { skip: skipWithoutFixtures },
  () => {
    const hf = Checkpoint.open(fixturePath("planted-llama-256"));
    let checked = 0;
    try {
      const planted = readdirSync(fixturePath("gguf")).filter((f) => f.startsWith("planted") && f.endsWith(".gguf"));
      for (const file of planted) {
        const e = expectedOf(file);
        const src = GgufCheckpoint.open(gguf(file));
        try {
          for (const sw of e.superWeights) {
            const { hfTensor: name, row, column } = sw;
            const [rows, cols] = src.info(name).shape;
            const all = src.readRows(name, 0, rows);
            const original = hf.read(name);
            const at = (r: number, c: number) => all[r * cols + c];
            assert.equal(src.info(name).dtype, sw.ggmlType, file);
            assert.equal(at(row, column), Math.fround(sw.dequantized), `${file}: super weight`);
            assert.equal(original[row * cols + column], sw.original);
            const mates = (c0: number, c1: number, skip: (c: number) => boolean) => {
              const cs = [];
              for (let c = c0; c <= c1; c++) if (!skip(c)) cs.push(c);
              return stats(
                cs.map((c) => at(row, c)),
                cs.map((c) => original[row * cols + c]),
              );
            };
            const b32 = mates(sw.block32.columns[0], sw.block32.columns[1], (c) => c === column);
            close(b32, sw.block32, `${file} block32`);
            if (sw.superBlock256) {
              const [lo, hi] = sw.block32.columns;
              close(
                mates(sw.superBlock256.columns[0], sw.superBlock256.columns[1], (c) => c >= lo && c <= hi),
                sw.superBlock256,
                `${file} superBlock256`,
              );
            }
            // "Rest of the row": outside the super weight's own block (32, or 256 for the K-quants).
            const bs = Math.max(32, sw.blockSize);
            const first = Math.floor(column / bs) * bs;
            const rest = mates(0, cols - 1, (c) => c >= first && c < first + bs);
            assert.ok(
              Math.abs(rest.rmsError - sw.restOfRowRmsError) <= 1e-6 * sw.restOfRowRmsError + 1e-12,
              `${file} rest of row: ${rest.rmsError} vs ${sw.restOfRowRmsError}`,
            );
            let sq = 0;
            for (let i = 0; i < all.length; i++) if (Math.floor(i / cols) !== row) sq += (all[i] - original[i]) ** 2;
            const others = Math.sqrt(sq / ((rows - 1) * cols));
            assert.ok(
              Math.abs(others - sw.otherRowsRmsError) <= 1e-6 * sw.otherRowsRmsError + 1e-12,
              `${file} other rows: ${others} vs ${sw.otherRowsRmsError}`,
            );

            // The stored block: its type, extent, and values = what readRows gives there.
            const block = src.blockOf(name, row, column);
            assert.equal(block.ggmlType, sw.ggmlType);
            assert.equal(block.blockSize, sw.blockSize);
            assert.equal(block.ggufTensor, sw.ggufTensor);
            assert.equal(block.firstColumn, Math.floor(column / sw.blockSize) * sw.blockSize);
            assert.equal(block.ggufRow * cols + column, sw.ggufElement);
            assertBitsEqual(
              block.values,
              all.subarray(row * cols + block.firstColumn, row * cols + block.firstColumn + block.blockSize),
              `${file} blockOf`,
            );
            checked++;
          }
        } finally {
          src.close();
        }
      }
    } finally {
      hf.close();
    }
    assert.equal(checked, 7);
  },
);

interface Stats {
  n: number;
  rmsOriginal: number;
  rmsError: number;
  maxAbsError: number;
  zeroed: number;
  distinctValues: number;
}

function stats(deq: number[], orig: number[]): Stats {
  const rms = (xs: number[]) => Math.sqrt(xs.reduce((a, x) => a + x * x, 0) / xs.length);
  const err = deq.map((d, i) => d - orig[i]);
  return {
    n: deq.length,
    rmsOriginal: rms(orig),
    rmsError: rms(err),
    maxAbsError: Math.max(...err.map(Math.abs)),
    zeroed: deq.filter((d) => d === 0).length,
    distinctValues: new Set(deq).size,
  };
}

/** Counts exactly; the 9-significant-digit figures to 1e-6 relative. */
function close(got: Stats, want: Stats, what: string): void {
  assert.deepEqual([got.n, got.zeroed, got.distinctValues], [want.n, want.zeroed, want.distinctValues], what);
  for (const k of ["rmsOriginal", "rmsError", "maxAbsError"] as const)
    assert.ok(Math.abs(got[k] - want[k]) <= 1e-6 * Math.abs(want[k]) + 1e-12, `${what} ${k}: ${got[k]} vs ${want[k]}`);
}

test(
  "a mixed quantized file (Q8_0 + F16 + F32, permuted q/k) reads consistently in any row range",
  { skip: skipWithoutFixtures },
  () => {
    const src = GgufCheckpoint.open(gguf("bytes-llama-6m.Q8_0.gguf"));
    try {
      assert.equal(src.info("model.layers.3.mlp.down_proj.weight").dtype, "F16");
      for (const name of ["model.layers.3.self_attn.q_proj.weight", "model.layers.3.mlp.down_proj.weight"]) {
        const [rows, cols] = src.info(name).shape;
        const all = src.read(name);
        for (const [r0, r1] of [
          [0, 1],
          [17, 90],
          [rows - 3, rows],
        ])
          assertBitsEqual(src.readRows(name, r0, r1), all.subarray(r0 * cols, r1 * cols), `${name} [${r0}, ${r1})`);
      }
      assert.deepEqual(src.config.vocab_size, 258);
      assert.equal(src.config.bos_token_id, 256);
    } finally {
      src.close();
    }
  },
);

// ---- other architectures: files converted here as tensor-map.json documents llama.cpp's converter ----

interface MapRule {
  gguf: string;
  hf: string | null;
  transform: string | null;
}

/** HF checkpoint folder → a GGUF file, by tensor-map.json's names and transforms (F32 data). */
function convert(folder: string, arch: string, out: string, extra: GgufTensorToWrite[] = []): void {
  const map = JSON.parse(readFileSync(gguf("tensor-map.json"), "utf8")).architectures[arch];
  const rules: MapRule[] = [...map.global, ...map.block];
  const hf = Checkpoint.open(fixturePath(folder));
  const c = hf.config as Record<string, any>;
  const tensors: GgufTensorToWrite[] = [];
  for (const name of hf.names()) {
    let target: string | undefined;
    let transform: string | null = null;
    for (const rule of rules) {
      if (!rule.hf) continue;
      const m = new RegExp(`^${rule.hf.replace(/\./g, "\\.").replace("N", "(\\d+)")}$`).exec(name);
      if (m) {
        target = rule.gguf.replace("N", m[1] ?? "");
        transform = rule.transform;
      }
    }
    assert.ok(target, `${folder}: no GGUF name for ${name}`);
    const shape = hf.info(name).shape;
    let w = hf.read(name);
    let ne = [...shape].reverse();
    if (transform === "plus_one") w = w.map((x) => Math.fround(x + 1));
    if (transform === "permute_q" || transform === "permute_k") {
      const n = transform === "permute_q" ? c.num_attention_heads : (c.num_key_value_heads ?? c.num_attention_heads);
      const [rows, cols] = shape;
      const hd = rows / n;
      const g = new Float32Array(w.length);
      // GGUF row h·hd + 2i + j = HF row h·hd + j·hd/2 + i
      for (let h = 0; h < n; h++)
        for (let i = 0; i < hd / 2; i++)
          for (let j = 0; j < 2; j++) {
            const from = h * hd + j * (hd / 2) + i;
            g.set(w.subarray(from * cols, (from + 1) * cols), (h * hd + 2 * i + j) * cols);
          }
      w = g;
    }
    if (transform === "transpose") {
      const [inp, outp] = shape; // Conv1D [in, out] → the [out, in] matrix, ne [in, out]
      const t = new Float32Array(w.length);
      for (let i = 0; i < inp; i++) for (let o = 0; o < outp; o++) t[o * inp + i] = w[i * outp + o];
      w = t;
      ne = [inp, outp];
    }
    tensors.push({ name: target!, type: "F32", ne, data: new Uint8Array(w.buffer) });
    if (arch === "gpt2" && target === "token_embd.weight")
      // the converter writes the tied head out as well
      tensors.push({ name: "output.weight", type: "F32", ne, data: new Uint8Array(w.buffer) });
  }
  hf.close();
  const u32 = (v: number): GgufKv => ({ type: "UINT32", value: v });
  const f32 = (v: number): GgufKv => ({ type: "FLOAT32", value: Math.fround(v) });
  const meta: [string, GgufKv][] = [["general.architecture", { type: "STRING", value: arch }]];
  const a = (k: string, v: GgufKv | undefined) => v !== undefined && meta.push([`${arch}.${k}`, v]);
  if (arch === "gpt2") {
    a("block_count", u32(c.n_layer));
    a("context_length", u32(c.n_ctx));
    a("embedding_length", u32(c.n_embd));
    a("feed_forward_length", u32(c.n_inner ?? 4 * c.n_embd));
    a("attention.head_count", u32(c.n_head));
    a("attention.layer_norm_epsilon", f32(c.layer_norm_epsilon));
  } else {
    const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    a("block_count", u32(c.num_hidden_layers));
    a("context_length", u32(c.max_position_embeddings));
    a("embedding_length", u32(c.hidden_size));
    a("feed_forward_length", u32(c.intermediate_size));
    a("attention.head_count", u32(c.num_attention_heads));
    a("attention.head_count_kv", u32(c.num_key_value_heads ?? c.num_attention_heads));
    if (arch !== "gemma") a("rope.freq_base", f32(c.rope_theta));
    if (arch === "olmo") a("attention.layer_norm_epsilon", f32(1e-5));
    else a("attention.layer_norm_rms_epsilon", f32(c.rms_norm_eps));
    if (arch === "olmo" && c.clip_qkv) a("attention.clamp_kqv", f32(c.clip_qkv));
    if (arch === "llama" || arch === "gemma") a("attention.key_length", u32(headDim));
    if (arch === "llama") a("vocab_size", u32(c.vocab_size));
    if (arch === "llama") a("rope.dimension_count", u32(headDim));
  }
  if (c.bos_token_id !== undefined) meta.push(["tokenizer.ggml.bos_token_id", u32(c.bos_token_id)]);
  if (c.eos_token_id !== undefined) meta.push(["tokenizer.ggml.eos_token_id", u32(c.eos_token_id)]);
  writeGguf(out, meta, [...tensors, ...extra]);
}

test(
  "gemma, olmo, gpt2 and llama converted as llama.cpp does read back bit for bit, config agreeing",
  { skip: skipWithoutFixtures },
  () => {
    for (const [folder, arch] of [
      ["gemma-bf16", "gemma"],
      ["olmo-f32", "olmo"],
      ["gpt2-f32", "gpt2"],
      ["stories260k", "llama"],
      ["llama-f32", "llama"],
    ]) {
      const path = join(dir, `${folder}.gguf`);
      convert(folder, arch, path);
      const src = GgufCheckpoint.open(path);
      const hf = Checkpoint.open(fixturePath(folder));
      try {
        for (const name of hf.names()) {
          const want = hf.read(name);
          const info = src.info(name);
          const conv1d = arch === "gpt2" && /\.(c_attn|c_proj|c_fc)\.weight$/.test(name);
          assert.equal(info.layout, conv1d ? "nk" : undefined, name);
          if (conv1d) {
            // Reported as the [out, in] matrix: HF's Conv1D [in, out] transposed.
            const [inp, outp] = hf.info(name).shape;
            assert.deepEqual(info.shape, [outp, inp], name);
            const got = src.readRows(name, 0, outp);
            for (let i = 0; i < inp; i++)
              for (let o = 0; o < outp; o++)
                assert.ok(Object.is(got[o * inp + i], want[i * outp + o]), `${folder} ${name} [${i}, ${o}]`);
          } else {
            assert.deepEqual(info.shape, hf.info(name).shape, `${folder} ${name}`);
            assertBitsEqual(src.readRows(name, 0, info.shape[0]), want, `${folder} ${name}`);
          }
        }
        const extra = src.names().filter((n) => !hf.has(n));
        assert.deepEqual(extra, arch === "gpt2" ? ["lm_head.weight"] : [], folder);
        assert.deepEqual(forwardFieldsOf(src.config), forwardFields(hf.config), folder);
      } finally {
        src.close();
        hf.close();
      }
    }
  },
);

test(
  "Llama-3: rope_freqs.weight becomes rope_scaling frequency_factors and is not listed as a weight",
  { skip: skipWithoutFixtures },
  () => {
    const hf = Checkpoint.open(fixturePath("llama3-gqa-bf16"));
    const c = hf.config as any;
    hf.close();
    // convert_hf_to_gguf.py's llama3 factors, in float32.
    const dim = c.head_dim;
    const s = c.rope_scaling;
    const factors = new Float32Array(dim / 2);
    for (let i = 0; i < dim / 2; i++) {
      const freq = 1 / c.rope_theta ** ((2 * i) / dim);
      const wavelen = (2 * Math.PI) / freq;
      const low = s.original_max_position_embeddings / s.low_freq_factor;
      const high = s.original_max_position_embeddings / s.high_freq_factor;
      const smooth =
        (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      factors[i] = wavelen < high ? 1 : wavelen > low ? s.factor : 1 / ((1 - smooth) / s.factor + smooth);
    }
    const path = join(dir, "llama3.gguf");
    convert("llama3-gqa-bf16", "llama", path, [
      { name: "rope_freqs.weight", type: "F32", ne: [dim / 2], data: new Uint8Array(factors.buffer) },
    ]);
    const src = GgufCheckpoint.open(path);
    try {
      assert.deepEqual(src.config.rope_scaling, { rope_type: "frequency_factors", factors: Array.from(factors) });
      assert.ok(
        factors.some((f) => f !== 1 && f !== s.factor),
        "the test factors include smoothed ones",
      );
      assert.ok(!src.names().includes("rope_freqs.weight"));
      assert.equal(src.config.rope_theta, 500000);
      assert.throws(() => src.info("rope_freqs.weight"), /MISSING|missing/);
    } finally {
      src.close();
    }
    // A rope_freqs of the wrong size is refused.
    const bad = join(dir, "llama3-bad.gguf");
    convert("llama3-gqa-bf16", "llama", bad, [
      { name: "rope_freqs.weight", type: "F32", ne: [dim], data: new Uint8Array(dim * 4) },
    ]);
    throwsCode(() => GgufCheckpoint.open(bad), "BAD_METADATA", "rope_freqs.weight", "F32 [8]");
  },
);

test("a split set reads exactly as the single file it was split from", { skip: skipWithoutFixtures }, () => {
  const whole = gguf("planted-llama-256.Q4_K_M.gguf");
  const f = readGgufFile(whole);
  const fd = openSync(whole, "r");
  const prefix = join(dir, "planted");
  const parts = [f.tensors.slice(0, 10), f.tensors.slice(10, 30), f.tensors.slice(30)];
  parts.forEach((tensors, k) => {
    const split: [string, GgufKv][] = [
      ["split.no", { type: "UINT16", value: k }],
      ["split.count", { type: "UINT16", value: 3 }],
      ["split.tensors.count", { type: "INT32", value: f.tensors.length }],
    ];
    writeGguf(
      shardPath(prefix, k + 1, 3),
      k === 0 ? [...f.metadata, ...split] : split,
      tensors.map((t) => {
        const bytes = new Uint8Array(t.byteLength);
        readTensorBytes(fd, t, 0, bytes);
        return { name: t.name, type: t.type, ne: t.ne, data: bytes };
      }),
    );
  });
  closeSync(fd);
  const a = GgufCheckpoint.open(whole);
  const b = GgufCheckpoint.open(shardPath(prefix, 2, 3));
  try {
    assert.equal(b.files.length, 3);
    assert.deepEqual(b.names().sort(), a.names().sort());
    assert.deepEqual(b.config, a.config);
    for (const name of a.names()) assertBitsEqual(b.read(name), a.read(name), name);
  } finally {
    a.close();
    b.close();
  }
});

// ---- faults ----

function throwsCode(fn: () => unknown, code: string, ...mentions: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
    assert.equal(e.code, code, e.message);
    for (const m of mentions)
      assert.ok(e.message.includes(m), `message should mention ${JSON.stringify(m)}: ${e.message}`);
    return true;
  });
}

const u32 = (v: number): GgufKv => ({ type: "UINT32", value: v });
const llamaMeta = (extra: [string, GgufKv][] = []): [string, GgufKv][] => [
  ["general.architecture", { type: "STRING", value: "llama" }],
  ["llama.block_count", u32(1)],
  ["llama.embedding_length", u32(32)],
  ["llama.feed_forward_length", u32(64)],
  ["llama.attention.head_count", u32(2)],
  ...extra,
];

test("faults: unsupported or missing architecture, unknown tensors, missing metadata, missing tensors", () => {
  let path = join(dir, "mamba.gguf");
  writeGguf(path, [["general.architecture", { type: "STRING", value: "mamba" }]], []);
  throwsCode(
    () => GgufCheckpoint.open(path),
    "UNSUPPORTED_ARCHITECTURE",
    `"mamba"`,
    "llama",
    "qwen2",
    "phi3",
    "gemma",
    "olmo",
    "gpt2",
  );
  path = join(dir, "noarch.gguf");
  writeGguf(path, [], []);
  throwsCode(() => GgufCheckpoint.open(path), "MISSING_METADATA", "general.architecture");
  path = join(dir, "nolayers.gguf");
  writeGguf(path, [["general.architecture", { type: "STRING", value: "llama" }]], []);
  throwsCode(() => GgufCheckpoint.open(path), "MISSING_METADATA", "llama.block_count");
  path = join(dir, "unknown-tensor.gguf");
  writeGguf(path, llamaMeta(), [{ name: "blk.0.attn_q_norm.weight", type: "F32", ne: [16], data: new Uint8Array(64) }]);
  throwsCode(() => GgufCheckpoint.open(path), "UNKNOWN_TENSOR", "blk.0.attn_q_norm.weight", `"llama"`);
  path = join(dir, "layer-out-of-range.gguf");
  writeGguf(path, llamaMeta(), [{ name: "blk.1.ffn_norm.weight", type: "F32", ne: [32], data: new Uint8Array(128) }]);
  throwsCode(() => GgufCheckpoint.open(path), "UNKNOWN_TENSOR", "blk.1.ffn_norm.weight");
  path = join(dir, "bad-heads.gguf");
  writeGguf(path, llamaMeta(), [{ name: "blk.0.attn_q.weight", type: "F32", ne: [32, 6], data: new Uint8Array(768) }]);
  throwsCode(() => GgufCheckpoint.open(path), "BAD_METADATA", "blk.0.attn_q.weight", "2 heads");
  path = join(dir, "ok.gguf");
  writeGguf(path, llamaMeta(), []);
  const src = GgufCheckpoint.open(path);
  throwsCode(() => src.info("model.norm.weight"), "MISSING_TENSOR", "model.norm.weight");
  throwsCode(() => src.ggufName("lm_head.weight"), "MISSING_TENSOR");
  src.close();
});

test("a type without a dequantizer: listed and described, but reading it names the tensor and type", () => {
  const path = join(dir, "iq2.gguf");
  const halves = new Float32Array(32).fill(0.5);
  writeGguf(path, llamaMeta(), [
    { name: "blk.0.ffn_down.weight", type: "IQ2_XXS", ne: [256, 32], data: new Uint8Array(66 * 32) },
    { name: "blk.0.ffn_norm.weight", type: "F32", ne: [32], data: new Uint8Array(halves.buffer) },
  ]);
  const src = GgufCheckpoint.open(path);
  try {
    const name = "model.layers.0.mlp.down_proj.weight";
    assert.deepEqual(src.info(name), { name, shape: [32, 256], dtype: "IQ2_XXS", bytes: 66 * 32 });
    throwsCode(
      () => src.readRows(name, 0, 1),
      "UNSUPPORTED_GGML_TYPE",
      name,
      "blk.0.ffn_down.weight",
      "IQ2_XXS",
      "Q4_K",
    );
    throwsCode(() => src.blockOf(name, 0, 0), "UNSUPPORTED_GGML_TYPE", "IQ2_XXS");
    // 1-D rows: a row is one value.
    assert.deepEqual(Array.from(src.readRows("model.layers.0.post_attention_layernorm.weight", 3, 5)), [0.5, 0.5]);
    assert.throws(() => src.readRows(name, 0, 33), RangeError);
    assert.throws(() => src.readRows(name, 2, 1), RangeError);
    assert.throws(() => src.readRows(name, 0, 2, new Float32Array(511)), RangeError);
    assert.throws(() => src.blockOf(name, 32, 0), RangeError);
    assert.throws(() => src.blockOf("model.layers.0.post_attention_layernorm.weight", 0, 0), RangeError);
  } finally {
    src.close();
  }
});

test("float32 metadata shows as the decimal the config said", () => {
  const decimals = [1e-5, 1e-6, 10000, 500000, 1.2, 0.1];
  assert.deepEqual(
    decimals.map((x) => shortestFloat32(Math.fround(x))),
    decimals,
  );
  assert.equal(shortestFloat32(Math.fround(1 / 3)), 0.33333334);
});
