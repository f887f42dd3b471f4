// The built CLI (dist/src/cli/main.js) run as a user runs it, in a child process with no progress output, a temp
// cache and an empty offline Hugging Face cache: for the GGUF and audit tests.
import { after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./fixtures.js";

const bin = join(repoRoot, "dist", "src", "cli", "main.js");
const scratch = mkdtempSync(join(tmpdir(), "sw-cli-child-"));
mkdirSync(join(scratch, "hf"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const env: NodeJS.ProcessEnv = (() => {
  const e: NodeJS.ProcessEnv = {
    ...process.env,
    SUPERWEIGHT_PROGRESS: "0",
    SUPERWEIGHT_CACHE: join(scratch, "cache"),
    HF_HOME: join(scratch, "hf"),
    HF_HUB_OFFLINE: "1",
  };
  for (const k of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"])
    delete e[k];
  return e;
})();

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Run `superweight ...args`; never throws on a non-zero exit (a signal or a timeout fails the test). */
export function cli(...args: string[]): CliResult {
  assert.ok(existsSync(bin), `the CLI is not built: ${bin}`);
  const t0 = performance.now();
  try {
    const stdout = execFileSync(process.execPath, [bin, ...args], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 120_000,
      maxBuffer: 64 << 20,
    });
    return { status: 0, stdout, stderr: "", seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    const err = e as { status: number | null; signal: string | null; stdout?: string; stderr?: string };
    if (err.status === null) assert.fail(`superweight ${args.join(" ")} died (${err.signal}): ${err.stderr ?? ""}`);
    const seconds = (performance.now() - t0) / 1000;
    return { status: err.status, stdout: err.stdout ?? "", stderr: err.stderr ?? "", seconds };
  }
}

/** Run with --json, expect exit 0, parse stdout. */
export function cliJson<T = any>(...args: string[]): T {
  const r = cli(...args, "--json");
  assert.equal(r.status, 0, `superweight ${args.join(" ")} --json → exit ${r.status}\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Expect a refusal as a user sees it: exit 2 within seconds, nothing on stdout, one line on stderr naming `file`
 * first, then every fragment; no stack trace. Returns the line. */
export function expectRefusal(args: string[], file: string, ...fragments: (string | RegExp)[]): string {
  const r = cli(...args);
  const line = r.stderr.trimEnd();
  assert.equal(r.status, 2, `superweight ${args.join(" ")} → exit ${r.status}\n${r.stderr}`);
  assert.ok(r.seconds < 10, `superweight ${args.join(" ")} took ${r.seconds.toFixed(1)} s to refuse`);
  assert.equal(r.stdout, "", "nothing on stdout");
  assert.ok(!line.includes("\n"), `one line: ${r.stderr}`);
  assert.ok(line.startsWith(`superweight: ${file}: `), `names the file first: ${line}`);
  for (const f of fragments) {
    if (typeof f === "string") assert.ok(line.includes(f), `"${f}" not in: ${line}`);
    else assert.match(line, f);
  }
  return line;
}
