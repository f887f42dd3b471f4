// Synthetic bf16 checkpoints, written once and cached: Llama-2-7B (or 13B) layer shapes, or Mixtral-8x7B's (8 experts
// of 14336, top-2), with random N(0, 0.02) weights, norms 1, and one planted super weight (in the MoE: in one
// expert, with token 0 routed to it). Each tensor has its own seeded stream, so the folder is
// the same on every machine. Writing goes straight to bf16 bits: a 65536-entry table of normal samples
// indexed by 16 random bits (two samples per xorshift32 step) costs ~1 ns per weight.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { headerFor } from "../src/checkpoint/writer.js";
import { toBf16Bits } from "../src/checkpoint/dtype.js";
import { Model } from "../src/engine/model.js";
import type { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { forward } from "../src/engine/forward.js";

export interface Shape {
  name: string;
  hidden: number;
  intermediate: number;
  heads: number;
  vocab: number;
  layers: number;
}
/** Llama-2-7B and -13B: their full depths, and the layer shapes a shallower bench checkpoint keeps. */
export const SHAPES = {
  llama7b: { name: "llama7b", hidden: 4096, intermediate: 11008, heads: 32, vocab: 32000, layers: 32 },
  llama13b: { name: "llama13b", hidden: 5120, intermediate: 13824, heads: 40, vocab: 32000, layers: 40 },
} satisfies Record<string, Shape>;
/** Where the super weight is planted: down_proj[row, channel] of `layer`. */
export const PLANT = { layer: 1, channel: 7003, row: 3968, downValue: 2.0, target: 500 };
/** The BOS row of the embeddings is scaled by this (std 0.02·1024 ≈ 20) so that token 0's residual is
 *  its own, nearly orthogonal to every other token's: the planted channel then fires for token 0 only. */
export const BOS_SCALE = 1024;
const VERSION = 2; // bump when the generated weights change

export const MOE_SHAPE = {
  hidden: 4096,
  intermediate: 14336,
  heads: 32,
  kvHeads: 8,
  experts: 8,
  topK: 2,
  vocab: 32000,
};
/** The MoE plant (2 layers): expert `expert` of layer 0, its w2[row, channel]; the router sends token 0 there. */
export const MOE_PLANT = { ...PLANT, layer: 0, expert: 5, routerLogit: 10 }; // layer 0: a later layer carries it

export function moeConfigFor(layers: number): Record<string, unknown> {
  const { hidden, intermediate, heads, kvHeads, experts, topK, vocab } = MOE_SHAPE;
  return {
    architectures: ["MixtralForCausalLM"],
    model_type: "mixtral",
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    num_local_experts: experts,
    num_experts_per_tok: topK,
    vocab_size: vocab,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-5,
    rope_theta: 1e6,
    sliding_window: null,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
  };
}

export function configFor(layers: number, shape: Shape = SHAPES.llama7b): Record<string, unknown> {
  const { hidden, intermediate, heads, vocab } = shape;
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: heads,
    vocab_size: vocab,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
  };
}

/** xorshift32; never seeded with 0. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

let table: Uint16Array | undefined;
/** 65536 samples of N(0, 0.02) (Box-Muller), as bf16 bits. */
function normalTable(): Uint16Array {
  if (table) return table;
  const next = xorshift(12345);
  const u = () => (next() + 1) / 4294967297; // (0, 1)
  table = new Uint16Array(65536);
  for (let i = 0; i < 65536; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())),
      a = 2 * Math.PI * u();
    table[i] = toBf16Bits(0.02 * r * Math.cos(a));
    table[i + 1] = toBf16Bits(0.02 * r * Math.sin(a));
  }
  return table;
}

const bf16 = (bits: number) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

interface Spec {
  name: string;
  shape: number[];
  fill: "random" | "ones";
}

/** A layer's tensors: norms, attention (kv heads of `kvDim` rows), and either a dense MLP or `experts` experts. */
function layerTensors(l: number, H: number, I: number, kvDim: number, experts?: number): Spec[] {
  const p = `model.layers.${l}.`;
  const mlp = (q: string, gate: string, up: string, down: string): Spec[] => [
    { name: `${p}${q}${gate}.weight`, shape: [I, H], fill: "random" },
    { name: `${p}${q}${up}.weight`, shape: [I, H], fill: "random" },
    { name: `${p}${q}${down}.weight`, shape: [H, I], fill: "random" },
  ];
  return [
    { name: p + "input_layernorm.weight", shape: [H], fill: "ones" },
    { name: p + "post_attention_layernorm.weight", shape: [H], fill: "ones" },
    ...["q", "k", "v", "o"].map((n): Spec => ({
      name: `${p}self_attn.${n}_proj.weight`,
      shape: n === "k" || n === "v" ? [kvDim, H] : [H, H],
      fill: "random",
    })),
    ...(experts === undefined
      ? mlp("mlp.", "gate_proj", "up_proj", "down_proj")
      : [
          { name: `${p}block_sparse_moe.gate.weight`, shape: [experts, H], fill: "random" } as Spec,
          ...Array.from({ length: experts }, (_, e) => mlp(`block_sparse_moe.experts.${e}.`, "w1", "w3", "w2")).flat(),
        ]),
  ];
}

