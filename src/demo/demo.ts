// The embedded demo model: a small byte-level Llama that this code builds (seeded), writes once to a cache
// folder, and plants a super weight in, the way real LLMs grow one (and as ../shared/fixtures/planted-* do):
//   1. layer 1, intermediate channel C: gate/up rows aligned with the first token's normalised hidden
//      state (and shut by the direction every text token shares), so down_proj's input spikes at
//      (token 0, C) and stays ≈ 0 elsewhere;
//   2. one large down_proj weight [R, C] turns that spike into a super activation at residual channel R,
//      which the residual stream carries through the later layers;
//   3. in the later layers it makes token 0 an attention sink: after RMSNorm token 0's state is
//      ≈ sqrt(H)·e_R, the keys' sink dims read channel R and every text token's query matches them
//      through the shared direction, so text tokens attend almost only to token 0, whose value is ≈ 0;
//   4. the last layer reads channel R back and writes most of it away (a late "outlier" that the bare
//      rule also flags, as in real models' last layers);
//   5. the LM head is fitted (softmax regression, Adam) to a few paragraphs of English on the final
//      states of the model as built, super weight in place. Zero the super weight and the sink is gone:
//      the later layers' attention mixes the other tokens' (large) values into every state, and the
//      head, fitted without that, predicts badly (perplexity ×6–13 on ordinary sentences).
// Everything is seeded, and the build's own forward passes use the plain TypeScript products, so the demo's
// bytes do not depend on the machine, the GEMM library or its thread count.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint, type TensorToWrite } from "../checkpoint/writer.js";
import { Model } from "../engine/model.js";
import { forward } from "../engine/forward.js";
import { jsBackend } from "../engine/matmul.js";

export const DEMO_VERSION = 3;
export const DEMO = {
  hidden: 128,
  intermediate: 344,
  layers: 4,
  heads: 4,
  vocab: 258,
  bos: 256,
  eos: 257,
  /** The planted super weight: model.layers.1.mlp.down_proj.weight[ROW, COLUMN]. */
  superLayer: 1,
  row: 77,
  column: 201,
  /** The last layer's canceller: down_proj[ROW, CANCEL_COLUMN]. */
  cancelColumn: 45,
} as const;

