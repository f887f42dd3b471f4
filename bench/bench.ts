// `npm run bench`: figures, not pass/fail. Writes (once) a Llama-2-7B-shaped bf16 checkpoint with a
// planted super weight, runs each measurement in a fresh child process (dist/bench/child.js) with the
// page cache warm, runs the PyTorch peer on the same checkpoint when python3-torch is installed, prints
// a table with ratios and writes every figure to <bench dir>/results.json. Then the same for a 2-layer
// Mixtral-8x7B-shaped checkpoint (8 experts of 14336, top-2, 6.4 GB) with a super weight planted in one
// expert: our forward pass and scan (experts read per pass) beside a PyTorch forward of it (torch_moe.py;
// the peer's scan_torch.py runs dense models only, which the bench shows by trying it).
//
//   node dist/bench/bench.js [--quick] [--layers 2..4] [--repeat N] [--no-peer] [--no-moe]
//   SUPERWEIGHT_BENCH_DIR   where the checkpoint and results go (default: <tmpdir>/superweight-bench)
//
// To add a measurement, add an entry to `measurements` below: a name and the child's arguments.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureCheckpoint, MOE_SHAPE, PLANT } from "./synthetic.js";

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
interface Measurement { name: string; args: string[]; child?: string }
interface Outcome { name: string; wallS: number; result: Json; runs: number }

const measurements: Measurement[] = [
  { name: "forward-16", args: ["forward", ckpt, "16"] },
  ...(quick ? [] : [{ name: "forward-512", args: ["forward", ckpt, "512"] }]),
  { name: "scan-16", args: ["scan", ckpt, "16"] },
  { name: "gemm-16", args: ["gemm", "16", "4096", "11008"] },
  { name: "gemm-512", args: ["gemm", "512", "4096", "11008"] },
  { name: "io", args: ["io", ckpt] },
  { name: "quantize-rtn4", child: "child-quantize.js", args: ["write", ckpt, rtn4] },
  { name: "forward-16-rtn4", args: ["forward", rtn4, "16"] },
  // A CLI command measured the same way (the checkpoint has no tokenizer.json, so give ids; these are the peer's 11):
  // { name: "scan-11", args: ["cli", join(repo, "dist/src/cli/main.js"), "scan", ckpt, "--ids", "1,12113,9266,29889,338,263,3186,8157,13784,5001,29889"] },
];

/** Run a child measurement `times` times; keep the run with the least wall time. */
function measure(m: Measurement, times = repeat): Outcome {
  let best: Outcome | undefined;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    const p = spawnSync(process.execPath, [join(here, m.child ?? "child.js"), ...m.args], { encoding: "utf8", maxBuffer: 64 << 20 });
    const wallS = (performance.now() - t0) / 1000;
    const line = p.stdout.split("\n").reverse().find((l) => l.startsWith("BENCH_RESULT "));
    if (p.status !== 0 || !line) throw new Error(`measurement ${m.name} failed (exit ${p.status}):\n${p.stderr.slice(-4000)}`);
    const result = JSON.parse(line.slice("BENCH_RESULT ".length)) as Json;
    if (!best || wallS < best.wallS) best = { name: m.name, wallS, result, runs: times };
  }
  return best!;
}

/** Read every file of the checkpoint once so that all runs find it in the page cache. */
function warmPageCache(folder: string): void {
  const buf = Buffer.alloc(64 << 20);
  for (const f of readdirSync(folder)) {
    const fd = openSync(join(folder, f), "r");
    while (readSync(fd, buf, 0, buf.length, null) > 0);
    closeSync(fd);
  }
}

// ---- the PyTorch peer (../shared/tools/peer/scan_torch.py); never installed by the bench ----
interface PeerRun { name: string; mode: string; tokens: number; wallS: number; peakRSSKB: number; loadS: number; forwardS: number; found: number; runs: number; result: Json }
const python = "/usr/bin/python3", time = "/usr/bin/time";
const peerScript = process.env.SUPERWEIGHT_PEER || resolve(repo, "../shared/tools/peer/scan_torch.py");

function peerUnavailable(script: string): string | undefined {
  if (flag("--no-peer")) return "--no-peer";
  if (!existsSync(script)) return `${script} not found`;
  if (!existsSync(time)) return `${time} not installed`;
  if (spawnSync(python, ["-c", "import torch"]).status !== 0) return "python3-torch not installed";
  return undefined;
}

function peerEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SUPERWEIGHT_PEER_DIR: dirname(peerScript) };
  const openblas = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
  if (existsSync(openblas)) env.LD_LIBRARY_PATH = [openblas, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  if (/avx512f/.test(readFileSync("/proc/cpuinfo", "utf8"))) env.OPENBLAS_CORETYPE = "SkylakeX";
  return env;
}

/** One peer script on a checkpoint, best of `repeat`: its JSON line, wall time and peak RSS (/usr/bin/time). */
function peerRun(script: string, folder: string, prefix: string, mode: string, tokens?: number): PeerRun {
  let best: PeerRun | undefined;
  for (let i = 0; i < repeat; i++) {
    const args = ["-f", "%M %e", python, script, folder, mode, "2", ...(tokens ? [String(tokens)] : [])];
    const p = spawnSync(time, args, { encoding: "utf8", env: peerEnv(), maxBuffer: 64 << 20 });
    const out = p.stdout.split("\n").reverse().find((l) => l.startsWith("{"));
    const timeLine = p.stderr.trim().split("\n").pop() ?? "";
    if (p.status !== 0 || !out) throw new Error(`peer ${prefix} ${mode} ${tokens ?? 11} failed (exit ${p.status}):\n${p.stderr.slice(-4000)}`);
    const r = JSON.parse(out) as Json;
    const [rss, wall] = timeLine.split(" ").map(Number);
    const run: PeerRun = { name: `${prefix}-${mode}-${r.tokens}`, mode, tokens: r.tokens, wallS: wall, peakRSSKB: rss, loadS: r.load_s, forwardS: r.forward_s, found: r.found, runs: repeat, result: r };
    if (!best || run.wallS < best.wallS) best = run;
  }
  log(`  ${best!.name}: ${best!.wallS} s, ${(best!.peakRSSKB / 1e6).toFixed(2)} GB, found ${best!.found}`);
  return best!;
}

function peer(): { runs: PeerRun[] } | { skipped: string } {
  const skipped = peerUnavailable(peerScript);
  if (skipped) return { skipped };
  const cases: [string, number | undefined][] = [["bf16", undefined], ["bf16", 16], ["f32", undefined], ["f32", 16]];
  if (!quick) cases.push(["bf16", 512], ["f32", 512]);
  return { runs: cases.map(([mode, tokens]) => peerRun(peerScript, ckpt, "torch", mode, tokens)) };
}

// ---- the Mixtral-shaped MoE ----
const MOE_TOKENS = [11, 4];
const moeMeasurements: Measurement[] = [
  ...MOE_TOKENS.map((t) => ({ name: `moe-forward-${t}`, args: ["forward", moeCkpt, String(t)] })),
  ...MOE_TOKENS.map((t) => ({ name: `moe-scan-${t}`, args: ["scan", moeCkpt, String(t)] })),
];

/** Whether the peer's own scan_torch.py can run the MoE checkpoint (it cannot: it reads dense MLP names). */
function peerOnMoe(): string {
  const skipped = peerUnavailable(peerScript);
  if (skipped) return `skipped (${skipped})`;
  const p = spawnSync(python, [peerScript, moeCkpt, "bf16", "2"], { encoding: "utf8", env: peerEnv(), maxBuffer: 64 << 20 });
  if (p.status === 0) return "ran";
  return `fails: ${p.stderr.trim().split("\n").pop()}`;
}

