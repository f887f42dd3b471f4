// `npm run bench`: figures, not pass/fail. Writes (once) a Llama-2-7B-shaped bf16 checkpoint with a
// planted super weight, runs each measurement in a fresh child process (dist/bench/child.js) with the
// page cache warm, runs the PyTorch peer on the same checkpoint when python3-torch is installed, prints
// a table with ratios and writes every figure to <bench dir>/results.json. Then the same for a 2-layer
// Mixtral-8x7B-shaped checkpoint (8 experts of 14336, top-2, 6.4 GB) with a super weight planted in one
// expert: our forward pass and scan (experts read per pass) beside a PyTorch forward of it (torch_moe.py;
// the peer's scan_torch.py runs dense models only, which the bench shows by trying it).
//
// Then the other commands' costs on the same checkpoint: eval's perplexity window (1 and 4 arms), GGUF
// dequantization, and with --extra a Q4_K_M GGUF of it scanned beside the bf16 original and a 2048-token
// window on a Llama-3-shaped checkpoint (128k vocabulary).
//
//   node dist/bench/bench.js [--quick] [--layers 2..4] [--repeat N] [--no-peer] [--no-moe] [--extra]
//   node dist/bench/bench.js --full [--13b] [--cold] [--repeat N] [--no-peer]    real-size checkpoints (full.ts)
//   SUPERWEIGHT_BENCH_DIR   where the checkpoint and results go (default: <tmpdir>/superweight-bench)
//
// To add a measurement, add an entry to `measurements` below: a name, the child's arguments (and its script).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureCheckpoint, MOE_SHAPE, PLANT } from "./synthetic.js";
import { findPeer, gb, runPeer, s2, table, warmPageCache, type Peer, type PeerRun } from "./tools.js";
import { full } from "./full.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const repo = resolve(here, "../..");
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(name);
const option = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const quick = flag("--quick");
const layers = option("--layers", quick ? 2 : 4);
const repeat = option("--repeat", 2);
if (!(Number.isInteger(layers) && layers >= 2 && layers <= 4)) throw new Error("--layers must be 2, 3 or 4");
const benchDir = process.env.SUPERWEIGHT_BENCH_DIR || join(tmpdir(), "superweight-bench");
const ckpt = join(benchDir, `llama7b-shaped-L${layers}`);
const moeCkpt = join(benchDir, "mixtral-shaped-L2");
const rtn4 = `${ckpt}.rtn4`; // the packed 4-bit checkpoint of ckpt (bench/child-quantize.ts)
const log = (s: string) => process.stderr.write(`${s}\n`);

type Json = Record<string, any>;
/** A child measurement: `script` (default child.js) in dist/bench with `args`. */
interface Measurement {
  name: string;
  args: string[];
  script?: string;
}
interface Outcome {
  name: string;
  wallS: number;
  result: Json;
  runs: number;
}

const measurements: Measurement[] = [
  { name: "forward-16", args: ["forward", ckpt, "16"] },
  ...(quick ? [] : [{ name: "forward-512", args: ["forward", ckpt, "512"] }]),
  { name: "scan-16", args: ["scan", ckpt, "16"] },
  { name: "gemm-16", args: ["gemm", "16", "4096", "11008"] },
  { name: "gemm-512", args: ["gemm", "512", "4096", "11008"] },
  { name: "io", args: ["io", ckpt] },
  { name: "quantize-rtn4", script: "child-quantize.js", args: ["write", ckpt, rtn4] },
  { name: "forward-16-rtn4", args: ["forward", rtn4, "16"] },
  // A CLI command measured the same way (the checkpoint has no tokenizer.json, so give ids; these are the peer's 11):
  // { name: "scan-11", args: ["cli", join(repo, "dist/src/cli/main.js"), "scan", ckpt, "--ids", "1,12113,9266,29889,338,263,3186,8157,13784,5001,29889"] },
];

/** Run a child measurement `times` times; keep the run with the least wall time. */
function measure(m: Measurement, times = repeat): Outcome {
  let best: Outcome | undefined;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const script = join(here, m.script ?? "child.js");
    const p = spawnSync(process.execPath, [script, ...m.args], { encoding: "utf8", maxBuffer: 64 << 20 });
    const wallS = (performance.now() - t0) / 1000;
    const line = p.stdout
      .split("\n")
      .reverse()
      .find((l) => l.startsWith("BENCH_RESULT "));
    if (p.status !== 0 || !line)
      throw new Error(`measurement ${m.name} failed (exit ${p.status}):\n${p.stderr.slice(-4000)}`);
    const result = JSON.parse(line.slice("BENCH_RESULT ".length)) as Json;
    if (!best || wallS < best.wallS) best = { name: m.name, wallS, result, runs: times };
  }
  return best!;
}

