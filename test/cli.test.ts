// The command-line interface as a user meets it: the built bin (dist/src/cli/main.js) spawned in a child
// process, its stdout / stderr / exit status checked against the fixtures' reference numbers.
// Every child gets SUPERWEIGHT_PROGRESS=0, a fresh SUPERWEIGHT_CACHE (so the demo model is built in a
// temp folder, never in the user's home) and an empty, offline Hugging Face cache.
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO, demoFolder } from "../src/demo/demo.js";
import { fixturePath, readReference, repoRoot, skipWithoutFixtures } from "./fixtures.js";

// ---------------------------------------------------------------------------------------------------------
// Running the CLI

const bin = join(repoRoot, "dist", "src", "cli", "main.js");
const scratch = mkdtempSync(join(tmpdir(), "superweight-cli-test-"));
const cacheDir = join(scratch, "cache");
const hfHome = join(scratch, "hf");
mkdirSync(hfHome);
after(() => rmSync(scratch, { recursive: true, force: true }));

const childEnv: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SUPERWEIGHT_PROGRESS: "0",
    SUPERWEIGHT_CACHE: cacheDir,
    HF_HOME: hfHome,
    HF_HUB_OFFLINE: "1",
  };
  for (const k of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"])
    delete env[k];
  return env;
})();

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Run the bin with `args`; never throws on a non-zero exit, returns what came out. */
function cli(...args: string[]): CliResult {
  return cliEnv({}, ...args);
}