async function moe(): Promise<{ lines: string[]; results: Json }> {
  log(`MoE checkpoint: ${moeCkpt}`);
  const plant = await ensureCheckpoint(moeCkpt, 2, log, true);
  log("warming the page cache …");
  warmPageCache(moeCkpt);
  const ours: Record<string, Outcome> = {};
  for (const m of moeMeasurements) {
    log(`measuring ${m.name} …`);
    ours[m.name] = measure(m);
  }
  log("PyTorch on the MoE …");
  const scanTorch = peerOnMoe();
  const torchScript = join(repo, "bench", "torch_moe.py");
  const skipped = peerUnavailable(torchScript);
  const torch = skipped ? [] : [...MOE_TOKENS.map((t) => peerRun(torchScript, moeCkpt, "torch-moe", "bf16", t)), peerRun(torchScript, moeCkpt, "torch-moe", "f32", 11)];

  const { hidden, experts, intermediate, topK } = MOE_SHAPE;
  const lines = [`\nMixture of Experts: 2 layers of Mixtral-8x7B shape (hidden ${hidden}, ${experts} experts of ${intermediate}, top-${topK}), bf16 on disk; planted: layer ${plant.layer} expert ${plant.expert} w2[${plant.row}, ${plant.channel}]\n`];
  const read = (r: Json) => (r.experts ? r.experts.map((e: Json) => `${e.touched}/${e.total}`).join(", ") : "-");
  lines.push(table(["run", "wall s", "fwd/scan s", "forward runs", "experts read per pass", "GB read", "peak RSS GB", "found"],
    Object.values(ours).map(({ name, wallS, result: r }) => [
      name, s2(wallS), s2(r.kind === "scan" ? r.scanS : r.forwardS), r.forwardRuns ?? 1, read(r), (r.bytesRead / 1e9).toFixed(2), gb(r.maxRSSKB),
      r.found ? r.found.map((w: Json) => `[${w.layer}, ${w.expert}, ${w.row}, ${w.column}] ${w.class}`).join("; ") : "-",
    ])));
  lines.push(`\nthe peer's scan_torch.py on this checkpoint: ${scanTorch}`);
  if (skipped) lines.push(`torch_moe.py: skipped (${skipped})`);
  else {
    lines.push("PyTorch forward of the same checkpoint (bench/torch_moe.py, 2 threads, one pass + the per-expert rule), and ratios ours / torch\n");
    lines.push(table(["torch run", "wall s", "load s", "fwd s", "experts computed", "peak RSS GB", "found"],
      torch.map((p) => [p.name, s2(p.wallS), s2(p.loadS), s2(p.forwardS), `${p.result.experts_touched}/${p.result.experts_total}`, gb(p.peakRSSKB), JSON.stringify(p.result.found_at)])));
    lines.push("");
    const rows: string[][] = [];
    for (const o of Object.values(ours))
      for (const p of torch.filter((p) => p.tokens === o.result.tokens))
        rows.push([`${o.name} vs ${p.name}`, s2(o.wallS / p.wallS), s2((o.result.kind === "scan" ? o.result.scanS : o.result.forwardS) / p.forwardS), s2(o.result.maxRSSKB / p.peakRSSKB)]);
    lines.push(table(["ours vs torch", "wall ratio", "forward/scan vs torch forward", "RSS ratio"], rows));
  }
  return { lines, results: { checkpoint: moeCkpt, plant, ours, scanTorch, torch } };
}