// ---- the PyTorch peer (../shared/tools/peer/scan_torch.py); never installed by the bench ----
interface PeerCase extends PeerRun {
  name: string;
  mode: string;
  runs: number;
}

function peer(): { runs: PeerCase[] } | { skipped: string } {
  if (flag("--no-peer")) return { skipped: "--no-peer" };
  const found = findPeer(repo);
  if ("skipped" in found) return found;
  const runs: PeerCase[] = [];
  const cases: [string, number | undefined][] = [
    ["bf16", undefined],
    ["bf16", 16],
    ["f32", undefined],
    ["f32", 16],
  ];
  if (!quick) cases.push(["bf16", 512], ["f32", 512]);
  for (const [mode, tokens] of cases) {
    let best: PeerCase | undefined;
    for (let i = 0; i < repeat; i++) {
      const r = runPeer(found, ckpt, mode, 2, tokens);
      const run: PeerCase = { ...r, name: `torch-${mode}-${r.tokens}`, mode, runs: repeat };
      if (!best || run.wallS < best.wallS) best = run;
    }
    runs.push(best!);
    log(`  ${best!.name}: ${best!.wallS} s, ${(best!.peakRSSKB / 1e6).toFixed(2)} GB, found ${best!.found}`);
  }
  return { runs };
}

/** The peer's runner on another script (bench/torch_moe.py), best of `repeat`. */
function peerRun(peer: Peer, script: string, folder: string, prefix: string, mode: string, tokens?: number): PeerCase {
  let best: PeerCase | undefined;
  for (let i = 0; i < repeat; i++) {
    const r = runPeer({ ...peer, script }, folder, mode, 2, tokens);
    const run: PeerCase = { ...r, name: `${prefix}-${mode}-${r.tokens}`, mode, runs: repeat };
    if (!best || run.wallS < best.wallS) best = run;
  }
  log(`  ${best!.name}: ${best!.wallS} s, ${(best!.peakRSSKB / 1e6).toFixed(2)} GB, found ${best!.found}`);
  return best!;
}

// ---- the Mixtral-shaped MoE ----
const MOE_TOKENS = [11, 4];
const moeMeasurements: Measurement[] = [
  ...MOE_TOKENS.map((t) => ({ name: `moe-forward-${t}`, args: ["forward", moeCkpt, String(t)] })),
  ...MOE_TOKENS.map((t) => ({ name: `moe-scan-${t}`, args: ["scan", moeCkpt, String(t)] })),
];

/** Whether the peer's own scan_torch.py can run the MoE checkpoint (it cannot: it reads dense MLP names). */
function peerOnMoe(peer: Peer): string {
  const p = spawnSync(peer.python, [peer.script, moeCkpt, "bf16", "2"], {
    encoding: "utf8",
    env: peer.env,
    maxBuffer: 64 << 20,
  });
  if (p.status === 0) return "ran";
  return `fails: ${p.stderr.trim().split("\n").pop()}`;
}