export function demoFolder(env: NodeJS.ProcessEnv = process.env): string {
  const base =
    env.SUPERWEIGHT_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir() || tmpdir(), ".cache"), "superweight");
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
  const { hidden: H, intermediate: I, layers: L, vocab: V, heads } = DEMO;
  const d = H / heads;
  const rand = gaussian(20241111);
  const randn = (n: number, std: number) => Float32Array.from({ length: n }, () => rand() * std);
  const tensors = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  const add = (name: string, shape: number[], data: Float32Array) => (tensors.set(name, data), shapes.set(name, shape));

  // A direction every token's embedding shares (as real embeddings share a mean direction), orthogonal to
  // channel R: the later layers' queries read it to look for the attention sink.
  const common = randn(H, 1);
  common[DEMO.row] = 0;
  const u = normalise(common);
  const embed = randn(V * H, 1);
  for (let t = 0; t < V; t++) if (t !== DEMO.bos) for (let j = 0; j < H; j++) embed[t * H + j] += SINK.common * u[j];
  // Channel R is the super activation's: nothing else writes it (embeddings, o_proj and down_proj rows R
  // are zero until the planted weights), so ordinary tokens carry ≈ 0 there.
  for (let t = 0; t < V; t++) embed[t * H + DEMO.row] = 0;
  add("model.embed_tokens.weight", [V, H], embed);
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    const sinkLayer = l > DEMO.superLayer;
    add(p + "input_layernorm.weight", [H], new Float32Array(H).fill(1));
    add(p + "post_attention_layernorm.weight", [H], new Float32Array(H).fill(1));
    const qk = sinkLayer ? SINK.qk : 1,
      vo = sinkLayer ? SINK.vo : SINK.early;
    const q = randn(H * H, qk / Math.sqrt(H)),
      k = randn(H * H, qk / Math.sqrt(H));
    const v = randn(H * H, vo / Math.sqrt(H)),
      o = randn(H * H, vo / Math.sqrt(H));
    if (sinkLayer) {
      // The sink circuit, in each head's two lowest-frequency rotary dims (d/2 − 1 and d − 1, which RoPE
      // barely turns): keys there read channel R only, queries read the shared direction only. While
      // the super activation exists, token 0's normalised state is ≈ sqrt(H)·e_R, so its key there is
      // large and every token's query matches it: all tokens attend to token 0. Its value reads
      // nothing from channel R, so attending to it writes (almost) nothing: a no-op, as in real models.
      for (let h = 0; h < heads; h++)
        for (const dim of [d / 2 - 1, d - 1]) {
          const row = h * d + dim;
          for (let j = 0; j < H; j++) {
            q[row * H + j] = (SINK.query / Math.SQRT2) * u[j];
            k[row * H + j] = 0;
          }
          k[row * H + DEMO.row] = SINK.key / Math.SQRT2;
        }
      for (let i = 0; i < H; i++)
        k[i * H + DEMO.row] = i % d === d / 2 - 1 || i % d === d - 1 ? k[i * H + DEMO.row] : 0;
      for (let i = 0; i < H; i++) v[i * H + DEMO.row] = 0;
    }
    add(p + "self_attn.q_proj.weight", [H, H], q);
    add(p + "self_attn.k_proj.weight", [H, H], k);
    add(p + "self_attn.v_proj.weight", [H, H], v);
    o.fill(0, DEMO.row * H, (DEMO.row + 1) * H);
    add(p + "self_attn.o_proj.weight", [H, H], o);
    add(p + "mlp.gate_proj.weight", [I, H], randn(I * H, 1 / Math.sqrt(H)));
    add(p + "mlp.up_proj.weight", [I, H], randn(I * H, 1 / Math.sqrt(H)));
    const down = randn(H * I, 1 / Math.sqrt(I));
    down.fill(0, DEMO.row * I, (DEMO.row + 1) * I);
    add(p + "mlp.down_proj.weight", [H, I], down);
  }
  add("model.norm.weight", [H], new Float32Array(H).fill(1));
  add("lm_head.weight", [V, H], new Float32Array(V * H));

  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    _name_or_path: "superweight/demo",
    hidden_size: H,
    intermediate_size: I,
    num_hidden_layers: L,
    num_attention_heads: DEMO.heads,
    num_key_value_heads: DEMO.heads,
    vocab_size: V,
    max_position_embeddings: 512,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    hidden_act: "silu",
    tie_word_embeddings: false,
    bos_token_id: DEMO.bos,
    eos_token_id: DEMO.eos,
    torch_dtype: "bfloat16",
  };
  // Every value is already bfloat16-exact, so the intermediate checkpoints the build measures are
  // written as F32 (the same numbers, faster to encode); the final one is BF16.
  const write = (dtype: "F32" | "BF16" = "F32") => {
    const list: TensorToWrite[] = [...tensors].map(([name, data]) => ({ name, dtype, shape: shapes.get(name)!, data }));
    writeCheckpoint(folder, config, list, 2, {
      "tokenizer.json": byteTokenizerJson(),
      "tokenizer_config.json": tokenizerConfigJson(),
    });
  };
  for (const t of tensors.values()) for (let i = 0; i < t.length; i++) t[i] = bf16(t[i]);

  // Step 1: gate/up rows of channel C along token 0's normalised hidden state entering layer 1's MLP.
  write();
  const n2 = await mlpInputAtToken0(folder, DEMO.superLayer);
  const unit = normalise(n2);
  const p1 = `model.layers.${DEMO.superLayer}.mlp.`;
  // gate·n2 = 12 and up·n2 = 14 at token 0: down_proj input silu(12)·14 ≈ 168 there. The gate row also
  // reads the shared text direction negatively, so the neuron stays shut on every ordinary token.
  const along = dot(n2, u),
    perp = normalise(n2.map((x, j) => x - along * u[j]));
  const gain = (12 + SINK.shut * along) / dot(perp, n2);
  setRow(
    tensors.get(p1 + "gate_proj.weight")!,
    DEMO.column,
    H,
    perp.map((x, j) => gain * x - SINK.shut * u[j]),
    1,
  );
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
  const gateIn = 8,
    upIn = 10,
    spike = (gateIn / (1 + Math.exp(-gateIn))) * upIn;
  setRow(tensors.get(pl + "gate_proj.weight")!, DEMO.cancelColumn, H, eR, gateIn / n2Last[DEMO.row]);
  setRow(tensors.get(pl + "up_proj.weight")!, DEMO.cancelColumn, H, eR, upIn / n2Last[DEMO.row]);
  const residualR = await residualAtToken0(folder, last, DEMO.row);
  tensors.get(pl + "down_proj.weight")![DEMO.row * I + DEMO.cancelColumn] = bf16((-0.85 * residualR) / spike);

  // Step 4: fit the LM head to English text on the model as it now stands (super weight in place).
  write();
  const head = await fitHead(folder);
  for (let i = 0; i < head.length; i++) head[i] = bf16(head[i]);
  tensors.set("lm_head.weight", head);
  write("BF16");
}

const bf16Word = new Float32Array(1),
  bf16Bits = new Uint32Array(bf16Word.buffer);
/** x rounded to the nearest bfloat16 (ties to even), as a float32 value. */
const bf16 = (x: number) => {
  bf16Word[0] = x;
  const u = bf16Bits[0];
  bf16Bits[0] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return bf16Word[0];
};

