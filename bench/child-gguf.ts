// GGUF measurements, one per process so that peak RSS is its own: `node dist/bench/child-gguf.js <kind> <args…>`.
// Prints one line `BENCH_RESULT {json}` with the process's peak RSS and CPU seconds, as dist/bench/child.js does.
//   dequant <type> <elements>            src/gguf/dequant.ts on N(0, 0.02) weights quantized to <type> (Q4_K, Q8_0,
//                                        …) by src/gguf/quantize.ts: elements per second, best of several sweeps
//   write <bf16 checkpoint> <out.gguf>   the synthetic checkpoint (bench/synthetic.ts) as llama.cpp's Q4_K_M
//                                        (src/gguf/mixture.ts chooseTypes, quantizeRow, q/k rows permuted as the
//                                        converter does), quantized on every core; skipped when <out.gguf> exists
// A scan of the GGUF file is `dist/bench/child.js scan <out.gguf> <tokens>`: Model.open reads either kind.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { isMainThread, Worker, workerData } from "node:worker_threads";
import { Model } from "../src/engine/model.js";
import type { GgufKv } from "../src/gguf/container.js";
import { dequantize } from "../src/gguf/dequant.js";
import { chooseTypes, type TensorInfo } from "../src/gguf/mixture.js";
import { GGML_TYPES, quantizedSize, quantizeRow, type GgmlType } from "../src/gguf/quantize.js";
import { encodeHeader } from "../src/gguf/writer.js";
import { xorshift } from "./synthetic.js";

