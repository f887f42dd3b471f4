// What the bench's two modes share: the page-cache warm-up, how the PyTorch peer is run, and the tables.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readdirSync, readSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** Read every file of the checkpoint once so that all runs find it in the page cache. */
export function warmPageCache(folder: string): void {
  const buf = Buffer.alloc(64 << 20);
  for (const f of readdirSync(folder)) {
    const fd = openSync(join(folder, f), "r");
    while (readSync(fd, buf, 0, buf.length, null) > 0);
    closeSync(fd);
  }
}

/** The PyTorch peer (../shared/tools/peer/scan_torch.py; never installed by the bench) and its environment. */
export interface Peer {
  python: string;
  time: string;
  script: string;
  env: NodeJS.ProcessEnv;
}

export function findPeer(repo: string): Peer | { skipped: string } {
  const script = process.env.SUPERWEIGHT_PEER || resolve(repo, "../shared/tools/peer/scan_torch.py");
  const python = "/usr/bin/python3",
    time = "/usr/bin/time";
  if (!existsSync(script)) return { skipped: `${script} not found` };
  if (!existsSync(time)) return { skipped: `${time} not installed` };
  if (spawnSync(python, ["-c", "import torch"]).status !== 0) return { skipped: "python3-torch not installed" };
  // SUPERWEIGHT_PEER_DIR: where bench/torch_moe.py finds the peer's loading code.
  const env: NodeJS.ProcessEnv = { ...process.env, SUPERWEIGHT_PEER_DIR: dirname(script) };
  const openblas = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
  if (existsSync(openblas)) env.LD_LIBRARY_PATH = [openblas, env.LD_LIBRARY_PATH].filter(Boolean).join(":");
  if (/avx512f/.test(readFileSync("/proc/cpuinfo", "utf8"))) env.OPENBLAS_CORETYPE = "SkylakeX";
  return { python, time, script, env };
}

export interface PeerRun {
  tokens: number;
  wallS: number;
  cpuS: number;
  peakRSSKB: number;
  loadS: number;
  forwardS: number;
  found: number;
  /** Bytes read from the drive (GNU time's file system inputs, 512-byte blocks). */
  diskReadBytes: number;
  /** The script's whole JSON line. */
  result: Record<string, any>;
}

/** One run of the peer on `ckpt` under /usr/bin/time: wall, CPU and peak RSS of the whole process. */
export function runPeer(peer: Peer, ckpt: string, mode: string, threads: number, tokens?: number): PeerRun {
  const args = [
    "-f",
    "%M %e %U %S %I",
    peer.python,
    peer.script,
    ckpt,
    mode,
    String(threads),
    ...(tokens ? [String(tokens)] : []),
  ];
  const p = spawnSync(peer.time, args, { encoding: "utf8", env: peer.env, maxBuffer: 64 << 20 });
  const out = p.stdout
    .split("\n")
    .reverse()
    .find((l) => l.startsWith("{"));
  const timeLine = p.stderr.trim().split("\n").pop() ?? "";
  if (p.status !== 0 || !out)
    throw new Error(`peer ${mode} ${tokens ?? 11} failed (exit ${p.status}):\n${p.stderr.slice(-4000)}`);
  const r = JSON.parse(out) as Record<string, any>;
  const [rss, wall, user, sys, inputs] = timeLine.split(" ").map(Number);
  return {
    tokens: r.tokens,
    wallS: wall,
    cpuS: user + sys,
    peakRSSKB: rss,
    loadS: r.load_s,
    forwardS: r.forward_s,
    found: r.found,
    diskReadBytes: inputs * 512,
    result: r,
  };
}

export const gb = (kb: number) => (kb / 1e6).toFixed(2);
export const s2 = (x: number) => x.toFixed(2);

export function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ");
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...cells.slice(1).map(line)].join("\n");
}