// ---- printing ----
const gb = (kb: number) => (kb / 1e6).toFixed(2);
const s2 = (x: number) => x.toFixed(2);
function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...cells.slice(1).map(line)].join("\n");
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
  out.push(`\nOur forward pass (${layers} layers, Llama-2-7B shapes, bf16 on disk, backend ${fwd[0]?.result.backend}; best of ${repeat} fresh processes)\n`);
  out.push(table(
    ["run", "wall s", "init s", "fwd s", "tok/s", "s/layer", "head s", "read s", "linear s", "attn s", "other s", "gc s", "GB/s", "peak RSS GB", "page faults", "sys s"],
    fwd.map(({ name, wallS, result: r }) => [
      name, s2(wallS), s2(r.backendInitS + r.openS), s2(r.forwardS), r.tokensPerS.toFixed(1),
      r.layerS.map(s2).join(" "), s2(r.headS), s2(r.readS), s2(r.linearS), s2(r.attentionS), s2(r.otherS), s2(r.gcS),
      (r.bytesRead / r.forwardS / 1e9).toFixed(2), gb(r.maxRSSKB), r.minorPageFaults, s2(r.systemS),
    ])));
  out.push("\n(read = Model.readRows: file read + bf16→f32 widening; linear / attn = backend products; other = norms, rope, softmax, copies, hooks; gc = V8 GC pauses, inside the others;\n GB/s = weight bytes read / forward s; page faults = the process's minor faults, each a first touch of fresh memory)");

  const scans = Object.values(ours).filter((o) => o.result.kind === "scan");
  if (scans.length) {
    out.push("\nThe scan (paper's rule iterated + one causal check per candidate), same ids as the forward pass\n");
    out.push(table(["run", "wall s", "scan s", "forward runs", "layer passes", "weights read (passes)", "GB read", "GB/s", "peak RSS GB", "scan / forward-" + scans[0].result.tokens, "found"],
      scans.map(({ name, wallS, result: r }) => {
        const f = ours[`forward-${r.tokens}`]?.result;
        return [name, s2(wallS), s2(r.scanS), r.forwardRuns, r.layerPasses.toFixed(2), r.weightPasses.toFixed(2), (r.bytesRead / 1e9).toFixed(2),
          (r.bytesRead / r.scanS / 1e9).toFixed(2), gb(r.maxRSSKB), f ? s2(r.scanS / f.forwardS) : "-",
          r.found.map((w: Json) => `[${w.layer}, ${w.row}, ${w.column}] ${w.class}`).join("; ")];
      })));
  }

  const gemm = Object.values(ours).filter((o) => o.result.kind === "gemm");
  const io = ours["io"]?.result;
  out.push("\nKernels\n");
  out.push(table(["what", "figure"], [
    ...gemm.map(({ result: r }) => [`GEMM ${r.backend} M=${r.m} K=${r.k} N=${r.n} (f32)`, `${r.gflops.toFixed(1)} GFLOP/s`]),
    ...(io ? [
      ["raw read, page cache (readSync)", `${io.rawReadGBps.toFixed(2)} GB/s`],
      ["bf16→f32 widening in the block buffer (WASM SIMD)", `${io.widenGElemPerS.toFixed(2)} G elements/s`],
      ["Model.readRows (read + widen) into the block buffer", `${io.readRowsGElemPerS.toFixed(2)} G elements/s = ${io.readRowsGBps.toFixed(2)} GB/s of bf16`],
      ["Model.readRows, fresh array per block (JS widening)", `${io.readRowsFreshGElemPerS.toFixed(2)} G elements/s`],
      ["first touch of fresh memory (page faults)", `${io.touchFreshGBps.toFixed(2)} GB/s`],
    ] : []),
  ]));

  const quantized = Object.values(ours).filter((o) => o.result.kind === "quantize");
  if (quantized.length) {
    out.push("\nQuantization to the packed checkpoint (planted super weight held out); forward-16-rtn4 above runs it\n");
    out.push(table(["run", "scheme", "s", "M params/s", "peak RSS GB", "GB on disk", "of the source's"],
      quantized.map(({ name, result: r }) => [name, r.scheme, s2(r.seconds), (r.parametersPerS / 1e6).toFixed(1),
        gb(r.maxRSSKB), (r.writtenBytes / 1e9).toFixed(2), `${(100 * r.writtenBytes / r.sourceBytes).toFixed(1)} %`])));
  }

  out.push(`\nPlanted super weight: layer ${plant.layer} down_proj[${plant.row}, ${plant.channel}] (expected input at token 0 ≈ ${plant.expectedInput.toFixed(1)})\n`);
  for (const { name, result: r } of fwd) {
    out.push(`${name}:`);
    out.push(table(["layer", "max|down_proj in|", "at [tok, ch]", "max off token 0", "max|down_proj out|", "at [tok, row]", "max off token 0"],
      r.spikes.map((s: Json) => [s.layer, s2(s.input.max), `[${s.input.token}, ${s.input.index}]`, s2(s.input.maxOffToken0), s2(s.output.max), `[${s.output.token}, ${s.output.index}]`, s2(s.output.maxOffToken0)])));
    const over = r.spikes.filter((s: Json) => s.input.max > 50 && s.output.max > 50).map((s: Json) => s.layer);
    out.push(`  layers with both > 50: [${over.join(", ")}] — ${over.length === 1 && over[0] === plant.layer ? "as planted" : "NOT as planted"}\n`);
  }

  if ("skipped" in torch) out.push(`peer: skipped (${torch.skipped})`);
  else {
    out.push("PyTorch peer (scan_torch.py, 2 threads; best of " + repeat + "), and ratios ours / torch\n");
    out.push(table(["torch run", "wall s", "load s", "fwd s", "peak RSS GB", "found"],
      torch.runs.map((p) => [p.name, s2(p.wallS), s2(p.loadS), s2(p.forwardS), gb(p.peakRSSKB), p.found])));
    out.push("");
    const rows: string[][] = [];
    for (const o of fwd)
      for (const p of torch.runs.filter((p) => p.tokens === o.result.tokens))
        rows.push([`${o.name} vs ${p.name}`, s2(o.wallS / p.wallS), s2(o.result.forwardS / p.forwardS), s2(o.result.maxRSSKB / p.peakRSSKB)]);
    out.push(table(["ours vs torch", "wall ratio", "forward ratio", "RSS ratio"], rows));
  }
  const moeResults = flag("--no-moe") ? undefined : await moe();
  if (moeResults) out.push(...moeResults.lines);
  console.log(out.join("\n"));

  const results = { date: new Date().toISOString(), node: process.version, checkpoint: ckpt, layers, repeat, quick, plant: { ...plant, planted: PLANT }, ours, torch, moe: moeResults?.results };
  writeFileSync(join(benchDir, "results.json"), JSON.stringify(results, null, 2));
  console.log(`\nresults: ${join(benchDir, "results.json")}`);
}

await main();