const now = () => performance.now() / 1000;
const report = (result: Record<string, unknown>) => {
  const u = process.resourceUsage();
  const cpu = { maxRSSKB: u.maxRSS, userS: u.userCPUTime / 1e6, systemS: u.systemCPUTime / 1e6 };
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ...result, ...cpu })}\n`);
};

/** N(0, 0.02) weights (Box-Muller on xorshift32), with a super-weight-like 2.0 every 65536 values. */
function weights(n: number, seed: number): Float32Array {
  const next = xorshift(seed);
  const u = () => (next() + 1) / 4294967297;
  const x = new Float32Array(n);
  const normal = () => 0.02 * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  for (let i = 0; i < n; i++) x[i] = i % 65536 === 300 ? 2 : normal();
  return x;
}

function dequantBench(type: GgmlType, elements: number): void {
  const info = GGML_TYPES[type];
  const src = weights(elements, 99);
  const raw = new Uint8Array(quantizedSize(type, elements));
  const tq = now();
  quantizeRow(type, src, raw);
  const quantizeS = now() - tq;
  const out = new Float32Array(elements);
  dequantize(out, raw, info, elements); // warm-up
  const sweeps: number[] = [];
  const t0 = now();
  while (sweeps.length < 5 || now() - t0 < 2) {
    const s = now();
    dequantize(out, raw, info, elements);
    sweeps.push(now() - s);
  }
  const best = Math.min(...sweeps);
  let sq = 0;
  for (let i = 0; i < elements; i++) sq += (out[i] - src[i]) ** 2;
  report({
    kind: "dequant",
    type,
    elements,
    bytes: raw.length,
    sweeps: sweeps.length,
    bestS: best,
    elementsPerS: elements / best,
    bytesPerS: raw.length / best,
    quantizeElementsPerS: elements / quantizeS,
    rmsError: Math.sqrt(sq / elements),
  });
}

// ---- a Q4_K_M GGUF from a Hugging Face llama checkpoint (bench only: the exporter is src/export/) ----

const LAYER_NAMES: [string, string][] = [
  ["input_layernorm", "attn_norm"],
  ["self_attn.q_proj", "attn_q"],
  ["self_attn.k_proj", "attn_k"],
  ["self_attn.v_proj", "attn_v"],
  ["self_attn.o_proj", "attn_output"],
  ["post_attention_layernorm", "ffn_norm"],
  ["mlp.gate_proj", "ffn_gate"],
  ["mlp.up_proj", "ffn_up"],
  ["mlp.down_proj", "ffn_down"],
];

/** One tensor to write: where it comes from, its type, where it goes in the file. */
interface Job {
  hf: string;
  gguf: string;
  type: GgmlType;
  ne: number[];
  heads: number;
  at: number;
  bytes: number;
}

function plan(ckpt: string): { jobs: Job[]; header: Uint8Array; total: number } {
  const model = Model.open(ckpt);
  try {
    const s = model.spec;
    const names: [string, string, number][] = [
      ["model.embed_tokens.weight", "token_embd.weight", 0],
      ["model.norm.weight", "output_norm.weight", 0],
      ["lm_head.weight", "output.weight", 0],
    ];
    for (let l = 0; l < s.layers; l++)
      for (const [hf, g] of LAYER_NAMES) {
        const heads = g === "attn_q" ? s.heads : g === "attn_k" ? s.kvHeads : 0;
        names.push([`model.layers.${l}.${hf}.weight`, `blk.${l}.${g}.weight`, heads]);
      }
    const infos: TensorInfo[] = names.map(([hf, g]) => ({ name: g, ne: [...model.shape(hf)].reverse() }));
    const mixture = { arch: "llama", nLayers: s.layers, nHead: s.heads, nHeadKv: s.kvHeads };
    const types = chooseTypes("Q4_K_M", infos, mixture);
    const order = [...types.keys()];
    const byName = new Map(names.map(([hf, g, heads]) => [g, { hf, heads }]));
    const neOf = (g: string) => infos.find((t) => t.name === g)!.ne as number[];
    const tensors = order.map((g) => ({ name: g, type: types.get(g)!, ne: neOf(g) }));
    const f32 = (v: number): GgufKv => ({ type: "FLOAT32", value: v });
    const u32 = (v: number): GgufKv => ({ type: "UINT32", value: v });
    const metadata: [string, GgufKv][] = [
      ["general.architecture", { type: "STRING", value: "llama" }],
      ["general.name", { type: "STRING", value: "llama7b-shaped synthetic (superweight bench)" }],
      ["llama.block_count", u32(s.layers)],
      ["llama.context_length", u32(s.maxPositions)],
      ["llama.embedding_length", u32(s.hidden)],
      ["llama.feed_forward_length", u32(s.intermediate)],
      ["llama.attention.head_count", u32(s.heads)],
      ["llama.attention.head_count_kv", u32(s.kvHeads)],
      ["llama.rope.freq_base", f32(Number(model.source.config.rope_theta ?? 10000))],
      ["llama.attention.layer_norm_rms_epsilon", f32(s.normEps)],
      ["llama.rope.dimension_count", u32(s.headDim)],
      ["llama.vocab_size", u32(s.vocab)],
      ["general.file_type", u32(15)],
      ["general.quantization_version", u32(2)],
    ];
    const { header, placed } = encodeHeader(metadata, tensors);
    const jobs = placed.map((p) => ({
      ...byName.get(p.name)!,
      gguf: p.name,
      type: p.type.name as GgmlType,
      ne: p.ne,
      at: header.length + p.offset,
      bytes: p.byteLength,
    }));
    const last = placed[placed.length - 1];
    return { jobs, header, total: header.length + last.offset + last.byteLength };
  } finally {
    model.close();
  }
}

/** HF row of GGUF row g of a permuted projection (heads of hd rows): the converter's permutation. */
const hfRow = (g: number, hd: number) => {
  const h = Math.floor(g / hd),
    rem = g - h * hd;
  return h * hd + (rem & 1) * (hd / 2) + (rem >> 1);
};

/** Quantize `jobs` from `ckpt` into the open file (every job its own byte range). */
function quantizeJobs(ckpt: string, file: string, jobs: Job[]): void {
  const model = Model.open(ckpt);
  const fd = openSync(file, "r+");
  try {
    for (const j of jobs) {
      if (j.ne.length === 1) {
        // A norm: readRows counts its values as rows.
        const out = new Uint8Array(j.bytes);
        quantizeRow(j.type, model.read(j.hf), out);
        writeSync(fd, out, 0, out.length, j.at);
        continue;
      }
      const [cols, rows] = j.ne;
      // Whole heads for a permuted projection, else about 4M values at a time.
      const step = j.heads ? rows / j.heads : Math.max(1, Math.floor((4 << 20) / cols));
      const rowBytes = quantizedSize(j.type, cols);
      for (let g0 = 0; g0 < rows; g0 += step) {
        const g1 = Math.min(rows, g0 + step);
        let x = model.readRows(j.hf, g0, g1, new Float32Array((g1 - g0) * cols));
        if (j.heads) {
          const hd = rows / j.heads,
            src = x;
          x = new Float32Array(src.length);
          for (let g = g0; g < g1; g++) {
            const from = (hfRow(g, hd) - g0) * cols;
            x.set(src.subarray(from, from + cols), (g - g0) * cols);
          }
        }
        const out = new Uint8Array((g1 - g0) * rowBytes);
        quantizeRow(j.type, x, out);
        const at = j.at + g0 * rowBytes;
        for (let done = 0; done < out.length;) done += writeSync(fd, out, done, out.length - done, at + done);
      }
    }
  } finally {
    closeSync(fd);
    model.close();
  }
}

async function write(ckpt: string, out: string): Promise<void> {
  if (existsSync(out)) return report({ kind: "write", out, skipped: "exists" });
  const t0 = now();
  const { jobs, header, total } = plan(ckpt);
  const tmp = `${out}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, header);
    ftruncateSync(fd, total); // the padding between tensors: zeros
    // Jobs dealt to workers by size, largest first; each worker reads the checkpoint itself.
    const workers = Math.max(1, availableParallelism());
    const shares: Job[][] = Array.from({ length: workers }, () => []);
    const load = new Array(workers).fill(0);
    for (const j of [...jobs].sort((a, b) => b.bytes - a.bytes)) {
      const w = load.indexOf(Math.min(...load));
      shares[w].push(j);
      load[w] += j.bytes * (j.type === "Q8_0" || j.type === "F32" ? 0.1 : 1);
    }
    await Promise.all(
      shares
        .filter((s) => s.length)
        .map(
          (share) =>
            new Promise<void>((resolve, reject) => {
              const w = new Worker(fileURLToPath(import.meta.url), { workerData: { ckpt, file: tmp, jobs: share } });
              w.on("error", reject);
              w.on("exit", (code) =>
                code === 0 ? resolve() : reject(new Error(`quantizing worker exited with ${code}`)),
              );
            }),
        ),
    );
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, out);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  const types: Record<string, number> = {};
  for (const j of jobs) types[j.type] = (types[j.type] ?? 0) + 1;
  const workers = availableParallelism();
  report({ kind: "write", out, bytes: total, tensors: jobs.length, types, workers, wallS: now() - t0 });
}

if (!isMainThread) {
  const { ckpt, file, jobs } = workerData as { ckpt: string; file: string; jobs: Job[] };
  quantizeJobs(ckpt, file, jobs);
} else {
  const [kind, ...args] = process.argv.slice(2);
  if (kind === "dequant") dequantBench(args[0] as GgmlType, Number(args[1]));
  else if (kind === "write") await write(args[0], args[1]);
  else throw new Error(`unknown measurement kind "${kind}"`);
}