async function moe(): Promise<{ lines: string[]; results: Json }> {
  log(`MoE checkpoint: ${moeCkpt}`);
  const plant = await ensureCheckpoint(moeCkpt, 2, log, "moe");
  log("warming the page cache …");
  warmPageCache(moeCkpt);
  const ours: Record<string, Outcome> = {};
  for (const m of moeMeasurements) {
    log(`measuring ${m.name} …`);
    ours[m.name] = measure(m);
  }
  log("PyTorch on the MoE …");
  const found = flag("--no-peer") ? { skipped: "--no-peer" } : findPeer(repo);
  const skipped = "skipped" in found ? found.skipped : undefined;
  const scanTorch = "skipped" in found ? `skipped (${found.skipped})` : peerOnMoe(found);
  const torchScript = join(repo, "bench", "torch_moe.py");
  const torch =
    "skipped" in found
      ? []
      : [
          ...MOE_TOKENS.map((t) => peerRun(found, torchScript, moeCkpt, "torch-moe", "bf16", t)),
          peerRun(found, torchScript, moeCkpt, "torch-moe", "f32", 11),
        ];

  const { hidden, experts, intermediate, topK } = MOE_SHAPE;
  const lines = [
    `\nMixture of Experts: 2 layers of Mixtral-8x7B shape (hidden ${hidden}, ${experts} experts of ${intermediate}, top-${topK}), bf16 on disk; planted: layer ${plant.layer} expert ${plant.expert} w2[${plant.row}, ${plant.channel}]\n`,
  ];
  const read = (r: Json) => (r.experts ? r.experts.map((e: Json) => `${e.touched}/${e.total}`).join(", ") : "-");
  lines.push(
    table(
      ["run", "wall s", "fwd/scan s", "forward runs", "experts read per pass", "GB read", "peak RSS GB", "found"],
      Object.values(ours).map(({ name, wallS, result: r }) => [
        name,
        s2(wallS),
        s2(r.kind === "scan" ? r.scanS : r.forwardS),
        r.forwardRuns ?? 1,
        read(r),
        (r.bytesRead / 1e9).toFixed(2),
        gb(r.maxRSSKB),
        r.found
          ? r.found.map((w: Json) => `[${w.layer}, ${w.expert}, ${w.row}, ${w.column}] ${w.class}`).join("; ")
          : "-",
      ]),
    ),
  );
  lines.push(`\nthe peer's scan_torch.py on this checkpoint: ${scanTorch}`);
  if (skipped) lines.push(`torch_moe.py: skipped (${skipped})`);
  else {
    lines.push(
      "PyTorch forward of the same checkpoint (bench/torch_moe.py, 2 threads, one pass + the per-expert rule), and ratios ours / torch\n",
    );
    lines.push(
      table(
        ["torch run", "wall s", "load s", "fwd s", "experts computed", "peak RSS GB", "found"],
        torch.map((p) => [
          p.name,
          s2(p.wallS),
          s2(p.loadS),
          s2(p.forwardS),
          `${p.result.experts_touched}/${p.result.experts_total}`,
          gb(p.peakRSSKB),
          JSON.stringify(p.result.found_at),
        ]),
      ),
    );
    lines.push("");
    const rows: string[][] = [];
    for (const o of Object.values(ours))
      for (const p of torch.filter((p) => p.tokens === o.result.tokens))
        rows.push([
          `${o.name} vs ${p.name}`,
          s2(o.wallS / p.wallS),
          s2((o.result.kind === "scan" ? o.result.scanS : o.result.forwardS) / p.forwardS),
          s2(o.result.maxRSSKB / p.peakRSSKB),
        ]);
    lines.push(table(["ours vs torch", "wall ratio", "forward/scan vs torch forward", "RSS ratio"], rows));
  }
  return { lines, results: { checkpoint: moeCkpt, plant, ours, scanTorch, torch } };
}

// ---- the other commands: eval's perplexity window, GGUF dequantization and scan, a 128k-vocabulary head ----
const llama3 = join(benchDir, "llama3-shaped-L2"),
  gguf = join(benchDir, `llama7b-shaped-L${layers}-Q4_K_M.gguf`);
const otherMeasurements = (): Measurement[] => [
  { name: "eval-ppl-512x1", script: "child-eval.js", args: ["perplexity", ckpt, "512", "1"] },
  { name: "eval-ppl-512x4", script: "child-eval.js", args: ["perplexity", ckpt, "512", "4"] },
  { name: "gguf-dequant-Q4_K", script: "child-gguf.js", args: ["dequant", "Q4_K", String(1 << 24)] },
  { name: "gguf-dequant-Q8_0", script: "child-gguf.js", args: ["dequant", "Q8_0", String(1 << 24)] },
  ...(flag("--extra")
    ? [
        { name: "gguf-write-Q4_K_M", script: "child-gguf.js", args: ["write", ckpt, gguf] },
        { name: "scan-16-gguf", args: ["scan", gguf, "16"] },
        { name: "eval-ppl-llama3-2048", script: "child-eval.js", args: ["perplexity-llama3", llama3, "2048"] },
      ]
    : []),
];

function others(): { lines: string[]; results: Record<string, Outcome> } {
  const ours: Record<string, Outcome> = {};
  for (const m of otherMeasurements()) {
    log(`measuring ${m.name} …`);
    ours[m.name] = measure(m, m.name.startsWith("gguf-write") ? 1 : repeat);
  }
  const rows = Object.values(ours).map(({ name, wallS, result: r }) => {
    const what =
      r.kind === "perplexity"
        ? `${r.tokensPerS.toFixed(1)} tok/s (${r.variantTokensPerS.toFixed(1)} variant·tok/s), ${r.variants} arm${r.variants > 1 ? "s" : ""}`
        : r.kind === "dequant"
          ? `${(r.elementsPerS / 1e9).toFixed(2)} G elements/s, rms error ${r.rmsError.toExponential(2)}`
          : r.kind === "write"
            ? r.skipped
              ? "already written"
              : `${(r.bytes / 1e9).toFixed(2)} GB in ${s2(r.wallS)} s`
            : r.kind === "scan"
              ? `${s2(r.scanS)} s scan, ${(r.bytesRead / 1e9).toFixed(2)} GB read`
              : "";
    return [name, s2(wallS), what, gb(r.maxRSSKB)];
  });
  return {
    lines: [
      "\nOther commands (best of " + repeat + " fresh processes)\n",
      table(["run", "wall s", "figure", "peak RSS GB"], rows),
    ],
    results: ours,
  };
}

