// One measurement per process, so peak RSS is its own: `node dist/bench/child.js <kind> <args…>`.
// Prints one line `BENCH_RESULT {json}` (always with maxRSSKB, the process's peak RSS, its minor page
// faults and CPU seconds: on some VMs a first touch of fresh memory costs more than the work itself; and the
// bytes it had read from the drive, where the system tells).
//   forward <ckpt> <tokens>   one forward pass; seconds per phase, per layer, and where the time went
//   gemm <M> <K> <N>          the matmul backend alone on f32 weights
//   io <ckpt>                 raw read, bf16→f32 widening, Model.readRows (into a reused / a fresh buffer),
//                             and first-touch rate of fresh memory, on layer 0's big matrices
//   scan <ckpt> <tokens>      the whole scan (iterations + causal checks) on the same ids as `forward`; for a
//                             Mixture-of-Experts checkpoint also the experts each pass read
//   cli <script> <args…>      any CLI command (e.g. dist/src/cli/main.js scan <ckpt>), peak RSS at exit
//   floor <ckpt> <threads>    the page-cache floor: every byte of the checkpoint's .safetensors files read once
//                             (1 MB reads), by `threads` threads each reading its own contiguous part
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";
import { join, resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { PerformanceObserver } from "node:perf_hooks";
import { Model } from "../src/engine/model.js";
import type { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { forward } from "../src/engine/forward.js";
import { getBackend, type MatmulBackend } from "../src/engine/matmul.js";
import { Lanes, lanesFor } from "../src/engine/lanes.js";
import { blockBuffer, MAX_BLOCK_ELEMENTS } from "../src/checkpoint/block-buffer.js";
import { widenInPlace } from "../src/checkpoint/dtype.js";
import { xorshift } from "./synthetic.js";
import { scan } from "../src/superweight/scan.js";

const now = () => performance.now() / 1000;
const report = (result: Record<string, unknown>) => {
  const u = process.resourceUsage();
  const usage = {
    maxRSSKB: u.maxRSS,
    minorPageFaults: u.minorPageFault,
    userS: u.userCPUTime / 1e6,
    systemS: u.systemCPUTime / 1e6,
  };
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ...result, ...usage, diskReadBytes: diskReadBytes() })}\n`);
};

/** Bytes this process has had read from the drive (Linux's /proc/self/io: what the page cache did not hold). */
function diskReadBytes(): number | undefined {
  try {
    return Number(/^read_bytes: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))?.[1]);
  } catch {
    return undefined;
  }
}

/** BOS 1, then fixed pseudo-random ids in [3, vocab). */
function promptIds(tokens: number, vocab: number): number[] {
  const next = xorshift(2024);
  return [1, ...Array.from({ length: tokens - 1 }, () => 3 + (next() % (vocab - 3)))];
}

async function forwardOnce(folder: string, tokens: number): Promise<void> {
  let gcS = 0;
  new PerformanceObserver((list) => list.getEntries().forEach((e) => (gcS += e.duration / 1000))).observe({
    entryTypes: ["gc"],
  });
  const t0 = now();
  const backend = await getBackend();
  const t1 = now();
  const model = Model.open(folder);
  const t2 = now();
  // Where the time goes: readRows (read + widen) is synchronous and timed exactly; a product's time is
  // call → resolve minus any reading done meanwhile (the engine reads the next block before awaiting).
  let readS = 0,
    readBytes = 0;
  const readRows = model.readRows.bind(model);
  model.readRows = (name, r0, r1, out) => {
    const s = now();
    const w = readRows(name, r0, r1, out);
    readS += now() - s;
    readBytes += ((r1 - r0) * model.info(name).bytes) / model.shape(name)[0];
    return w;
  };
  const timed = { linearS: 0, linearCalls: 0, attentionS: 0, attentionCalls: 0 };
  const wrap = (kind: "linear" | "attention", run: () => Promise<Float32Array>) => {
    const s = now(),
      r = readS;
    return run().then((y) => {
      timed[`${kind}S`] += now() - s - (readS - r);
      timed[`${kind}Calls`]++;
      return y;
    });
  };
  const timedBackend: MatmulBackend = {
    name: backend.name,
    threads: backend.threads,
    linear: (...a) => wrap("linear", () => backend.linear(...a)),
    batched: (...a) => wrap("attention", () => backend.batched(...a)),
  };
  // The lanes' products (safetensors weights: read, widen and multiply on every core) are timed as one, with
  // the share of blocks the worker lanes made.
  const lanes = backend.threads ? await lanesFor(backend.threads) : undefined;
  let lanesS = 0,
    laneBlocks = 0;
  if (lanes) {
    lanes.startWorkers();
    while (lanes.ready < lanes.threads - 1 && now() - t0 < 10) await new Promise((r) => setTimeout(r, 10));
    const product = lanes.product.bind(lanes);
    lanes.product = async (job, x, m) => {
      const s = now();
      const y = await product(job, x, m);
      lanesS += now() - s;
      laneBlocks += Math.ceil((job.r1 - job.r0) / Lanes.step(job.cols, m));
      return y;
    };
  }
  const workerBlocks0 = lanes?.workerBlocks ?? 0;
  // The paper's statistics per layer: max |down_proj input| and |output|, where, and the largest off token 0.
  const spikes: { layer: number; input: Spike; output: Spike }[] = [];
  let expertsRead = 0; // Mixture of Experts: experts a token was routed to (only those are read)
  const layerEnds: number[] = [];
  const ids = promptIds(tokens, model.spec.vocab);
  const t3 = now();
  const result = await forward(model, ids, {
    backend: timedBackend,
    onLayer: () => layerEnds.push(now()),
    hooks: [
      (e) => {
        if (e.point === "down_proj_input" && typeof e.expert === "number") expertsRead++;
        // Dense layers only: an expert's rows are a subset of tokens, a sparse block's output has no input.
        if ((e.point !== "down_proj_input" && e.point !== "down_proj_output") || e.expert !== undefined || !e.tensor)
          return;
        if (e.point === "down_proj_input")
          spikes.push({ layer: e.layer, input: spike(e.data, e.width), output: undefined! });
        else spikes[spikes.length - 1].output = spike(e.data, e.width);
      },
    ],
  });
  const t4 = now();
  const ex = model.spec.experts;
  const layerS = layerEnds.map((t, i) => t - (i === 0 ? t3 : layerEnds[i - 1]));
  const f = (x: number) => Math.round(x * 1e4) / 1e4;
  report({
    kind: "forward",
    tokens,
    backend: backend.name,
    fallbackReason: backend.fallbackReason,
    backendInitS: f(t1 - t0),
    openS: f(t2 - t1),
    forwardS: f(t4 - t3),
    tokensPerS: f(tokens / (t4 - t3)),
    layerS: layerS.map(f),
    headS: f(t4 - layerEnds[layerEnds.length - 1]),
    bytesRead: result.bytesRead,
    readS: f(readS),
    readBytes,
    linearS: f(timed.linearS),
    linearCalls: timed.linearCalls,
    attentionS: f(timed.attentionS),
    attentionCalls: timed.attentionCalls,
    lanesS: f(lanesS),
    lanes: lanes?.threads ?? 0,
    workerBlockShare: f(((lanes?.workerBlocks ?? 0) - workerBlocks0) / Math.max(laneBlocks, 1)),
    otherS: f(t4 - t3 - readS - timed.linearS - timed.attentionS - lanesS),
    gcS: f(gcS),
    spikes,
    logitsFinite: result.logits!.every(Number.isFinite),
    ...(ex ? { experts: [{ touched: expertsRead, total: ex.count * sparseLayers(model) }] } : {}),
  });
  model.close();
}

function sparseLayers(model: Model): number {
  return [...Array(model.spec.layers).keys()].filter((l) => model.spec.experts!.sparse(l)).length;
}

interface Spike {
  max: number;
  token: number;
  index: number;
  maxOffToken0: number;
}
function spike(data: Float32Array, width: number): Spike {
  let max = -1,
    at = 0,
    off = 0;
  for (let i = 0; i < data.length; i++) {
    const a = Math.abs(data[i]);
    if (a > max) ((max = a), (at = i));
    if (i >= width && a > off) off = a;
  }
  return { max, token: Math.floor(at / width), index: at % width, maxOffToken0: off };
}

async function gemm(m: number, k: number, n: number): Promise<void> {
  const backend = await getBackend();
  const next = xorshift(7);
  const rand = (len: number) => Float32Array.from({ length: len }, () => next() / 4294967296 - 0.5);
  const x = rand(m * k),
    w = rand(n * k);
  await backend.linear(x, m, k, w, n, "nk"); // warm-up
  let calls = 0;
  const t0 = now();
  while (calls < 3 || now() - t0 < 1.5) (await backend.linear(x, m, k, w, n, "nk"), calls++);
  const s = (now() - t0) / calls;
  report({ kind: "gemm", backend: backend.name, m, k, n, calls, secondsPerCall: s, gflops: (2 * m * k * n) / s / 1e9 });
}

/** Rates on layer 0's seven big matrices, page cache warm, in the engine's block size. */
async function io(folder: string): Promise<void> {
  const model = Model.open(folder);
  const names = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
  ].map((n) => `model.layers.0.${n}.weight`);
  const blocks = names.flatMap((name) => {
    const [rows, cols] = model.shape(name);
    const per = Math.max(1, Math.floor(MAX_BLOCK_ELEMENTS / cols));
    return Array.from({ length: Math.ceil(rows / per) }, (_, i) => ({
      name,
      cols,
      r0: i * per,
      r1: Math.min(rows, (i + 1) * per),
    }));
  });
  const elements = blocks.reduce((a, b) => a + (b.r1 - b.r0) * b.cols, 0);
  const buf = blockBuffer(MAX_BLOCK_ELEMENTS); // the engine's own block buffer (WASM memory: SIMD widening)
  type What = "raw" | "widen" | "readRows" | "readRowsFresh" | "touchFresh";
  const pass = (what: What) => {
    const t0 = now();
    for (const b of blocks) {
      const count = (b.r1 - b.r0) * b.cols,
        out = buf.subarray(0, count);
      if (what === "readRows") model.readRows(b.name, b.r0, b.r1, out);
      else if (what === "readRowsFresh")
        model.readRows(b.name, b.r0, b.r1); // a new array per block (plain JS widening)
      else if (what === "touchFresh")
        new Float32Array(count).fill(1); // first touch of fresh memory (page faults)
      else if (what === "widen") widenInPlace(out, count, "BF16");
      else {
        const info = (model.source as Checkpoint).header(b.name);
        const fd = openSync(model.source.fileOf(b.name), "r");
        const bytes = new Uint8Array(buf.buffer, 0, count * 2);
        for (let done = 0; done < bytes.length;)
          done += readSync(fd, bytes, done, bytes.length - done, info.start + b.r0 * b.cols * 2 + done);
        closeSync(fd);
      }
    }
    return now() - t0;
  };
  const best = (what: What) => Math.min(pass(what), pass(what), pass(what));
  const raw = best("raw"),
    widen = best("widen"),
    rows = best("readRows"),
    fresh = best("readRowsFresh"),
    touch = best("touchFresh");
  report({
    kind: "io",
    elements,
    bytes: elements * 2,
    rawReadGBps: (elements * 2) / raw / 1e9,
    widenGElemPerS: elements / widen / 1e9,
    readRowsGElemPerS: elements / rows / 1e9,
    readRowsGBps: (elements * 2) / rows / 1e9,
    readRowsFreshGElemPerS: elements / fresh / 1e9,
    touchFreshGBps: (elements * 4) / touch / 1e9,
  });
  model.close();
}

async function scanOnce(folder: string, tokens: number): Promise<void> {
  const t0 = now();
  await getBackend();
  const model = Model.open(folder);
  const t1 = now();
  const r = await scan(model, [{ label: "ids", ids: promptIds(tokens, model.spec.vocab) }], {
    threshold: 50,
    maxIterations: 10,
  });
  report({
    kind: "scan",
    tokens,
    initS: t1 - t0,
    scanS: r.seconds,
    forwardRuns: r.forwardPasses,
    layerPasses: r.layerPasses,
    weightPasses: r.weightPasses,
    bytesRead: r.bytesRead,
    experts: r.iterations[0].map((i) => i.experts ?? null),
    found: r.superWeights.map((w) => ({
      layer: w.layer,
      expert: w.expert,
      row: w.row,
      column: w.column,
      class: w.class,
      iteration: w.iteration,
    })),
  });
  model.close();
}

/** Read every .safetensors file of `folder` once, split into `threads` contiguous parts read side by side. */
async function floor(folder: string, threads: number): Promise<void> {
  const files = readdirSync(folder)
    .filter((f) => f.endsWith(".safetensors"))
    .map((f) => join(folder, f));
  const parts = files.flatMap((path) => {
    const fd = openSync(path, "r"),
      size = fstatSync(fd).size;
    closeSync(fd);
    const per = Math.ceil(size / threads / 2 ** 20) * 2 ** 20;
    return Array.from({ length: threads }, (_, i) => ({ path, from: i * per, to: Math.min(size, (i + 1) * per) }));
  });
  const bytes = parts.reduce((s, p) => s + Math.max(0, p.to - p.from), 0);
  const reader = `const { workerData, parentPort } = require("node:worker_threads"), fs = require("node:fs");
    const buf = Buffer.alloc(1 << 20);
    for (const p of workerData) { const fd = fs.openSync(p.path, "r");
      for (let at = p.from; at < p.to;) at += fs.readSync(fd, buf, 0, Math.min(buf.length, p.to - at), at);
      fs.closeSync(fd); }
    parentPort.postMessage("done");`;
  const t0 = now();
  await Promise.all(
    Array.from(
      { length: threads },
      (_, i) =>
        new Promise((done, fail) => {
          const w = new Worker(reader, { eval: true, workerData: parts.filter((_, j) => j % threads === i) });
          w.once("message", done).once("error", fail);
        }),
    ),
  );
  const seconds = now() - t0;
  report({ kind: "floor", threads, bytes, seconds, GBps: bytes / seconds / 1e9 });
}

async function cli(script: string, args: string[]): Promise<void> {
  process.argv = [process.argv[0], resolve(script), ...args];
  process.on("exit", (code) => report({ kind: "cli", exitCode: code }));
  await import(pathToFileURL(resolve(script)).href);
}

const [kind, ...args] = process.argv.slice(2);
if (kind === "forward") await forwardOnce(args[0], Number(args[1]));
else if (kind === "gemm") await gemm(Number(args[0]), Number(args[1]), Number(args[2]));
else if (kind === "io") await io(args[0]);
else if (kind === "scan") await scanOnce(args[0], Number(args[1]));
else if (kind === "cli") await cli(args[0], args.slice(1));
else if (kind === "floor") await floor(args[0], Number(args[1]));
else throw new Error(`unknown measurement kind "${kind}"`);
