// `npm run bench -- --full`: real-size figures. Writes (once, outside the repository, reused while its shape
// matches) the full-depth Llama-2-7B-shaped bf16 checkpoint, 32 layers, 13.5 GB — and with --13b also the
// 13B shape, 40 layers, 26 GB, larger than most machines' memory, so that every pass over it reads from disk (it
// is skipped, with a message, when the disk lacks room). Then, in rounds that interleave the commands (A B C A B C
// …, the machine is shared), it measures: the page-cache floor (every byte of the checkpoint read once, on one
// thread and on every core), `superweight run` and `superweight scan` of 11 tokens, and the PyTorch peer's bf16
// forward of the same 11 tokens; it prints medians of wall and CPU time, peak RSS, the load average, and ratios.
// With --cold every command starts with the checkpoint out of the page cache (posix_fadvise DONTNEED on each file,
// through Python's os module, as Node has no fadvise): a first scan's reads from the drive.
//
//   node dist/bench/bench.js --full [--13b] [--cold] [--repeat N] [--no-peer]
import { spawnSync } from "node:child_process";
import { existsSync, statfsSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { checkpointBytes, ensureCheckpoint, SHAPES } from "./synthetic.js";
import { findPeer, gb, runPeer, s2, table, warmPageCache } from "./tools.js";

type Json = Record<string, any>;

/** The peer's 11 ids ("Apple Inc. is a worldwide tech company." in Llama-2's tokenizer). */
const IDS = [1, 12113, 9266, 29889, 338, 263, 3186, 8157, 13784, 5001, 29889];

interface Sample {
  wallS: number;
  cpuS: number;
  peakRSSKB: number;
  load: number;
  diskBytes?: number;
  result: Json;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

interface FullOptions {
  repo: string;
  here: string;
  benchDir: string;
  repeat: number;
  peer: boolean;
  big: boolean;
  cold: boolean;
  log: (s: string) => void;
}

/** Drop the page cache's copy of the folder's .safetensors files (clean pages only: they were written long ago). */
function evict(folder: string): void {
  const code =
    "import os,sys,glob\nfor f in glob.glob(sys.argv[1]+'/*.safetensors'):\n fd=os.open(f,os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)";
  const p = spawnSync("/usr/bin/python3", ["-c", code, folder], { encoding: "utf8" });
  if (p.status !== 0) throw new Error(`--cold: could not drop ${folder} from the page cache: ${p.stderr || p.error}`);
}

export async function full(o: FullOptions): Promise<void> {
  const { log } = o;
  const threads = Number(process.env.SUPERWEIGHT_THREADS || availableParallelism());
  const peer = o.peer ? findPeer(o.repo) : { skipped: "--no-peer" };
  const results: Json = {
    date: new Date().toISOString(),
    node: process.version,
    threads,
    repeat: o.repeat,
    shapes: {},
  };
  const out: string[] = [];
  for (const shape of [SHAPES.llama7b, ...(o.big ? [SHAPES.llama13b] : [])]) {
    const folder = join(o.benchDir, `${shape.name}-shaped-L${shape.layers}`);
    const bytes = checkpointBytes(shape.layers, shape);
    const written = existsSync(join(folder, "plant.json"));
    const free = statfsSync(o.benchDir).bavail * statfsSync(o.benchDir).bsize;
    if (!written && free < bytes + 2e9) {
      const line = `${shape.name}: skipped — writing it needs ${(bytes / 1e9).toFixed(1)} GB, ${o.benchDir} has ${(free / 1e9).toFixed(1)} GB free`;
      (log(line), out.push(line));
      continue;
    }
    log(`checkpoint: ${folder} (${shape.layers} layers, ${(bytes / 1e9).toFixed(1)} GB)`);
    await ensureCheckpoint(folder, shape.layers, log, shape);
    const fits = bytes < 0.7 * totalmem();
    if (fits && !o.cold) {
      log("warming the page cache …");
      warmPageCache(folder);
    }
    const child = (...args: string[]) => measureChild(o.here, args);
    const cli = (command: string) =>
      child("cli", join(o.repo, "dist/src/cli/main.js"), command, folder, "--ids", IDS.join(","), "--json");
    const commands: [string, () => Sample][] = [
      ["floor, 1 thread", () => child("floor", folder, "1")],
      [`floor, ${threads} threads`, () => child("floor", folder, String(threads))],
      ["ours: run", () => cli("run")],
      ["ours: scan", () => cli("scan")],
      ...("skipped" in peer
        ? []
        : [
            [
              "torch bf16 (peer)",
              () => {
                const load = loadavg()[0];
                const r = runPeer(peer, folder, "bf16", threads);
                return {
                  wallS: r.wallS,
                  cpuS: r.cpuS,
                  peakRSSKB: r.peakRSSKB,
                  load,
                  diskBytes: r.diskReadBytes,
                  result: r,
                };
              },
            ] as [string, () => Sample],
          ]),
    ];
    const samples = new Map<string, Sample[]>(commands.map(([name]) => [name, []]));
    for (let round = 1; round <= o.repeat; round++) {
      for (const [name, run] of commands) {
        if (o.cold) evict(folder);
        const s = run();
        samples.get(name)!.push(s);
        log(
          `  round ${round} ${name}: ${s2(s.wallS)} s wall, ${s2(s.cpuS)} s CPU, ${gb(s.peakRSSKB)} GB, load ${s.load.toFixed(1)}`,
        );
      }
    }
    const m = (name: string, f: (s: Sample) => number) => median(samples.get(name)!.map(f));
    const wall = (name: string) => m(name, (s) => s.wallS);
    const scan = samples.get("ours: scan")![0].result.output as Json;
    const onePass = bytes;
    const state = o.cold
      ? ", dropped from the page cache before each command"
      : fits
        ? ", page cache warm"
        : ", larger than 70% of memory: read from disk";
    out.push(
      `\n${shape.name}-shaped, ${shape.layers} layers, ${(bytes / 1e9).toFixed(1)} GB bf16${state}; medians of ${o.repeat} interleaved rounds, ${threads} threads\n`,
    );
    const disk = (name: string) => m(name, (s) => s.diskBytes ?? NaN);
    out.push(
      table(
        ["command", "wall s", "CPU s", "peak RSS GB", "load", "checkpoint GB/s", "from the drive GB", "drive GB/s"],
        commands.map(([name]) => [
          name,
          s2(wall(name)),
          s2(m(name, (s) => s.cpuS)),
          gb(m(name, (s) => s.peakRSSKB)),
          m(name, (s) => s.load).toFixed(1),
          name.includes("scan") ? "" : (bytes / wall(name) / 1e9).toFixed(2),
          (disk(name) / 1e9).toFixed(2),
          (disk(name) / wall(name) / 1e9).toFixed(2),
        ]),
      ),
    );
    const ratios: (string | number)[][] = [
      ["run / floor (1 thread)", s2(wall("ours: run") / wall("floor, 1 thread"))],
      [`run / floor (${threads} threads)`, s2(wall("ours: run") / wall(`floor, ${threads} threads`))],
      [
        "scan weights read, passes (GB read / checkpoint)",
        `${s2(scan.bytesRead / onePass)} (reported weightPasses ${s2(scan.weightPasses)})`,
      ],
      [
        "scan found",
        scan.superWeights.map((w: Json) => `[${w.layer}, ${w.row}, ${w.column}] ${w.class}`).join("; ") || "nothing",
      ],
    ];
    if (!("skipped" in peer)) {
      ratios.push(["scan / torch bf16 wall", s2(wall("ours: scan") / wall("torch bf16 (peer)"))]);
      ratios.push(["run / torch bf16 wall", s2(wall("ours: run") / wall("torch bf16 (peer)"))]);
      ratios.push([
        "scan / torch bf16 peak RSS",
        s2(m("ours: scan", (s) => s.peakRSSKB) / m("torch bf16 (peer)", (s) => s.peakRSSKB)),
      ]);
    }
    out.push("");
    out.push(table(["ratio", "value"], ratios));
    results.shapes[shape.name] = { folder, bytes, fits, samples: Object.fromEntries(samples) };
  }
  if ("skipped" in peer) out.push(`\npeer: skipped (${peer.skipped})`);
  console.log(out.join("\n"));
  writeFileSync(join(o.benchDir, "results-full.json"), JSON.stringify(results, null, 2));
  console.log(`\nresults: ${join(o.benchDir, "results-full.json")}`);
}

/** One child measurement (dist/bench/child.js): its wall time from here, its own CPU time and peak RSS. */
function measureChild(here: string, args: string[]): Sample {
  const load = loadavg()[0];
  const t0 = performance.now();
  const p = spawnSync(process.execPath, [join(here, "child.js"), ...args], {
    encoding: "utf8",
    maxBuffer: 256 << 20,
    env: { ...process.env, SUPERWEIGHT_PROGRESS: "0" },
  });
  const wallS = (performance.now() - t0) / 1000;
  const lines = p.stdout.split("\n");
  let at = lines.length - 1;
  while (at >= 0 && !lines[at].startsWith("BENCH_RESULT ")) at--;
  if (p.status !== 0 || at < 0)
    throw new Error(`measurement ${args.join(" ")} failed (exit ${p.status}):\n${p.stderr.slice(-4000)}`);
  const result = JSON.parse(lines[at].slice("BENCH_RESULT ".length)) as Json;
  // A CLI command's own output (--json) comes before the result line.
  if (args[0] === "cli") result.output = JSON.parse(lines.slice(0, at).join("\n"));
  return {
    wallS,
    cpuS: result.userS + result.systemS,
    peakRSSKB: result.maxRSSKB,
    load,
    diskBytes: result.diskReadBytes,
    result,
  };
}