/** A dense shape, or "moe" for the Mixtral one. */
export type Kind = Shape | "moe";

function tensorsOf(layers: number, kind: Kind): Spec[][] {
  const moe = kind === "moe";
  const { hidden: H, intermediate: I, vocab: V } = moe ? MOE_SHAPE : kind;
  const kvDim = moe ? (MOE_SHAPE.kvHeads * H) / MOE_SHAPE.heads : H;
  const layer = (l: number) => layerTensors(l, H, I, kvDim, moe ? MOE_SHAPE.experts : undefined);
  // Two shards of about equal size: embeddings + the first half of the layers | the rest + norm + head.
  const half = Math.ceil(layers / 2);
  const first: Spec[] = [{ name: "model.embed_tokens.weight", shape: [V, H], fill: "random" }];
  const second: Spec[] = [];
  for (let l = 0; l < layers; l++) (l < half ? first : second).push(...layer(l));
  second.push(
    { name: "model.norm.weight", shape: [H], fill: "ones" },
    { name: "lm_head.weight", shape: [V, H], fill: "random" },
  );
  return [first, second];
}

const CHUNK = 1 << 22; // elements per write

function writeShard(path: string, specs: Spec[]): number {
  const tbl = normalTable();
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w");
  let bytes = 0;
  try {
    writeSync(fd, headerFor(specs.map((s) => ({ name: s.name, dtype: "BF16", shape: s.shape }))));
    const buf = new Uint16Array(CHUNK);
    for (const s of specs) {
      const count = s.shape.reduce((a, b) => a * b, 1);
      const next = xorshift(hash(s.name) ^ 0x5eed);
      for (let done = 0; done < count; done += CHUNK) {
        const n = Math.min(CHUNK, count - done);
        if (s.fill === "ones") buf.fill(0x3f80, 0, n);
        else
          for (let i = 0; i < n; i += 2) {
            const r = next();
            buf[i] = tbl[r & 0xffff];
            buf[i + 1] = tbl[r >>> 16];
          }
        if (s.name === "model.embed_tokens.weight" && done === 0) {
          const H = s.shape[1]; // row 1 = BOS; ×1024 adds 10 to a bf16 exponent, exactly
          for (let i = H; i < 2 * H; i++) buf[i] = toBf16Bits(bf16(buf[i]) * BOS_SCALE);
        }
        writeSync(fd, new Uint8Array(buf.buffer, 0, n * 2));
      }
      bytes += count * 2;
    }
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* closed */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return bytes;
}

function writeAtomic(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

export interface PlantInfo {
  version: number;
  layer: number;
  channel: number;
  row: number;
  /** The MoE checkpoint's expert holding it (token 0 is routed there). */
  expert?: number;
  /** gate·n2 and up·n2 at token 0 with the stored (bf16-rounded) rows: the down_proj input ≈ silu(g)·u. */
  gate: number;
  up: number;
  expectedInput: number;
  downValue: number;
}

/** Bytes of the checkpoint's tensors (bf16). */
export function checkpointBytes(layers: number, kind: Kind = SHAPES.llama7b): number {
  return tensorsOf(layers, kind)
    .flat()
    .reduce((s, t) => s + 2 * t.shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * The checkpoint folder with `layers` layers of `kind`, written if absent, of an older VERSION or of another
 * shape (weights.json marks the weights complete, plant.json the super weight). The plant does not depend on the
 * weights it changes, so redoing it after an interruption gives the same bytes.
 */
export async function ensureCheckpoint(
  folder: string,
  layers: number,
  log: (s: string) => void,
  kind: Kind = SHAPES.llama7b,
): Promise<PlantInfo> {
  const moe = kind === "moe";
  const plantFile = join(folder, "plant.json"),
    weightsFile = join(folder, "weights.json"),
    configFile = join(folder, "config.json");
  const version = (file: string) =>
    existsSync(file) ? (JSON.parse(readFileSync(file, "utf8")) as { version?: number }).version : undefined;
  const config = JSON.stringify(moe ? moeConfigFor(layers) : configFor(layers, kind), null, 2);
  const sameShape = existsSync(configFile) && readFileSync(configFile, "utf8") === config;
  if (sameShape && version(plantFile) === VERSION) return JSON.parse(readFileSync(plantFile, "utf8")) as PlantInfo;
  if (!sameShape || version(weightsFile) !== VERSION) {
    mkdirSync(folder, { recursive: true });
    for (const f of [plantFile, weightsFile, configFile]) rmSync(f, { force: true });
    const t0 = performance.now();
    const shards = tensorsOf(layers, kind);
    const weightMap: Record<string, string> = {};
    let total = 0;
    shards.forEach((specs, i) => {
      const file = `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.safetensors`;
      log(`writing ${join(folder, file)} …`);
      total += writeShard(join(folder, file), specs);
      for (const s of specs) weightMap[s.name] = file;
    });
    writeAtomic(
      join(folder, "model.safetensors.index.json"),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2),
    );
    writeAtomic(configFile, config);
    writeAtomic(weightsFile, JSON.stringify({ version: VERSION }));
    log(`wrote ${(total / 1e9).toFixed(2)} GB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const plant = await plantSuperWeight(folder, moe);
  writeAtomic(plantFile, JSON.stringify(plant, null, 2));
  const where = plant.expert === undefined ? "" : ` expert ${plant.expert}`;
  log(
    `planted down_proj[${plant.row}, ${plant.channel}] = ${plant.downValue} in layer ${plant.layer}${where}; expected down_proj input at token 0 ≈ ${plant.expectedInput.toFixed(1)}`,
  );
  return plant;
}

/**
 * Token 0 (BOS, id 1) sees only itself, so its normalised MLP input in layer 1 is the same for every
 * prompt: n2 = rms_norm(layer_input + attn_output). Set gate_proj[c] = up_proj[c] = s·n2/|n2| so that
 * gate·n2 = up·n2 = √target, making silu(g)·u ≈ target at (token 0, c); down_proj[r, c] then writes
 * ≈ downValue·target into row r of the residual. In the MoE the same goes into one expert's w1 / w3 / w2, and
 * that expert's router row is set to routerLogit·n2/|n2|² so that token 0 is routed to it.
 */
async function plantSuperWeight(folder: string, moe: boolean): Promise<PlantInfo> {
  const { layer, channel: c, row: r, downValue, target, expert, routerLogit } = MOE_PLANT;
  const model = Model.open(folder);
  try {
    const H = model.spec.hidden,
      I = model.spec.intermediate;
    let input: Float32Array | undefined, attn: Float32Array | undefined;
    await forward(model, [1], {
      toLayer: layer + 1,
      hooks: [
        (e) => {
          if (e.layer !== layer) return;
          if (e.point === "layer_input") input = e.data.slice(0, H);
          if (e.point === "attn_output") attn = e.data.slice(0, H);
        },
      ],
    });
    const w = model.read(`model.layers.${layer}.post_attention_layernorm.weight`);
    const h = input!.map((v, i) => v + attn![i]);
    let ss = 0;
    for (const v of h) ss += v * v;
    const inv = 1 / Math.sqrt(ss / H + model.spec.normEps);
    const n2 = Array.from(h, (v, i) => v * inv * w[i]);
    const norm = Math.sqrt(n2.reduce((a, v) => a + v * v, 0));
    const scale = Math.sqrt(target) / (norm * norm); // gate·n2 = scale·|n2|² = √target
    const bits = new Uint16Array(H);
    let dot = 0;
    for (let i = 0; i < H; i++) {
      bits[i] = toBf16Bits(scale * n2[i]);
      dot += bf16(bits[i]) * n2[i];
    }
    const p = `model.layers.${layer}.${moe ? `block_sparse_moe.experts.${expert}.` : "mlp."}`;
    const [gate, up, down] = moe ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
    const patch = (name: string, element: number, data: Uint16Array) => {
      const { start } = (model.source as Checkpoint).header(name);
      const fd = openSync(model.source.fileOf(name), "r+");
      try {
        writeSync(
          fd,
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
          0,
          data.byteLength,
          start + element * 2,
        );
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    };
    patch(`${p}${gate}.weight`, c * H, bits);
    patch(`${p}${up}.weight`, c * H, bits);
    patch(`${p}${down}.weight`, r * I + c, new Uint16Array([toBf16Bits(downValue)]));
    if (moe)
      patch(
        `model.layers.${layer}.block_sparse_moe.gate.weight`,
        expert * H,
        Uint16Array.from(n2, (v) => toBf16Bits((routerLogit * v) / (norm * norm))),
      );
    const silu = dot / (1 + Math.exp(-dot));
    return {
      version: VERSION,
      layer,
      channel: c,
      row: r,
      ...(moe ? { expert } : {}),
      gate: dot,
      up: dot,
      expectedInput: silu * dot,
      downValue,
    };
  } finally {
    model.close();
  }
}
