// A GGUF file (or split set) as a tensor source for the engine: Hugging Face names, a config.json rebuilt from
// the metadata, and rows read as float32 with the converter's transforms undone (llama.cpp's
// convert_hf_to_gguf.py, whose choices are documented in shared/fixtures/gguf/README.md):
//   - llama / olmo q_proj and k_proj rows were permuted (rotate-half pairs → adjacent pairs): moved back;
//   - Gemma's RMSNorm weights were stored as w + 1 (float32): 1 is subtracted again, which gives w back
//     exactly whenever w + 1 was exact (for a bf16 checkpoint: every |w| ≥ 2^-16, or 0);
//   - GPT-2's Conv1D weights were transposed: they are reported as [out, in] with layout "nk" (GGUF's ne
//     reversed, the bytes as stored) rather than transposed back to Hugging Face's [in, out];
//   - Phi-3's ffn_up is the fused gate_up_proj (rows [gate; up]) and attn_qkv the fused qkv_proj, as stored.
// Tensors that are not weights (rope_freqs, Phi-3's rope factors) go into `config`, not `names()`.
import { closeSync } from "node:fs";
import { CheckpointError } from "../errors.js";
import { blockBuffer, MAX_BLOCK_ELEMENTS } from "../checkpoint/block-buffer.js";
import {
  describeType,
  metaNumber,
  metaString,
  openGguf,
  openRegularFile,
  readTensorBytes,
  type GgufKv,
  type GgufModel,
  type GgufTensor,
} from "./container.js";
import { dequantize, DEQUANTIZED_TYPES } from "./dequant.js";
import { ggmlBytes } from "./types.js";

import type { RawConfig, SourceTensor, TensorSource } from "../checkpoint/source.js";

/** One stored quantization block around an element, for the audit command. */
export interface StoredBlock {
  ggufTensor: string;
  /** The GGUF row holding the element (differs from the HF row for permuted q/k). */
  ggufRow: number;
  ggmlType: string;
  blockSize: number;
  /** HF column of the block's first value. */
  firstColumn: number;
  /** The block's bytes as stored. */
  raw: Uint8Array;
  /** Its blockSize values, dequantized. */
  values: Float32Array;
}

export type Transform = "none" | "permute_q" | "permute_k" | "plus_one" | "transposed";

interface Entry {
  hf: string;
  tensor: GgufTensor;
  transform: Transform;
  /** HF shape: GGUF's ne reversed. */
  shape: number[];
  /** Heads of a permuted projection. */
  heads: number;
}

// ---- names: GGUF → Hugging Face, per architecture ----

export interface NameMap {
  /** Whole-model tensors: GGUF name → HF name. */
  global: Record<string, string>;
  /** Per-layer tensors: GGUF name after "blk.N." (without .weight/.bias) → HF name after the layer prefix. */
  block: Record<string, string>;
  layerPrefix: string;
  transforms?: Record<string, Transform>;
}

const LLAMA_BLOCK: Record<string, string> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};
const LLAMA_GLOBAL = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};
const PERMUTED: Record<string, Transform> = { attn_q: "permute_q", attn_k: "permute_k" };

export const NAME_MAPS: Record<string, NameMap> = {
  llama: { global: LLAMA_GLOBAL, block: LLAMA_BLOCK, layerPrefix: "model.layers.", transforms: PERMUTED },
  qwen2: { global: LLAMA_GLOBAL, block: LLAMA_BLOCK, layerPrefix: "model.layers." },
  olmo: { global: LLAMA_GLOBAL, block: LLAMA_BLOCK, layerPrefix: "model.layers.", transforms: PERMUTED },
  gemma: {
    global: LLAMA_GLOBAL,
    block: LLAMA_BLOCK,
    layerPrefix: "model.layers.",
    transforms: { attn_norm: "plus_one", ffn_norm: "plus_one", output_norm: "plus_one" },
  },
  phi3: {
    global: LLAMA_GLOBAL,
    block: {
      attn_norm: "input_layernorm",
      attn_qkv: "self_attn.qkv_proj",
      attn_output: "self_attn.o_proj",
      ffn_norm: "post_attention_layernorm",
      ffn_up: "mlp.gate_up_proj",
      ffn_down: "mlp.down_proj",
    },
    layerPrefix: "model.layers.",
  },
  gpt2: {
    global: {
      "token_embd.weight": "transformer.wte.weight",
      "position_embd.weight": "transformer.wpe.weight",
      "output_norm.weight": "transformer.ln_f.weight",
      "output_norm.bias": "transformer.ln_f.bias",
      "output.weight": "lm_head.weight",
    },
    block: {
      attn_norm: "ln_1",
      attn_qkv: "attn.c_attn",
      attn_output: "attn.c_proj",
      ffn_norm: "ln_2",
      ffn_up: "mlp.c_fc",
      ffn_down: "mlp.c_proj",
    },
    layerPrefix: "transformer.h.",
    // The converter transposed the Conv1D weights: GGUF holds the [out, in] matrix (their biases are 1-D).
    transforms: { attn_qkv: "transposed", attn_output: "transposed", ffn_up: "transposed", ffn_down: "transposed" },
  },
};

