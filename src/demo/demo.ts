// The embedded demo model: a small byte-level Llama that this code builds (seeded, so every machine gets
// the same bytes), writes once to a cache folder, and plants a super weight in, the way real LLMs grow
// one (and as ../shared/fixtures/planted-* do):
//   1. layer 1, intermediate channel C: gate/up rows aligned with the first token's normalised hidden
//      state, so down_proj's input spikes at (token 0, C) and stays small elsewhere;
//   2. one large down_proj weight [R, C] turns that spike into a super activation at residual channel R,
//      which the residual stream carries through the later layers;
//   3. the last layer reads channel R back and writes most of it away (a late "outlier" that the bare
//      rule also flags, as in real models' last layers).
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint, type TensorToWrite } from "../checkpoint/writer.js";
import { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";

export const DEMO_VERSION = 1;
export const DEMO = {
  hidden: 128, intermediate: 344, layers: 4, heads: 4, vocab: 258, bos: 256, eos: 257,
  /** The planted super weight: model.layers.1.mlp.down_proj.weight[ROW, COLUMN]. */
  superLayer: 1, row: 77, column: 201,
  /** The last layer's canceller: down_proj[ROW, CANCEL_COLUMN]. */
  cancelColumn: 45,
} as const;

export function demoFolder(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.SUPERWEIGHT_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir() || tmpdir(), ".cache"), "superweight");
  return join(base, `demo-v${DEMO_VERSION}`);
}

