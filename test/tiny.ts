// A tiny Llama checkpoint written by tests (hidden 8, 2 heads, one or two layers, vocab 10), the folder's
// fingerprint (so a test can say "nothing changed"), and the CLI run the way a user runs it, in a child
// process with its own HOME, caches and temp folder, and a time limit.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { writeCheckpoint, type TensorToWrite } from "../src/checkpoint/writer.js";
import { repoRoot } from "./fixtures.js";

export const TINY_CONFIG = {
  model_type: "llama",
  hidden_size: 8,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  intermediate_size: 16,
  num_hidden_layers: 2,
  vocab_size: 10,
  max_position_embeddings: 32,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: "silu",
  tie_word_embeddings: false,
  bos_token_id: 1,
};

/** The tensors TINY_CONFIG implies, named by hand (not from src/models) so tests stay independent. */
export function tinyTensors(
  config: Record<string, any> = TINY_CONFIG,
  dtype: TensorToWrite["dtype"] = "F32",
): (TensorToWrite & { data: Float32Array })[] {
  const { hidden_size: H, intermediate_size: I, vocab_size: V, num_hidden_layers: L } = config;
  const shapes: [string, number[]][] = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    shapes.push(
      [p + "input_layernorm.weight", [H]],
      [p + "self_attn.q_proj.weight", [H, H]],
      [p + "self_attn.k_proj.weight", [H, H]],
      [p + "self_attn.v_proj.weight", [H, H]],
      [p + "self_attn.o_proj.weight", [H, H]],
      [p + "post_attention_layernorm.weight", [H]],
      [p + "mlp.gate_proj.weight", [I, H]],
      [p + "mlp.up_proj.weight", [I, H]],
      [p + "mlp.down_proj.weight", [H, I]],
    );
  }
  shapes.push(["model.norm.weight", [H]], ["lm_head.weight", [V, H]]);
  return shapes.map(([name, shape], seed) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++)
      data[i] = shape.length === 1 ? 1 + (((i * 5 + seed) % 7) - 3) / 16 : (((i * 7 + seed * 13) % 31) - 15) / 16;
    return { name, dtype, shape, data };
  });
}

export function writeTiny(
  folder: string,
  o: { config?: Record<string, unknown>; tensors?: TensorToWrite[]; shards?: number } = {},
): string {
  writeCheckpoint(folder, o.config ?? TINY_CONFIG, o.tensors ?? tinyTensors(), o.shards ?? 1);
  return folder;
}

/** Every entry under a folder (recursively): kind, size, mtime, link target and a hash of regular files. */
export function fingerprint(folder: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name),
        key = rel + name;
      const s = lstatSync(path);
      if (s.isSymbolicLink()) out[key] = `link ${readlinkSync(path)}`;
      else if (s.isDirectory()) ((out[key] = "dir"), walk(path, key + "/"));
      else if (s.isFile())
        out[key] = `file ${s.size} ${s.mtimeMs} ${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
      else out[key] = `special ${s.mode}`;
    }
  };
  walk(folder, "");
  return out;
}

export interface Run {
  status: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

const bin = join(repoRoot, "dist", "src", "cli", "main.js");

/** The environment of a user with nothing cached, offline; `home` is their HOME (and caches, and TMPDIR). */
export function userEnv(home: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  mkdirSync(join(home, "tmp"), { recursive: true });
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CACHE_HOME: join(home, ".cache"),
    TMPDIR: join(home, "tmp"),
    HF_HUB_OFFLINE: "1",
    SUPERWEIGHT_PROGRESS: "0",
    ...extra,
  };
  return env;
}

/** Run the CLI synchronously (a hang is cut at `timeoutMs`). */
export function cliSync(args: string[], env: NodeJS.ProcessEnv, cwd?: string, timeoutMs = 60_000): Run {
  const r = spawnSync(process.execPath, ["--max-old-space-size=1024", bin, ...args], {
    env,
    cwd,
    encoding: "utf8",
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
  });
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout ?? "",
    stderr: r.stderr ?? "",
    timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT",
  };
}

/** The same, asynchronously (for running many cases two at a time). */
export function cli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--max-old-space-size=1024", bin, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "",
      stderr = "",
      timedOut = false;
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), timeoutMs);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, timedOut });
    });
  });
}

/** A refusal as the CLI should give it: exit 2, exactly one line on stderr, no stack, naming `file` and each mention. */
export function assertRefused(r: Run, file: string | undefined, ...mentions: (string | RegExp)[]): void {
  const where = `exit ${r.status}${r.signal ? ` (${r.signal})` : ""}${r.timedOut ? " (timed out)" : ""}; stderr:\n${r.stderr}`;
  assert.equal(r.timedOut, false, where);
  assert.equal(r.status, 2, where);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line on stderr: ${where}`);
  assert.ok(lines[0].startsWith("superweight: "), where);
  assert.doesNotMatch(lines[0], /\bundefined\b|\bat .*\.js:\d+/, where);
  if (file) assert.ok(lines[0].includes(file), `names ${file}: ${where}`);
  for (const m of mentions)
    assert.ok(typeof m === "string" ? lines[0].includes(m) : m.test(lines[0]), `mentions ${m}: ${where}`);
}