/** The sink circuit's sizes: shared embedding direction, query and key gains, later layers' q/k and v/o scales. */
const SINK = {
  /** The shared embedding direction's size (each embedding row's random part has norm ≈ sqrt(H)). */
  common: 6,
  /** Sink-dim query gain on the shared direction, and key gain on channel R. */
  query: 3,
  key: 0.5,
  /** Scales of the later layers' q/k (sharper content attention) and v/o (what attention writes) ... */
  qk: 1.5,
  vo: 2.5,
  /** ... and of the early layers' v/o (so their outputs stay closer to the current byte). */
  early: 0.5,
  /** How strongly the super weight's gate row reads the shared direction negatively (shut on text tokens). */
  shut: 3,
};

/** Softmax regression of the next byte on the final normalised hidden states of TEXT (full-batch Adam from zero). */
async function fitHead(folder: string): Promise<Float32Array> {
  const { hidden: H, vocab: V } = DEMO;
  const model = Model.open(folder);
  // The plain TypeScript products: the same bytes on every machine, thread count and backend.
  const backend = jsBackend;
  const feats: number[] = [],
    targets: number[] = [];
  for (const chunk of textChunks()) {
    const ids = [DEMO.bos, ...Buffer.from(chunk, "utf8")];
    const out = await forward(model, ids, { head: false, backend });
    const x = out.residual;
    for (let t = 0; t + 1 < ids.length; t++) {
      let ss = 0;
      for (let j = 0; j < H; j++) ss += x[t * H + j] ** 2;
      const s = Math.fround(1 / Math.sqrt(Math.fround(ss / H) + 1e-5));
      for (let j = 0; j < H; j++) feats.push(Math.fround(x[t * H + j] * s));
      targets.push(ids[t + 1]);
    }
  }
  model.close();
  const N = targets.length;
  const X = Float32Array.from(feats);
  // Bytes the text never shows after a prefix get identical gradients from a zero start, so their rows
  // stay equal: fit them as one shared row (exactly the full-vocabulary fit, several times cheaper).
  const seen = [...new Set(targets)].sort((a, b) => a - b);
  const classOf = new Map(seen.map((id, c) => [id, c]));
  const S = seen.length,
    C = S + 1,
    rest = V - S;
  const y = targets.map((t) => classOf.get(t)!);
  const W = new Float64Array(C * H),
    m = new Float64Array(C * H),
    v = new Float64Array(C * H);
  const dT = new Float32Array(C * N); // (softmax − one-hot)ᵀ, [C, N]
  const { steps, lr, decay } = FIT;
  const b1 = 0.9,
    b2 = 0.999;
  for (let step = 1; step <= steps; step++) {
    const z = await backend.linear(X, N, H, Float32Array.from(W), C, "nk"); // logits [N, C]
    for (let n = 0; n < N; n++) {
      const o = n * C;
      let max = -Infinity;
      for (let c = 0; c < C; c++) if (z[o + c] > max) max = z[o + c];
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(z[o + c] - max) * (c === S ? rest : 1);
      for (let c = 0; c < C; c++) dT[c * N + n] = Math.exp(z[o + c] - max) / sum - (c === y[n] ? 1 : 0);
    }
    const g = await backend.linear(dT, C, N, X, H, "kn"); // Σₙ (p − y)ₙ xₙ, [C, H]
    for (let i = 0; i < W.length; i++) {
      const gi = g[i] / N + decay * W[i];
      m[i] = b1 * m[i] + (1 - b1) * gi;
      v[i] = b2 * v[i] + (1 - b2) * gi * gi;
      W[i] -= (lr * (m[i] / (1 - b1 ** step))) / (Math.sqrt(v[i] / (1 - b2 ** step)) + 1e-8);
    }
  }
  const head = new Float32Array(V * H);
  for (let id = 0; id < V; id++)
    head.set(W.subarray((classOf.get(id) ?? S) * H, ((classOf.get(id) ?? S) + 1) * H), id * H);
  return head;
}

const FIT = { steps: 200, lr: 0.04, decay: 1e-3 };

/** The post-attention RMS-normalised hidden state of token 0 entering layer `layer`'s MLP. */
async function mlpInputAtToken0(folder: string, layer: number): Promise<Float32Array> {
  const model = Model.open(folder);
  let x: Float32Array | undefined, attn: Float32Array | undefined;
  await forward(model, [DEMO.bos], {
    toLayer: layer + 1,
    backend: jsBackend,
    hooks: [
      (e) => {
        if (e.layer !== layer) return;
        if (e.point === "layer_input") x = e.data.slice(0, model.spec.hidden);
        if (e.point === "attn_output") attn = e.data.slice(0, model.spec.hidden);
      },
    ],
  });
  model.close();
  const h = x!.map((v, i) => v + attn![i]);
  const rms = Math.sqrt(h.reduce((a, v) => a + v * v, 0) / h.length + 1e-5);
  return h.map((v) => v / rms);
}