/** The demo checkpoint's folder, building it first when absent. */
export async function ensureDemo(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const folder = demoFolder(env);
  if (existsSync(join(folder, "config.json"))) return folder;
  const tmp = `${folder}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  await buildDemo(tmp);
  mkdirSync(join(folder, ".."), { recursive: true });
  try {
    renameSync(tmp, folder);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(folder, "config.json"))) throw e; // another process won the race: fine
  }
  return folder;
}

/** Seeded standard normals (mulberry32 + Box–Muller). */
export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

async function buildDemo(folder: string): Promise<void> {
  const { hidden: H, intermediate: I, layers: L, vocab: V } = DEMO;
  const rand = gaussian(20241111);
  const randn = (n: number, std: number) => Float32Array.from({ length: n }, () => rand() * std);
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const add = (name: string, shape: number[], data: Float32Array) => (tensors.set(name, data), shapes.set(name, shape));
  add("model.embed_tokens.weight", [V, H], randn(V * H, 1));
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    add(p + "input_layernorm.weight", [H], new Float32Array(H).fill(1));
    add(p + "post_attention_layernorm.weight", [H], new Float32Array(H).fill(1));
    for (const n of ["q", "k", "v", "o"]) add(`${p}self_attn.${n}_proj.weight`, [H, H], randn(H * H, 1 / Math.sqrt(H)));
    add(p + "mlp.gate_proj.weight", [I, H], randn(I * H, 1 / Math.sqrt(H)));
    add(p + "mlp.up_proj.weight", [I, H], randn(I * H, 1 / Math.sqrt(H)));
    add(p + "mlp.down_proj.weight", [H, I], randn(H * I, 1 / Math.sqrt(I)));
  }
  add("model.norm.weight", [H], new Float32Array(H).fill(1));
  add("lm_head.weight", [V, H], randn(V * H, 1 / Math.sqrt(H)));

  const config = {
    architectures: ["LlamaForCausalLM"], model_type: "llama", _name_or_path: "superweight/demo",
    hidden_size: H, intermediate_size: I, num_hidden_layers: L, num_attention_heads: DEMO.heads, num_key_value_heads: DEMO.heads,
    vocab_size: V, max_position_embeddings: 512, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: "silu",
    tie_word_embeddings: false, bos_token_id: DEMO.bos, eos_token_id: DEMO.eos, torch_dtype: "bfloat16",
  };
  const write = () => {
    const list: TensorToWrite[] = [...tensors].map(([name, data]) => ({ name, dtype: "BF16", shape: shapes.get(name)!, data }));
    writeCheckpoint(folder, config, list, 2, { "tokenizer.json": byteTokenizerJson(), "tokenizer_config.json": tokenizerConfigJson() });
  };
  const bf16 = (x: number) => { const f = new Float32Array([x]); const u = new Uint32Array(f.buffer); u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000; return f[0]; };
  for (const t of tensors.values()) for (let i = 0; i < t.length; i++) t[i] = bf16(t[i]);

  // Step 1: gate/up rows of channel C along token 0's normalised hidden state entering layer 1's MLP.
  write();
  const n2 = await mlpInputAtToken0(folder, DEMO.superLayer);
  const unit = normalise(n2);
  const p1 = `model.layers.${DEMO.superLayer}.mlp.`;
  // gate·n2 = 12 and up·n2 = 14 at token 0: down_proj input silu(12)·14 ≈ 168 there.
  setRow(tensors.get(p1 + "gate_proj.weight")!, DEMO.column, H, unit, 12 / norm(n2));
  setRow(tensors.get(p1 + "up_proj.weight")!, DEMO.column, H, unit, 14 / norm(n2));
  // Step 2: the super weight itself.
  tensors.get(p1 + "down_proj.weight")![DEMO.row * I + DEMO.column] = bf16(2.5);

  // Step 3: the last layer reads residual channel R at token 0 and writes most of it back negated.
  write();
  const last = L - 1;
  const n2Last = await mlpInputAtToken0(folder, last);
  const eR = new Float32Array(H);
  eR[DEMO.row] = 1;
  const pl = `model.layers.${last}.mlp.`;
  // gate·n2 = 8 and up·n2 = 10 at token 0 (channel R dominates its normalised state there).
  const gateIn = 8, upIn = 10, spike = (gateIn / (1 + Math.exp(-gateIn))) * upIn;
  setRow(tensors.get(pl + "gate_proj.weight")!, DEMO.cancelColumn, H, eR, gateIn / n2Last[DEMO.row]);
  setRow(tensors.get(pl + "up_proj.weight")!, DEMO.cancelColumn, H, eR, upIn / n2Last[DEMO.row]);
  const residualR = await residualAtToken0(folder, last, DEMO.row);
  tensors.get(pl + "down_proj.weight")![DEMO.row * I + DEMO.cancelColumn] = bf16((-0.85 * residualR) / spike);
  write();
}

/** The post-attention RMS-normalised hidden state of token 0 entering layer `layer`'s MLP. */
async function mlpInputAtToken0(folder: string, layer: number): Promise<Float32Array> {
  const model = Model.open(folder);
  let x: Float32Array | undefined, attn: Float32Array | undefined;
  await forward(model, [DEMO.bos], {
    toLayer: layer + 1,
    hooks: [(e) => {
      if (e.layer !== layer) return;
      if (e.point === "layer_input") x = e.data.slice(0, model.spec.hidden);
      if (e.point === "attn_output") attn = e.data.slice(0, model.spec.hidden);
    }],
  });
  model.close();
  const h = x!.map((v, i) => v + attn![i]);
  const rms = Math.sqrt(h.reduce((a, v) => a + v * v, 0) / h.length + 1e-5);
  return h.map((v) => v / rms);
}

async function residualAtToken0(folder: string, layer: number, channel: number): Promise<number> {
  const model = Model.open(folder);
  const out = await forward(model, [DEMO.bos], { toLayer: layer });
  model.close();
  return out.residual[channel];
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const normalise = (v: Float32Array) => v.map((x) => x / norm(v));
function setRow(w: Float32Array, row: number, cols: number, dir: Float32Array, scale: number): void {
  for (let j = 0; j < cols; j++) w[row * cols + j] = dir[j] * scale;
}

/** GPT-2's byte ↔ printable-character map, which byte-level BPE vocabularies are written in. */
function bytesToUnicode(): string[] {
  const keep = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + extra++));
  return out;
}

/** A byte-level BPE tokenizer with no merges: ids 0–255 are bytes, 256 = <s> (prepended), 257 = </s>. */
function byteTokenizerJson(): string {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((ch, b) => (vocab[ch] = b));
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  return JSON.stringify({
    version: "1.0", truncation: null, padding: null,
    added_tokens: [special(DEMO.bos, "<s>"), special(DEMO.eos, "</s>")],
    normalizer: null, pre_tokenizer: byteLevel,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [DEMO.bos], tokens: ["<s>"] } },
    },
    decoder: byteLevel,
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  });
}

function tokenizerConfigJson(): string {
  return JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true, tokenizer_class: "PreTrainedTokenizerFast", clean_up_tokenization_spaces: false });
}