export const SUPPORTED_ARCHITECTURES = Object.keys(NAME_MAPS);

/** Tensors that are not weights: what they mean goes into config. */
const CONFIG_TENSORS = new Set(["rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"]);

const BLOCK_NAME = /^blk\.(\d+)\.([a-z_0-9]+)\.(weight|bias)$/;

function hfNameOf(map: NameMap, gguf: string, layers: number): { hf: string; transform: Transform } | undefined {
  const global = map.global[gguf];
  if (global) return { hf: global, transform: map.transforms?.[gguf.replace(/\.(weight|bias)$/, "")] ?? "none" };
  const m = BLOCK_NAME.exec(gguf);
  if (!m || Number(m[1]) >= layers || !map.block[m[2]]) return undefined;
  const hf = `${map.layerPrefix}${Number(m[1])}.${map.block[m[2]]}.${m[3]}`;
  return { hf, transform: map.transforms?.[m[2]] ?? "none" };
}

// ---- the source ----

const CHUNK_BYTES = 8 << 20;

export class GgufCheckpoint implements TensorSource {
  readonly architecture: string;
  readonly config: RawConfig;
  private readonly entries = new Map<string, Entry>();
  private readonly fds = new Map<string, number>();
  private scratch = new Uint8Array(0);
  private floatScratch = new Float32Array(0);