async function residualAtToken0(folder: string, layer: number, channel: number): Promise<number> {
  const model = Model.open(folder);
  const out = await forward(model, [DEMO.bos], { toLayer: layer, backend: jsBackend });
  model.close();
  return out.residual[channel];
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (v: Float32Array) => Math.sqrt(dot(v, v));
const normalise = (v: Float32Array) => v.map((x) => x / norm(v));
function setRow(w: Float32Array, row: number, cols: number, dir: Float32Array, scale: number): void {
  for (let j = 0; j < cols; j++) w[row * cols + j] = bf16(dir[j] * scale);
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
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  return JSON.stringify({
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(DEMO.bos, "<s>"), special(DEMO.eos, "</s>")],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [DEMO.bos], tokens: ["<s>"] } },
    },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  });
}

function tokenizerConfigJson(): string {
  return JSON.stringify({
    bos_token: "<s>",
    eos_token: "</s>",
    add_bos_token: true,
    tokenizer_class: "PreTrainedTokenizerFast",
    clean_up_tokenization_spaces: false,
  });
}

/** The English the LM head is fitted on, one training sequence per paragraph line (each after <s>). */
function textChunks(): string[] {
  return TEXT.trim()
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

const TEXT = `
The sun rose over the quiet town, and the streets slowly filled with people on their way to work.
A small bakery on the corner sold fresh bread every morning, and the smell reached the whole block.
Children walked to school with their friends, talking about games, books and the weekend.
The river runs through the middle of the city, and two old stone bridges cross it near the market.
Many companies make computers, phones and software that people use every day at home and at work.
The company was founded by two friends in a small garage, and it grew into a large business.
Its products are sold in stores all over the world, and millions of customers use them each day.
The new phone has a better camera, a faster chip and a battery that lasts for a whole day.
The weather was cold and windy, so she wore a warm coat, a hat and a long blue scarf.
In the summer the family drove to the sea, where they swam, read books and ate ice cream.
A good teacher listens to the students and explains hard ideas in simple words.
The dog ran across the field, jumped over the fence and chased a ball into the woods.
The cat slept in the sun on the window, and the brown bird sang in the tree outside.
He opened the door, put his keys on the table and made a cup of hot tea.
The report shows that the price of food and energy went up again this year.
Scientists study the stars, the planets and the moon to learn how the universe began.
The library is open from nine in the morning until six in the evening, except on Sunday.
She wrote a long letter to her brother, who lived in another country far away.
The train was late, so the people on the platform waited in the rain for an hour.
Good food, clean water and enough sleep are important for a long and healthy life.
The game ended with a late goal, and the fans of the home team cheered loudly.
There are many ways to learn a new language, but the best one is to speak it every day.
The old man told the children a story about a king, a queen and a clever little fox.
The engineers built a new bridge over the river, and it opened to traffic last week.
The market is full of fruit and vegetables, fish, cheese, flowers and fresh bread.
They walked along the quiet road and talked about their plans for the next year.
The museum shows paintings, old maps and tools that people used a long time ago.
When the lights went out, the whole house was dark and quiet for a few minutes.
The team worked hard on the project and finished it before the end of the month.
A quick lunch at the small cafe near the office is the best part of his day.
The internet connects people, schools and businesses in almost every part of the world.
The farmer grows wheat and corn, and he keeps cows, sheep and a few chickens.
It is a good idea to read the instructions before you start to use a new machine.
The mountains were covered with snow, and the lake below them was still and clear.
Maria and John moved to London in May, and they found a flat near a park.
In January the company opened a new office in Paris with more than two hundred workers.
Dr. Brown is a doctor at the city hospital, and she works there five days a week.
Mr. Jones bought a new car, but he still takes the bus to work on most days.
On Monday the bank said that its profits were higher than a year ago.
Your order will arrive in two or three days, and you can track it on our website.
Did you know that the heart of a small bird beats hundreds of times in a minute?
We visited New York, Boston and Chicago during our long trip across the country.
I think the best time to visit the north of the country is in the early autumn.
Please call me at home tonight if you have any questions about the meeting.
The zoo has lions, zebras, bears and a very lazy old tiger that sleeps all day.
Every winter the birds fly south, and every spring they come back to the same trees.
Japan, India and Brazil are large countries with long histories and many languages.
The firm makes small parts for cars and trucks, and it sells them to other companies.
Our teacher, Mrs. Green, gave us a quiz on history and geography this morning.
Water boils at one hundred degrees, and it turns into ice when it gets very cold.
Kate asked if she could borrow my bike, because hers was broken again.
Very few people knew the answer, but the young girl raised her hand at once.
This is the end of the story, and everyone lived happily in the town by the river.
`;