async function main(): Promise<void> {
  log(`checkpoint: ${ckpt} (${layers} layers)`);
  const plant = await ensureCheckpoint(ckpt, layers, log);
  log("warming the page cache …");
  warmPageCache(ckpt);
  measure(measurements[0], 1); // warm-up run, not recorded
  const ours: Record<string, Outcome> = {};
  for (const m of measurements) {
    log(`measuring ${m.name} …`);
    ours[m.name] = measure(m);
  }
  log("PyTorch peer …");
  const torch = peer();

  const out: string[] = [];
  const fwd = Object.values(ours).filter((o) => o.result.kind === "forward");
  out.push(
    `\nOur forward pass (${layers} layers, Llama-2-7B shapes, bf16 on disk, backend ${fwd[0]?.result.backend}; best of ${repeat} fresh processes)\n`,
  );
  out.push(
    table(
      [
        "run",
        "wall s",
        "init s",
        "fwd s",
        "tok/s",
        "s/layer",
        "head s",
        "lanes s",
        "worker share",
        "read s",
        "linear s",
        "attn s",
        "other s",
        "gc s",
        "GB/s",
        "peak RSS GB",
        "page faults",
        "sys s",
      ],
      fwd.map(({ name, wallS, result: r }) => [
        name,
        s2(wallS),
        s2(r.backendInitS + r.openS),
        s2(r.forwardS),
        r.tokensPerS.toFixed(1),
        r.layerS.map(s2).join(" "),
        s2(r.headS),
        s2(r.lanesS),
        s2(r.workerBlockShare),
        s2(r.readS),
        s2(r.linearS),
        s2(r.attentionS),
        s2(r.otherS),
        s2(r.gcS),
        (r.bytesRead / r.forwardS / 1e9).toFixed(2),
        gb(r.maxRSSKB),
        r.minorPageFaults,
        s2(r.systemS),
      ]),
    ),
  );
  out.push(
    "\n(lanes = the weight products of safetensors weights, each block read, widened and multiplied by one of the lanes — the main thread and a worker per further core —,\n worker share = the blocks the workers made; read = Model.readRows: file read + bf16→f32 widening elsewhere; linear / attn = backend products; other = norms, rope, softmax, copies, hooks;\n gc = V8 GC pauses, inside the others; GB/s = weight bytes read / forward s; page faults = the process's minor faults, each a first touch of fresh memory)",
  );

  const scans = Object.values(ours).filter((o) => o.result.kind === "scan");
  if (scans.length) {
    out.push("\nThe scan (paper's rule iterated + one causal check per candidate), same ids as the forward pass\n");
    out.push(
      table(
        [
          "run",
          "wall s",
          "scan s",
          "forward runs",
          "layer passes",
          "weights read (passes)",
          "GB read",
          "GB/s",
          "peak RSS GB",
          "scan / forward-" + scans[0].result.tokens,
          "found",
        ],
        scans.map(({ name, wallS, result: r }) => {
          const f = ours[`forward-${r.tokens}`]?.result;
          return [
            name,
            s2(wallS),
            s2(r.scanS),
            r.forwardRuns,
            r.layerPasses.toFixed(2),
            r.weightPasses.toFixed(2),
            (r.bytesRead / 1e9).toFixed(2),
            (r.bytesRead / r.scanS / 1e9).toFixed(2),
            gb(r.maxRSSKB),
            f ? s2(r.scanS / f.forwardS) : "-",
            r.found.map((w: Json) => `[${w.layer}, ${w.row}, ${w.column}] ${w.class}`).join("; "),
          ];
        }),
      ),
    );
  }

  const gemm = Object.values(ours).filter((o) => o.result.kind === "gemm");
  const io = ours["io"]?.result;
  out.push("\nKernels\n");
  out.push(
    table(
      ["what", "figure"],
      [
        ...gemm.map(({ result: r }) => [
          `GEMM ${r.backend} M=${r.m} K=${r.k} N=${r.n} (f32)`,
          `${r.gflops.toFixed(1)} GFLOP/s`,
        ]),
        ...(io
          ? [
              ["raw read, page cache (readSync)", `${io.rawReadGBps.toFixed(2)} GB/s`],
              ["bf16→f32 widening in the block buffer (WASM SIMD)", `${io.widenGElemPerS.toFixed(2)} G elements/s`],
              [
                "Model.readRows (read + widen) into the block buffer",
                `${io.readRowsGElemPerS.toFixed(2)} G elements/s = ${io.readRowsGBps.toFixed(2)} GB/s of bf16`,
              ],
              [
                "Model.readRows, fresh array per block (JS widening)",
                `${io.readRowsFreshGElemPerS.toFixed(2)} G elements/s`,
              ],
              ["first touch of fresh memory (page faults)", `${io.touchFreshGBps.toFixed(2)} GB/s`],
            ]
          : []),
      ],
    ),
  );

  const quantized = Object.values(ours).filter((o) => o.result.kind === "quantize");
  if (quantized.length) {
    out.push(
      "\nQuantization to the packed checkpoint (planted super weight held out); forward-16-rtn4 above runs it\n",
    );
    out.push(
      table(
        ["run", "scheme", "s", "M params/s", "peak RSS GB", "GB on disk", "of the source's"],
        quantized.map(({ name, result: r }) => [
          name,
          r.scheme,
          s2(r.seconds),
          (r.parametersPerS / 1e6).toFixed(1),
          gb(r.maxRSSKB),
          (r.writtenBytes / 1e9).toFixed(2),
          `${((100 * r.writtenBytes) / r.sourceBytes).toFixed(1)} %`,
        ]),
      ),
    );
  }

  out.push(
    `\nPlanted super weight: layer ${plant.layer} down_proj[${plant.row}, ${plant.channel}] (expected input at token 0 ≈ ${plant.expectedInput.toFixed(1)})\n`,
  );
  for (const { name, result: r } of fwd) {
    out.push(`${name}:`);
    out.push(
      table(
        [
          "layer",
          "max|down_proj in|",
          "at [tok, ch]",
          "max off token 0",
          "max|down_proj out|",
          "at [tok, row]",
          "max off token 0",
        ],
        r.spikes.map((s: Json) => [
          s.layer,
          s2(s.input.max),
          `[${s.input.token}, ${s.input.index}]`,
          s2(s.input.maxOffToken0),
          s2(s.output.max),
          `[${s.output.token}, ${s.output.index}]`,
          s2(s.output.maxOffToken0),
        ]),
      ),
    );
    const over = r.spikes.filter((s: Json) => s.input.max > 50 && s.output.max > 50).map((s: Json) => s.layer);
    out.push(
      `  layers with both > 50: [${over.join(", ")}] — ${over.length === 1 && over[0] === plant.layer ? "as planted" : "NOT as planted"}\n`,
    );
  }

  if ("skipped" in torch) out.push(`peer: skipped (${torch.skipped})`);
  else {
    out.push("PyTorch peer (scan_torch.py, 2 threads; best of " + repeat + "), and ratios ours / torch\n");
    out.push(
      table(
        ["torch run", "wall s", "load s", "fwd s", "peak RSS GB", "found"],
        torch.runs.map((p) => [p.name, s2(p.wallS), s2(p.loadS), s2(p.forwardS), gb(p.peakRSSKB), p.found]),
      ),
    );
    out.push("");
    const rows: string[][] = [];
    for (const o of fwd)
      for (const p of torch.runs.filter((p) => p.tokens === o.result.tokens))
        rows.push([
          `${o.name} vs ${p.name}`,
          s2(o.wallS / p.wallS),
          s2(o.result.forwardS / p.forwardS),
          s2(o.result.maxRSSKB / p.peakRSSKB),
        ]);
    out.push(table(["ours vs torch", "wall ratio", "forward ratio", "RSS ratio"], rows));
  }
  const moeResults = flag("--no-moe") ? undefined : await moe();
  if (moeResults) out.push(...moeResults.lines);
  const other = quick ? undefined : others();
  if (other) out.push(...other.lines);
  console.log(out.join("\n"));

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    checkpoint: ckpt,
    layers,
    repeat,
    quick,
    plant: { ...plant, planted: PLANT },
    ours,
    torch,
    moe: moeResults?.results,
    other: other?.results,
  };
  writeFileSync(join(benchDir, "results.json"), JSON.stringify(results, null, 2));
  console.log(`\nresults: ${join(benchDir, "results.json")}`);
}

if (flag("--full"))
  await full({
    repo,
    here,
    benchDir,
    repeat: option("--repeat", 3),
    peer: !flag("--no-peer"),
    big: flag("--13b"),
    cold: flag("--cold"),
    log,
  });
else await main();