  private constructor(
    readonly path: string,
    private readonly model: GgufModel,
  ) {
    const meta = model.metadata;
    const arch = metaString(meta, "general.architecture", path);
    if (arch === undefined)
      throw new CheckpointError(path, `metadata "general.architecture" is missing`, "MISSING_METADATA");
    const map = NAME_MAPS[arch];
    if (!map)
      throw new CheckpointError(
        path,
        `architecture "${arch}" is not supported; supported: ${SUPPORTED_ARCHITECTURES.join(", ")}`,
        "UNSUPPORTED_ARCHITECTURE",
      );
    this.architecture = arch;
    const m = new Meta(meta, arch, path);
    const layers = m.req("block_count");
    const heads = m.req("attention.head_count");
    const kvHeads = m.num("attention.head_count_kv") ?? heads;
    for (const t of model.tensors.values()) {
      if (CONFIG_TENSORS.has(t.name)) continue;
      const named = hfNameOf(map, t.name, layers);
      if (!named)
        throw new CheckpointError(
          t.file,
          `tensor "${t.name}" has no Hugging Face name for architecture "${arch}"`,
          "UNKNOWN_TENSOR",
        );
      const shape = [...t.ne].reverse();
      const entry: Entry = { hf: named.hf, tensor: t, transform: named.transform, shape, heads: 0 };
      if (named.transform === "permute_q" || named.transform === "permute_k") {
        entry.heads = named.transform === "permute_q" ? heads : kvHeads;
        const rows = shape[0];
        if (rows % entry.heads !== 0 || (rows / entry.heads) % 2 !== 0)
          throw new CheckpointError(
            t.file,
            `tensor "${t.name}" has ${rows} rows, not ${entry.heads} heads of an even size (head counts wrong?)`,
            "BAD_METADATA",
          );
      }
      this.entries.set(named.hf, entry);
    }
    try {
      this.config = buildConfig(arch, m, this);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Open a .gguf file, or the split set one of whose shards it is. */
  static open(path: string): GgufCheckpoint {
    return new GgufCheckpoint(path, openGguf(path));
  }

  /** The config is rebuilt from the file's own metadata. */
  get configFile(): string {
    return this.path;
  }

  fileOf(name: string): string {
    return this.entries.get(name)?.tensor.file ?? this.path;
  }

  /** Every key-value pair of the (first) file, in file order. */
  get metadata(): Map<string, GgufKv> {
    return this.model.metadata;
  }

  /** The files read: one, or every shard of a split set. */
  get files(): string[] {
    return this.model.files.map((f) => f.path);
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): SourceTensor {
    const e = this.entry(name);
    const info: SourceTensor = { name, shape: [...e.shape], dtype: e.tensor.type.name, bytes: e.tensor.byteLength };
    // GPT-2's Conv1D matrices are read as stored, [out, in] rows, instead of transposed back (see the header).
    if (e.transform === "transposed" && e.shape.length === 2) info.layout = "nk";
    return info;
  }

  /** The GGUF tensor name behind a Hugging Face name. */
  ggufName(name: string): string {
    return this.entry(name).tensor.name;
  }

  /** Rows [r0, r1) as float32 (a row = product of the trailing dims), converter transforms undone; into `out`, else
   * into the shared block buffer (valid until the next read, as TensorSource says). */
  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array {
    const e = this.entry(name);
    const rows = e.shape[0];
    const rowSize = e.shape.slice(1).reduce((a, b) => a * b, 1);
    if (!Number.isInteger(r0) || !Number.isInteger(r1) || r0 < 0 || r1 > rows || r0 > r1)
      throw new RangeError(`rows [${r0}, ${r1}) outside "${name}" with ${rows} rows`);
    const n = (r1 - r0) * rowSize;
    if (out && out.length < n)
      throw new RangeError(`output buffer holds ${out.length} values, ${n} requested from "${name}"`);
    // Without `out`, the engine's one block buffer, as the safetensors reader gives: a fresh 16 MB array per block
    // costs page faults and garbage collection (a 7B-shaped Q4_K_M forward: 1.1 s of GC, +75 MB peak RSS).
    const result = out ?? (n <= MAX_BLOCK_ELEMENTS ? blockBuffer(n) : new Float32Array(n));
    if (e.heads) this.readPermuted(e, r0, r1, rowSize, result);
    else this.readFlat(e, r0 * rowSize, n, result);
    if (e.transform === "plus_one") for (let i = 0; i < n; i++) result[i] = Math.fround(result[i] - 1);
    return result;
  }

  /** The whole tensor as float32, in a new array. */
  read(name: string): Float32Array {
    const shape = this.entry(name).shape;
    return this.readRows(name, 0, shape[0], new Float32Array(shape.reduce((a, b) => a * b, 1)));
  }

  /** The stored block holding element [row, column] of a 2-D weight (coordinates as `readRows` gives them). */
  blockOf(name: string, row: number, column: number): StoredBlock {
    const e = this.entry(name);
    if (e.shape.length !== 2) throw new RangeError(`"${name}" is not a matrix (shape [${e.shape}])`);
    const [rows, cols] = e.shape;
    if (!Number.isInteger(row) || !Number.isInteger(column) || row < 0 || row >= rows || column < 0 || column >= cols)
      throw new RangeError(`element [${row}, ${column}] outside "${name}" of shape [${e.shape}]`);
    const t = e.tensor;
    this.checkDequantizable(e);
    const g = e.heads ? ggufRowOf(row, rows / e.heads) : row;
    const block = Math.floor(column / t.type.blockSize);
    const raw = new Uint8Array(t.type.typeSize);
    readTensorBytes(this.fd(t.file), t, g * ggmlBytes(t.type, cols) + block * t.type.typeSize, raw);
    const values = new Float32Array(t.type.blockSize);
    dequantize(values, raw, t.type, values.length);
    return {
      ggufTensor: t.name,
      ggufRow: g,
      ggmlType: t.type.name,
      blockSize: t.type.blockSize,
      firstColumn: block * t.type.blockSize,
      raw,
      values,
    };
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(this.path, `tensor "${name}" is missing from the GGUF file`, "MISSING_TENSOR");
    return e;
  }

  private fd(file: string): number {
    let fd = this.fds.get(file);
    if (fd === undefined) this.fds.set(file, (fd = openRegularFile(file).fd));
    return fd;
  }

  private checkDequantizable(e: Entry): void {
    const type = e.tensor.type;
    if (!type.dequantizable)
      throw new CheckpointError(
        e.tensor.file,
        `tensor "${e.hf}" (GGUF "${e.tensor.name}") is ${type.name}, which cannot be dequantized here ` +
          `(supported: ${DEQUANTIZED_TYPES.join(", ")})`,
        "UNSUPPORTED_GGML_TYPE",
      );
  }

  /** Values [first, first + count) of the stored tensor, in its own (GGUF) order, into out[0, count). */
  private readFlat(e: Entry, first: number, count: number, out: Float32Array): void {
    this.checkDequantizable(e);
    const t = e.tensor;
    const fd = this.fd(t.file);
    const { blockSize: bs, typeSize } = t.type;
    if (t.type.name === "F32") {
      readTensorBytes(fd, t, first * 4, new Uint8Array(out.buffer, out.byteOffset, count * 4));
      return;
    }
    // Whole blocks, at most CHUNK_BYTES of them at a time; a partial block at either end (only possible in a
    // tensor whose rows are shorter than a block, i.e. a 1-D one) goes through a temporary float buffer.
    const perChunk = Math.max(1, Math.floor(CHUNK_BYTES / typeSize));
    let done = 0;
    while (done < count) {
      const at = first + done;
      const b0 = Math.floor(at / bs);
      const b1 = Math.min(Math.ceil((first + count) / bs), b0 + perChunk);
      const raw = this.bytes((b1 - b0) * typeSize);
      readTensorBytes(fd, t, b0 * typeSize, raw);
      const skip = at - b0 * bs;
      const take = Math.min((b1 - b0) * bs - skip, count - done);
      if (skip === 0 && take === (b1 - b0) * bs) dequantize(out.subarray(done), raw, t.type, take);
      else {
        const tmp = new Float32Array((b1 - b0) * bs); // rare (1-D, block > 1): not the shared scratch
        dequantize(tmp, raw, t.type, (b1 - b0) * bs);
        out.set(tmp.subarray(skip, skip + take), done);
      }
      done += take;
    }
  }

  /** HF rows [r0, r1) of a permuted projection: per head, the span of GGUF rows holding them, then moved. */
  private readPermuted(e: Entry, r0: number, r1: number, rowSize: number, out: Float32Array): void {
    const hd = e.shape[0] / e.heads;
    for (let h = Math.floor(r0 / hd); h * hd < r1; h++) {
      const lo = Math.max(r0, h * hd);
      const hi = Math.min(r1, (h + 1) * hd);
      let g0 = Infinity;
      let g1 = -1;
      for (let r = lo; r < hi; r++) {
        const g = ggufRowOf(r, hd);
        g0 = Math.min(g0, g);
        g1 = Math.max(g1, g);
      }
      const span = this.floats((g1 - g0 + 1) * rowSize);
      this.readFlat(e, g0 * rowSize, span.length, span);
      for (let r = lo; r < hi; r++) {
        const from = (ggufRowOf(r, hd) - g0) * rowSize;
        out.set(span.subarray(from, from + rowSize), (r - r0) * rowSize);
      }
    }
  }

  private bytes(n: number): Uint8Array {
    if (this.scratch.length < n) this.scratch = new Uint8Array(n);
    return this.scratch.subarray(0, n);
  }

  private floats(n: number): Float32Array {
    if (this.floatScratch.length < n) this.floatScratch = new Float32Array(n);
    return this.floatScratch.subarray(0, n);
  }

  /** A config tensor (rope factors) as numbers, checked to be F32 of `length` values. */
  configTensor(name: string, length: number): number[] | undefined {
    const t = this.model.tensors.get(name);
    if (!t) return undefined;
    if (t.type.name !== "F32" || t.ne.length !== 1 || t.ne[0] !== length)
      throw new CheckpointError(
        t.file,
        `tensor "${name}" must be F32 [${length}] (head_dim / 2), not ${t.type.name} [${t.ne}]`,
        "BAD_METADATA",
      );
    const values = new Float32Array(length);
    readTensorBytes(this.fd(t.file), t, 0, new Uint8Array(values.buffer));
    return Array.from(values);
  }

  /** Whether a GGUF tensor is present (for config: tied head, biases). */
  hasGguf(name: string): boolean {
    return this.model.tensors.has(name);
  }

  ggufTensor(name: string): GgufTensor | undefined {
    return this.model.tensors.get(name);
  }
}

/** HF row r of a permuted projection with heads of hd rows → its GGUF row (h·hd + 2i + j). */
export function ggufRowOf(r: number, hd: number): number {
  const h = Math.floor(r / hd);
  const rem = r - h * hd;
  const half = hd / 2;
  const j = rem >= half ? 1 : 0;
  return h * hd + 2 * (rem - j * half) + j;
}

// ---- config.json from metadata ----

/** `{arch}.*` metadata access; errors name the file and the key. */
class Meta {
  constructor(
    readonly kv: Map<string, GgufKv>,
    readonly arch: string,
    readonly file: string,
  ) {}

  num(key: string): number | undefined {
    const full = `${this.arch}.${key}`;
    const v = metaNumber(this.kv, full, this.file);
    // A FLOAT32 value is shown as the shortest decimal that is the same float32 (9.99999975e-06 → 1e-5):
    // what the config.json it was converted from said.
    return v !== undefined && this.kv.get(full)?.type === "FLOAT32" ? shortestFloat32(v) : v;
  }

  req(key: string): number {
    const v = this.num(key);
    if (v === undefined)
      throw new CheckpointError(this.file, `metadata "${this.arch}.${key}" is missing`, "MISSING_METADATA");
    return v;
  }

  str(key: string): string | undefined {
    return metaString(this.kv, `${this.arch}.${key}`, this.file);
  }

  tokenCount(): number | undefined {
    const kv = this.kv.get("tokenizer.ggml.tokens");
    if (kv === undefined) return undefined;
    if (kv.type !== "ARRAY")
      throw new CheckpointError(
        this.file,
        `metadata "tokenizer.ggml.tokens" must be an array, not ${describeType(kv)}`,
        "BAD_METADATA",
      );
    return kv.value.length;
  }
}

/** The shortest decimal that rounds to the same float32. */
export function shortestFloat32(x: number): number {
  for (let p = 1; p <= 9; p++) {
    const d = Number(x.toPrecision(p));
    if (Math.fround(d) === x) return d;
  }
  return x;
}

function buildConfig(arch: string, m: Meta, src: GgufCheckpoint): RawConfig {
  const fail = (msg: string): never => {
    throw new CheckpointError(src.path, msg, "BAD_METADATA");
  };
  const hidden = m.req("embedding_length");
  const heads = m.req("attention.head_count");
  const kvHeads = m.num("attention.head_count_kv") ?? heads;
  const headDim = m.num("attention.key_length") ?? hidden / heads;
  if (!Number.isInteger(headDim)) fail(`${arch}.embedding_length ${hidden} is not a multiple of the ${heads} heads`);
  const embd = src.ggufTensor("token_embd.weight");
  const vocab = m.num("vocab_size") ?? m.tokenCount() ?? embd?.ne[1];
  if (embd && vocab !== embd.ne[1])
    fail(`the vocabulary has ${vocab} tokens but token_embd.weight has ${embd.ne[1]} rows`);
  const tokenId = (which: string) => metaNumber(m.kv, `tokenizer.ggml.${which}_token_id`, src.path);
  const common: RawConfig = {
    bos_token_id: tokenId("bos"),
    eos_token_id: tokenId("eos"),
    vocab_size: vocab,
    tie_word_embeddings: !src.hasGguf("output.weight"),
  };
  if (arch === "gpt2")
    return withoutUndefined({
      model_type: "gpt2",
      n_embd: hidden,
      n_head: heads,
      n_layer: m.req("block_count"),
      n_positions: m.req("context_length"),
      n_inner: m.num("feed_forward_length") ?? 4 * hidden,
      layer_norm_epsilon: m.num("attention.layer_norm_epsilon") ?? 1e-5,
      activation_function: "gelu_new",
      ...common,
    });

  const config: RawConfig = {
    model_type: arch,
    hidden_size: hidden,
    intermediate_size: m.req("feed_forward_length"),
    num_hidden_layers: m.req("block_count"),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: m.num("context_length"),
    rope_theta: m.num("rope.freq_base") ?? 10000,
    ...common,
  };
  const eps = m.num("attention.layer_norm_rms_epsilon");
  if (eps !== undefined) config.rms_norm_eps = eps;
  const ropeDims = m.num("rope.dimension_count") ?? headDim;
  if (ropeDims > headDim || ropeDims % 2)
    fail(`${arch}.rope.dimension_count ${ropeDims} does not fit head_dim ${headDim}`);
  if (ropeDims < headDim) config.partial_rotary_factor = ropeDims / headDim;
  config.rope_scaling = ropeScaling(m, src, ropeDims, fail);

  if (arch === "llama" || arch === "qwen2") {
    config.hidden_act = "silu";
    if (arch === "llama") {
      config.attention_bias = src.hasGguf("blk.0.attn_q.bias") || src.hasGguf("blk.0.attn_output.bias");
      config.mlp_bias = src.hasGguf("blk.0.ffn_down.bias");
      // Mistral converts to "llama"; a sliding window key (written by some converters) is what tells it apart.
      const window = m.num("attention.sliding_window");
      if (window !== undefined) Object.assign(config, { model_type: "mistral", sliding_window: window });
    } else config.use_sliding_window = false;
  } else if (arch === "phi3") {
    config.hidden_act = "silu";
    config.sliding_window = m.num("attention.sliding_window");
    config.original_max_position_embeddings = m.num("rope.scaling.original_context_length");
  } else if (arch === "gemma") {
    config.hidden_activation = "gelu_pytorch_tanh";
  } else if (arch === "olmo") {
    config.hidden_act = "silu";
    config.clip_qkv = m.num("attention.clamp_kqv");
    config.attention_bias = src.hasGguf("blk.0.attn_q.bias");
  }
  return withoutUndefined(config);
}

function withoutUndefined(config: RawConfig): RawConfig {
  return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
}

/**
 * rope_scaling as transformers would have it. Llama-3's has no key: the converter writes rope_freqs.weight
 * (F32 [rotary dims / 2]) and inv_freq[i] = rope_theta^(−2i/d) / factors[i]: the "frequency_factors" type.
 * Phi-3's longrope factors are tensors too. Other scaling keys are passed through for the engine to accept
 * or refuse by name — never dropped.
 */
function ropeScaling(m: Meta, src: GgufCheckpoint, dims: number, fail: (msg: string) => never): RawConfig | null {
  const type = m.str("rope.scaling.type");
  const factors = src.configTensor("rope_freqs.weight", dims / 2);
  const long = src.configTensor("rope_factors_long.weight", dims / 2);
  const short = src.configTensor("rope_factors_short.weight", dims / 2);
  if (factors && type !== undefined && type !== "none")
    fail(`both rope_freqs.weight and ${m.arch}.rope.scaling.type "${type}" are present: refusing to guess`);
  if (factors) return { rope_type: "frequency_factors", factors };
  if (long || short) {
    if (!long || !short) fail("only one of rope_factors_long.weight and rope_factors_short.weight is present");
    return { rope_type: "longrope", long_factor: long, short_factor: short };
  }
  if (type === undefined || type === "none") {
    const linear = m.num("rope.scale_linear"); // the older spelling of a linear factor
    return linear !== undefined && linear !== 1 ? { rope_type: "linear", factor: linear } : null;
  }
  const scaling: RawConfig = { rope_type: type, factor: m.num("rope.scaling.factor") };
  const original = m.num("rope.scaling.original_context_length");
  if (original !== undefined) scaling.original_max_position_embeddings = original;
  return scaling;
}