/** The same, with some environment variables changed. */
function cliEnv(extra: NodeJS.ProcessEnv, ...args: string[]): CliResult {
  assert.ok(existsSync(bin), `the CLI is not built: ${bin} (run npx tsc -p tsconfig.json)`);
  try {
    const stdout = execFileSync(process.execPath, [bin, ...args], {
      env: { ...childEnv, ...extra },
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 300_000,
      maxBuffer: 256 * 1024 * 1024,
    });
    return { status: 0, stdout, stderr: "" };
  } catch (e) {
    const err = e as { status: number | null; signal: string | null; stdout?: string; stderr?: string };
    if (err.status === null)
      throw new Error(`superweight ${args.join(" ")} died (signal ${err.signal}): ${err.stderr ?? ""}`);
    return { status: err.status, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

const describeCall = (args: string[], r: CliResult) =>
  `superweight ${args.join(" ")} → exit ${r.status}\nstderr: ${r.stderr}`;

/** Run and expect success; the stdout text. */
function cliText(...args: string[]): string {
  const r = cli(...args);
  assert.equal(r.status, 0, describeCall(args, r));
  return r.stdout;
}

/** Run with --json and expect success; stdout parsed. */
function cliJson<T = any>(...args: string[]): T {
  const text = cliText(...args, "--json");
  try {
    return JSON.parse(text) as T;
  } catch {
    assert.fail(`superweight ${args.join(" ")} --json printed no JSON: ${text.slice(0, 500)}`);
  }
}

/** Expect a user error: exit 2, one line on stderr that names the problem, no stack trace, nothing on stdout. */
function expectUserError(args: string[], names: RegExp): void {
  const r = cli(...args);
  assert.equal(r.status, 2, describeCall(args, r));
  const message = r.stderr.trimEnd();
  assert.doesNotMatch(r.stderr, /\n {4}at /, `stack trace printed: ${r.stderr}`);
  assert.ok(!message.includes("\n"), `stderr is more than one line: ${JSON.stringify(r.stderr)}`);
  assert.match(message, /^superweight: /, message);
  assert.match(message, names);
  assert.equal(r.stdout, "", "nothing on stdout");
}

// ---------------------------------------------------------------------------------------------------------
// Reference data

interface Ref {
  input_ids: number[];
  nll: number[];
  perplexity: number;
  threshold?: number;
  layers: { downProjInput: Spike; downProjOutput: Spike }[];
  expectedSuperWeights?: {
    layer: number;
    row: number;
    column: number;
    iteration: number;
    class: string;
    token: number;
    inputToken: number;
  }[];
  detection?: {
    found: { layer: number; row: number; column: number; iteration: number; token: number; inputToken: number }[];
  };
}
interface Spike {
  max: number;
  value?: number;
  token: number;
  channel: number;
}

const refs = new Map<string, Ref>();
function ref(name: string): Ref {
  if (!refs.has(name)) refs.set(name, readReference<Ref>(name));
  return refs.get(name)!;
}
const idsArg = (name: string) => ref(name).input_ids.join(",");
const coord = (w: { layer: number; row: number; column: number }) => `[${w.layer}, ${w.row}, ${w.column}]`;

function assertClose(actual: number, expected: number, abs: number, rel: number, what: string) {
  assert.equal(typeof actual, "number", `${what}: not a number (${actual})`);
  assert.ok(Math.abs(actual - expected) <= abs + rel * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

/** A `run --json` result against the fixture's reference: ids, per-token NLL (1e-4), perplexity (1e-4 relative). */
function assertRunMatches(name: string, out: any) {
  const r = ref(name);
  assert.deepEqual(out.ids, r.input_ids, "ids");
  assert.equal(out.nll.length, r.input_ids.length - 1, "one NLL per next token");
  out.nll.forEach((v: number, i: number) => assertClose(v, r.nll[i], 1e-4, 0, `${name} nll[${i}]`));
  assertClose(out.perplexity, r.perplexity, 0, 1e-4, `${name} perplexity`);
}

function assertSpike(s: Spike, what: string) {
  assert.equal(typeof s?.max, "number", `${what}.max`);
  assert.ok(Number.isInteger(s.token) && s.token >= 0, `${what}.token`);
  assert.ok(Number.isInteger(s.channel) && s.channel >= 0, `${what}.channel`);
}

// ---------------------------------------------------------------------------------------------------------
// run

describe("superweight run", () => {
  test("llama-f32 --ids: NLL per token and perplexity match the reference", { skip: skipWithoutFixtures }, () => {
    assertRunMatches("llama-f32", cliJson("run", fixturePath("llama-f32"), "--ids", idsArg("llama-f32")));
  });

  test(
    "bytes-llama-6m (bf16, sharded) --ids: NLL per token and perplexity match the reference",
    { skip: skipWithoutFixtures },
    () => {
      const out = cliJson("run", fixturePath("bytes-llama-6m"), "--ids", idsArg("bytes-llama-6m"));
      assertRunMatches("bytes-llama-6m", out);
      assert.equal(out.modelType, "llama");
    },
  );

  test("--prompt goes through the checkpoint's tokenizer.json (BOS, then bytes)", { skip: skipWithoutFixtures }, () => {
    const out = cliJson("run", fixturePath("bytes-llama-6m"), "--prompt", "Hello");
    assert.deepEqual(out.ids, [256, 72, 101, 108, 108, 111]);
    assert.equal(out.prompt, "Hello");
    assert.equal(out.nll.length, 5);
    assert.ok(
      out.nll.every((v: number) => Number.isFinite(v) && v >= 0),
      "NLLs are finite and non-negative",
    );
  });

  test("human-readable output: per-token table, perplexity and the top-k table", { skip: skipWithoutFixtures }, () => {
    const name = "llama-f32";
    const json = cliJson("run", fixturePath(name), "--ids", idsArg(name));
    const text = cliText("run", fixturePath(name), "--ids", idsArg(name));
    const ppl = /perplexity (\d+(?:\.\d+)?)/.exec(text);
    assert.ok(ppl, `no perplexity line in:\n${text}`);
    assertClose(Number(ppl[1]), ref(name).perplexity, 0, 1e-4, "printed perplexity");
    assert.match(text, /\bNLL\b/);

    const lines = text.split("\n");
    const at = lines.findIndex((l) => /^top 5 next tokens/.test(l));
    assert.ok(at >= 0, `no top-k heading in:\n${text}`);
    assert.match(lines[at + 1], /rank\s+id\s+token\s+prob/);
    const rows = lines.slice(at + 3).filter((l) => /^\s*\d+\s+\d+/.test(l));
    assert.equal(rows.length, 5, `five prediction rows:\n${text}`);
    const printedIds = rows.map((l) => Number(l.trim().split(/\s+/)[1]));
    assert.deepEqual(
      printedIds,
      json.top.map((p: { id: number }) => p.id),
      "the table lists the same predictions as --json",
    );
  });

  test("--top 3 gives 3 predictions, most probable first", { skip: skipWithoutFixtures }, () => {
    const out = cliJson("run", fixturePath("llama-f32"), "--ids", idsArg("llama-f32"), "--top", "3");
    assert.equal(out.top.length, 3);
    const probs = out.top.map((p: { prob: number }) => p.prob);
    assert.ok(
      probs.every((p: number) => p > 0 && p <= 1),
      `probabilities: ${probs}`,
    );
    assert.deepEqual(
      [...probs].sort((a, b) => b - a),
      probs,
      "sorted by probability",
    );
    for (const p of out.top) assert.ok(Number.isInteger(p.id) && p.id >= 0 && p.id < 131, `id ${p.id}`);
  });
});

// ---------------------------------------------------------------------------------------------------------
// scan

describe("superweight scan", () => {
  test(
    "planted-llama-f16: exactly the expected super weights, with class and iteration",
    { skip: skipWithoutFixtures },
    () => {
      const name = "planted-llama-f16";
      const r = ref(name);
      const out = cliJson("scan", fixturePath(name), "--ids", idsArg(name));

      for (const key of ["model", "modelType", "prompts", "threshold", "forwardPasses", "superWeights", "layers"])
        assert.ok(key in out, `scan --json has "${key}"`);
      assert.equal(out.modelType, "llama");
      assert.equal(out.threshold, r.threshold ?? 50);
      assert.equal(typeof out.forwardPasses, "number");
      assert.ok(out.forwardPasses >= 1, `forwardPasses ${out.forwardPasses}`);
      assert.equal(out.prompts.length, 1);
      assert.deepEqual(out.prompts[0].ids, r.input_ids);

      const pick = (w: any) => ({
        layer: w.layer,
        row: w.row,
        column: w.column,
        class: w.class,
        iteration: w.iteration,
      });
      assert.deepEqual(out.superWeights.map(pick), r.expectedSuperWeights!.map(pick));
      for (const w of out.superWeights) assert.equal(w.tensor, `model.layers.${w.layer}.mlp.down_proj.weight`);

      assert.equal(out.layers.length, r.layers.length, "one entry per layer");
      out.layers.forEach((l: any, i: number) => {
        for (const which of ["downProjInput", "downProjOutput"] as const) {
          const what = `layers[${i}].${which}`;
          assertSpike(l[which], what);
          const expected = r.layers[i][which];
          assertClose(l[which].max, expected.max, 1e-4, 1e-4, `${what}.max`);
          assert.equal(l[which].token, expected.token, `${what}.token`);
          assert.equal(l[which].channel, expected.channel, `${what}.channel`);
        }
      });
    },
  );

  test(
    "bytes-llama-6m: the rule's candidates, the token-0 origin super, the split-token one not",
    { skip: skipWithoutFixtures },
    () => {
      const name = "bytes-llama-6m";
      const found = ref(name).detection!.found;
      const out = cliJson("scan", fixturePath(name), "--ids", idsArg(name));
      const listed: any[] = out.superWeights;

      const key = (w: { layer: number; row: number; column: number }) => coord(w);
      assert.deepEqual(listed.map(key).sort(), found.map(key).sort(), "candidates = detection.found");
      for (const f of found) {
        const w = listed.find((x) => key(x) === key(f))!;
        assert.equal(w.iteration, f.iteration, `${key(f)} iteration`);
        assert.equal(w.token, f.token, `${key(f)} token`);
        assert.equal(w.inputToken, f.inputToken, `${key(f)} inputToken`);
        assert.equal(typeof w.nllNote, "string", `${key(f)} nllNote`);
        assert.ok(w.nllNote.length > 0, `${key(f)} nllNote is empty`);
        assert.ok(w.evidence && typeof w.evidence === "object", `${key(f)} evidence`);
        assert.equal(w.evidence.sameToken, f.token === f.inputToken, `${key(f)} evidence.sameToken`);
        assert.ok(Array.isArray(w.reasons) && w.reasons.length > 0, `${key(f)} reasons`);
      }

      const origin = found[0];
      assert.equal(origin.token, 0, "the fixture's first find is at token 0");
      assert.equal(origin.inputToken, 0);
      const o = listed.find((x) => key(x) === key(origin))!;
      assert.equal(listed[0], o, "the origin is listed first");
      assert.equal(o.class, "super", `${key(origin)}: ${o.reasons.join("; ")}`);
      assert.match(o.nllNote, /slight|not catastrophic/, o.nllNote);
      if (/catastrophic/.test(o.nllNote)) assert.match(o.nllNote, /not catastrophic/, o.nllNote);
      assert.notEqual(o.evidence.nllEffect, "catastrophic");

      const split = found.filter((f) => f.token !== f.inputToken);
      assert.ok(split.length >= 1, "the fixture has a candidate whose spikes sit on different tokens");
      for (const f of split) {
        const w = listed.find((x) => key(x) === key(f))!;
        assert.equal(w.class, "outlier", `${key(f)} (spikes on tokens ${f.inputToken} and ${f.token}) is not super`);
      }
    },
  );

  test(
    "bytes-llama-6m with two --prompts: each candidate says which prompts found it",
    { skip: skipWithoutFixtures },
    () => {
      const prompts = ["Hello world", "The cat sat on the mat."];
      const out = cliJson("scan", fixturePath("bytes-llama-6m"), "--prompt", prompts[0], "--prompt", prompts[1]);
      assert.deepEqual(
        out.prompts.map((p: { label: string }) => p.label),
        prompts,
      );
      assert.ok(out.superWeights.length > 0, "something is found");
      for (const w of out.superWeights) {
        assert.ok(Array.isArray(w.prompts) && w.prompts.length >= 1, `${coord(w)} prompts`);
        assert.ok(
          w.prompts.every((p: number) => p === 0 || p === 1),
          `${coord(w)} prompts ${w.prompts}`,
        );
        assert.equal(new Set(w.prompts).size, w.prompts.length, `${coord(w)} prompts repeat`);
        assert.equal(typeof w.allPrompts, "boolean", `${coord(w)} allPrompts`);
        assert.equal(w.allPrompts, w.prompts.length === 2, `${coord(w)} allPrompts`);
      }
      // The origin is a genuine massive activation at token 0: every prompt finds it.
      const origin = ref("bytes-llama-6m").detection!.found[0];
      const o = out.superWeights.find((w: any) => coord(w) === coord(origin));
      assert.ok(o, `${coord(origin)} found`);
      assert.deepEqual(o.prompts, [0, 1]);
      assert.equal(o.allPrompts, true);
    },
  );

  test(
    "--model-id huggyllama/llama-7b: a published coordinate outside the model's shapes cannot exist in it",
    { skip: skipWithoutFixtures },
    () => {
      const args = [
        "scan",
        fixturePath("llama-f32"),
        "--ids",
        idsArg("llama-f32"),
        "--model-id",
        "huggyllama/llama-7b",
      ];
      const out = cliJson(...args);
      assert.equal(out.modelId, "huggyllama/llama-7b");
      assert.ok(out.published, "published check present");
      assert.equal(out.published.modelId, "huggyllama/llama-7b");
      assert.deepEqual(out.published.coordinates, [{ layer: 2, row: 3968, column: 7003, found: false, fits: false }]);
      assert.match(
        cliText(...args),
        /\[2, 3968, 7003\]\s+cannot exist in this model \(outside its shapes: wrong model id\?\)/,
      );
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// --demo (no fixtures needed: the model is built into the temp SUPERWEIGHT_CACHE)

describe("--demo", () => {
  const folder = demoFolder({ SUPERWEIGHT_CACHE: cacheDir });

  test("scan --demo finds the planted super weight and the last layer's outlier", () => {
    assert.ok(!existsSync(folder), "the cache starts empty");
    const out = cliJson("scan", "--demo");
    assert.ok(existsSync(join(folder, "config.json")), `demo built under SUPERWEIGHT_CACHE (${folder})`);
    assert.ok(out.model.startsWith(cacheDir), `model folder ${out.model} lies under ${cacheDir}`);

    const byKey = new Map<string, any>(out.superWeights.map((w: any) => [coord(w), w]));
    const superKey = coord({ layer: DEMO.superLayer, row: DEMO.row, column: DEMO.column });
    const outlierKey = coord({ layer: DEMO.layers - 1, row: DEMO.row, column: DEMO.cancelColumn });
    const sw = byKey.get(superKey);
    assert.ok(sw, `${superKey} found; got ${[...byKey.keys()].join(", ")}`);
    assert.equal(sw.tensor, `model.layers.${DEMO.superLayer}.mlp.down_proj.weight`);
    assert.equal(sw.class, "super");
    const ow = byKey.get(outlierKey);
    assert.ok(ow, `${outlierKey} found; got ${[...byKey.keys()].join(", ")}`);
    assert.equal(ow.class, "outlier");
    assert.equal(out.layers.length, DEMO.layers);
  });

  test("scan --demo prints the same table on 1 and 2 GEMM threads and with the plain TypeScript backend", () => {
    const runs = [{ SUPERWEIGHT_THREADS: "1" }, { SUPERWEIGHT_THREADS: "2" }, { SUPERWEIGHT_BACKEND: "js" }].map(
      (env) => {
        const r = cliEnv(env, "scan", "--demo");
        assert.equal(r.status, 0, r.stderr);
        return r.stdout.replace(/ in \d+\.\d+ s\n$/, "\n"); // all but the timing
      },
    );
    assert.equal(runs[1], runs[0]);
    assert.equal(runs[2], runs[0]);
    // Regression pins (the README quotes this output): the demo's own numbers, not reference values.
    for (const pinned of [
      "419.9 @0",
      "NLL +83.5%",
      "perplexity 17.008 → 181.400",
      "mean NLL 2.8337 → 5.2007",
      "(424× the median)",
      "act +567%",
    ])
      assert.ok(runs[0].includes(pinned), `"${pinned}" in:\n${runs[0]}`);
  });

  test("run --demo --prompt Hello", () => {
    const out = cliJson("run", "--demo", "--prompt", "Hello");
    assert.deepEqual(out.ids, [DEMO.bos, 72, 101, 108, 108, 111]);
    assert.equal(out.nll.length, 5);
    assert.ok(
      out.nll.every((v: number) => Number.isFinite(v) && v >= 0),
      `nll ${out.nll}`,
    );
    assert.ok(Number.isFinite(out.perplexity) && out.perplexity > 1, `perplexity ${out.perplexity}`);
    assert.ok(existsSync(join(folder, "config.json")), "demo lives under SUPERWEIGHT_CACHE");
  });
});

// ---------------------------------------------------------------------------------------------------------
// directory

describe("superweight directory", () => {
  test("--json lists the models with their coordinates", () => {
    const out = JSON.parse(cliText("directory", "--json"));
    assert.ok(Array.isArray(out.models) && out.models.length > 1);
    const llama = out.models.find((m: { modelId: string }) => m.modelId === "huggyllama/llama-7b");
    assert.ok(llama, "huggyllama/llama-7b listed");
    assert.deepEqual(
      llama.coordinates.map((w: any) => [w.layer, w.row, w.column]),
      [[2, 3968, 7003]],
    );
  });

  test("one model id prints its table", () => {
    const text = cliText("directory", "meta-llama/Llama-2-7b-hf");
    assert.match(text, /meta-llama\/Llama-2-7b-hf/);
    assert.match(text, /model\.layers\.1\.mlp\.down_proj\.weight\s+\[2533, 7890\]/);
  });

  test("an unknown id is a user error", () => {
    expectUserError(["directory", "no-such/model"], /no-such\/model/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Errors: exit 2, one line naming the problem, no stack trace

describe("errors", () => {
  const f32 = () => fixturePath("llama-f32");
  const opts = { skip: skipWithoutFixtures };

  test("--threshold -1", opts, () =>
    expectUserError(["scan", f32(), "--ids", "1,2", "--threshold", "-1"], /--threshold.*-1.*positive/),
  );
  test("--threshold abc", opts, () =>
    expectUserError(["scan", f32(), "--ids", "1,2", "--threshold", "abc"], /--threshold.*abc/),
  );
  test("--max-iterations 0", opts, () =>
    expectUserError(["scan", f32(), "--ids", "1,2", "--max-iterations", "0"], /--max-iterations.*0/),
  );
  test("--max-iterations 1.5", opts, () =>
    expectUserError(["scan", f32(), "--ids", "1,2", "--max-iterations", "1.5"], /--max-iterations.*1\.5.*integer/),
  );

  test("a prompt that tokenizes to nothing but BOS", opts, () =>
    expectUserError(["scan", fixturePath("bytes-llama-6m"), "--prompt", ""], /prompt.*no tokens/),
  );

  test("--prompt on a checkpoint without tokenizer.json tells to use --ids", opts, () =>
    expectUserError(["run", f32(), "--prompt", "hi"], /tokenizer\.json.*--ids/),
  );

  test("--ids 1,x", opts, () => expectUserError(["run", f32(), "--ids", "1,x"], /--ids.*"x"/));

  test("a token id outside the vocabulary", opts, () =>
    expectUserError(["run", f32(), "--ids", "1,131"], /131.*vocabulary/),
  );

  test("a missing folder", () => {
    const missing = join(scratch, "no-such-model");
    expectUserError(["run", missing, "--ids", "1"], /no-such-model.*no such folder/);
  });

  test("a folder without config.json", () => {
    const empty = mkdtempSync(join(scratch, "empty-"));
    expectUserError(["run", empty, "--ids", "1"], /config\.json/);
  });

  test("both a model and --demo", () => expectUserError(["run", join(scratch, "x"), "--demo", "--ids", "1"], /--demo/));
  test("neither a model nor --demo (run)", () => expectUserError(["run", "--ids", "1"], /no model/));
  test("neither a model nor --demo (scan)", () => expectUserError(["scan"], /no model/));
});
