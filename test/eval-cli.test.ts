// `superweight eval` as a user meets it: the built bin spawned with an offline, empty Hugging Face cache
// (or one holding a data set file written here). The windowed perplexity against single passes of `run`,
// the JSON report, the offline data set, and one clear line (exit 2) for each bad input.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { fixturePath, readReference, repoRoot, skipWithoutFixtures } from "./fixtures.js";
import { commandJsonIn } from "./cli-in-process.js";
import { evalCommand } from "../src/cli/eval.js";
import { runCommand } from "../src/cli/run.js";

const bin = join(repoRoot, "dist", "src", "cli", "main.js");
const scratch = mkdtempSync(join(tmpdir(), "sw-eval-cli-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
const hfHome = join(scratch, "hf");
mkdirSync(hfHome);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  SUPERWEIGHT_PROGRESS: "0",
  SUPERWEIGHT_CACHE: join(scratch, "cache"),
  HF_HOME: hfHome,
  HF_HUB_OFFLINE: "1",
};
for (const k of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"])
  delete env[k];

function cli(...args: string[]): { status: number; stdout: string; stderr: string } {
  try {
    return {
      status: 0,
      stdout: execFileSync(process.execPath, [bin, ...args], {
        env,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 256 << 20,
      }),
      stderr: "",
    };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { status: err.status, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `superweight eval|run ... --json`, in this process (so coverage sees it), with the same environment. */
function json(command: "eval" | "run", ...args: string[]): Promise<any> {
  const vars = { SUPERWEIGHT_CACHE: env.SUPERWEIGHT_CACHE, HF_HOME: hfHome, HF_HUB_OFFLINE: "1" };
  return commandJsonIn(vars, command === "eval" ? evalCommand : runCommand, ...args);
}

/** Exit 2, one line naming the problem, no stack trace, nothing on stdout. */
function userError(args: string[], names: RegExp): void {
  const r = cli(...args);
  assert.equal(r.status, 2, `superweight ${args.join(" ")} → ${r.status}: ${r.stderr}`);
  const line = r.stderr.trimEnd();
  assert.ok(!line.includes("\n"), `one line: ${JSON.stringify(r.stderr)}`);
  assert.match(line, /^superweight: /);
  assert.match(line, names);
  assert.equal(r.stdout, "");
}

let n = 0;
function file(content: string | Uint8Array, ext = "txt"): string {
  const path = join(scratch, `f${n++}.${ext}`);
  writeFileSync(path, content);
  return path;
}

const bytes = fixturePath("bytes-llama-6m");

test(
  "eval --ctx 8 --stride 4 equals the NLL of single `run` passes over each window, each scoring only its new tokens",
  { skip: skipWithoutFixtures },
  async () => {
    const ids: number[] = readReference("bytes-llama-6m").input_ids.slice(0, 30);
    const out = await json(
      "eval",
      bytes,
      "--ids-file",
      file(ids.join(" ")),
      "--ctx",
      "8",
      "--stride",
      "4",
      "--ids",
      "256,65",
    );
    // The guide's loop, written out: windows [b, min(b + 8, n)) every 4 tokens; each scores tokens from the
    // previous window's end (the stream's first token is never scored).
    const windows: { ids: number[]; from: number }[] = [];
    let prevEnd = 0;
    for (let b = 0; b < ids.length; b += 4) {
      const e = Math.min(b + 8, ids.length);
      windows.push({ ids: ids.slice(b, e), from: Math.max(prevEnd, b + 1) - b });
      prevEnd = e;
      if (e === ids.length) break;
    }
    const runs = (await json("run", bytes, ...windows.flatMap((w) => ["--ids", w.ids.join(",")]))).runs;
    let sum = 0,
      count = 0;
    windows.forEach((w, i) => {
      // run's nll[j] is the NLL of window token j + 1.
      for (let t = w.from; t < w.ids.length; t++) ((sum += runs[i].nll[t - 1]), count++);
    });
    const p = out.perplexity;
    assert.equal(count, ids.length - 1);
    assert.equal(p.windows, windows.length);
    assert.equal(p.arms[0].tokensScored, count);
    assert.ok(Math.abs(p.arms[0].meanNll - sum / count) <= 1e-6, `${p.arms[0].meanNll} vs ${sum / count}`);
    assert.equal(p.ctx, 8);
    assert.equal(p.stride, 4);
  },
);

test(
  "eval --json: the exact interventions, the baseline beside each arm, the planted model's zeroed NLL",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "planted-llama-bf16",
      ref = readReference(name);
    const out = await json(
      "eval",
      fixturePath(name),
      "--ids",
      ref.input_ids.join(","),
      "--zero",
      "1:11:37",
      "--zero",
      "2:70:201",
    );
    assert.equal(out.version, 1);
    assert.deepEqual(
      out.arms.map((a: any) => a.role),
      ["baseline", "intervention"],
    );
    assert.deepEqual(out.arms[1].applied.weights, [
      {
        layer: 1,
        row: 11,
        column: 37,
        tensor: "model.layers.1.mlp.down_proj.weight",
        index: [11, 37],
        old: 2.328125,
        new: 0,
      },
      {
        layer: 2,
        row: 70,
        column: 201,
        tensor: "model.layers.2.mlp.down_proj.weight",
        index: [70, 201],
        old: 2,
        new: 0,
      },
    ]);
    const [base, zeroed] = out.prompts.items[0].arms;
    base.nll.forEach((v: number, i: number) => assert.ok(Math.abs(v - ref.nll[i]) <= 1e-4, `baseline nll[${i}]`));
    zeroed.nll.forEach((v: number, i: number) =>
      assert.ok(Math.abs(v - ref.withSuperWeightsZeroed.nll[i]) <= 1e-4, `zeroed nll[${i}]`),
    );
    assert.ok(Math.abs(zeroed.deltaMeanNll - (zeroed.meanNll - base.meanNll)) < 1e-12);
    // The text report shows both beside each other.
    const text = cli("eval", fixturePath(name), "--ids", ref.input_ids.join(","), "--zero", "1:11:37");
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /\[1, 11, 37\] is model\.layers\.1\.mlp\.down_proj\.weight\[11, 37\]: 2\.328125 → 0/);
  },
);

test(
  "a named corpus from the Hugging Face cache works offline and scores as the same text given as a file",
  { skip: skipWithoutFixtures },
  async () => {
    const lines = [
      "",
      " = Valkyria = \n",
      "",
      " The game 's battle system , the BliTZ system , is carried over directly from Valkyira Chronicles . \n",
      " During missions , players select each unit using a top @-@ down perspective of the battlefield map . \n",
    ];
    const schema = [
      { name: "schema", num_children: 1 },
      { name: "text", type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" },
    ] as any;
    const sha = "b08601e04326c79dfdd32d625aee71d232d685c3";
    const dir = join(hfHome, "hub", "datasets--Salesforce--wikitext", "snapshots", sha, "wikitext-2-raw-v1");
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "test-00000-of-00001.parquet"),
      new Uint8Array(parquetWriteBuffer({ schema, columnData: [{ name: "text", data: lines }] })),
    );
    const named = (
      await json("eval", bytes, "--dataset", "wikitext-2", "--ctx", "64", "--limit", "2", "--ids", "256,65")
    ).perplexity;
    assert.equal(named.name, "wikitext-2");
    assert.match(named.source, /^Salesforce\/wikitext@b08601e0/);
    assert.equal(named.windows, 2);
    assert.equal(named.dropPartial, true, "the paper's protocol: whole windows only");
    const asFile = (
      await json("eval", bytes, "--text", file(lines.join("\n\n")), "--ctx", "64", "--limit", "2", "--ids", "256,65")
    ).perplexity;
    assert.equal(asFile.arms[0].tokensScored, named.arms[0].tokensScored);
    assert.equal(asFile.arms[0].meanNll, named.arms[0].meanNll);
    userError(
      ["eval", bytes, "--dataset", "c4", "--ids", "256,65"],
      /not in the Hugging Face cache.*HF_HUB_OFFLINE is set/,
    );
  },
);

test(
  "eval text: one residual trace per super activation, naming every layer that feeds it",
  { skip: skipWithoutFixtures },
  () => {
    // bytes-llama-6m's two super weights, [0, 36, 486] and [1, 36, 71], both feed channel 36 at token 0.
    const text = cli("eval", bytes, "--zero", "0:36:486", "--zero", "1:36:71");
    assert.equal(text.status, 0, text.stderr);
    const sites = text.stdout.split("\n").filter((l) => /^ {4}channel \d+, token \d+ \(/.test(l));
    assert.deepEqual(sites, ["    channel 36, token 0 (from layers 0, 1):"]);
  },
);

test("bad inputs get one line naming the file (and line) and exit 2", { skip: skipWithoutFixtures }, () => {
  const ids = ["--ids", "256,65,66"];
  userError(["eval", bytes, "--text", file(""), ...ids], /f\d+\.txt: holds no text/);
  userError(
    ["eval", bytes, "--text", file(new Uint8Array([0x41, 0x0a, 0xff, 0xfe])), ...ids],
    /f\d+\.txt: line 2: not valid UTF-8/,
  );
  userError(["eval", bytes, "--ids-file", file("1 2\n3 x\n"), ...ids], /f\d+\.txt: line 2: "x" is not a token id/);
  userError(
    ["eval", bytes, "--ids-file", file("1 2 999"), ...ids],
    /f\d+\.txt: token 3 \(id 999\) is outside the model's vocabulary/,
  );
  const ok = JSON.stringify({ context: "Q:", choices: ["yes", "no"], answer: 0 });
  userError(
    ["eval", bytes, "--task", file(`${ok}\n{"context": "Q:", "choices": ["a"`, "jsonl"), ...ids],
    /f\d+\.jsonl: line 2: not valid JSON/,
  );
  userError(
    [
      "eval",
      bytes,
      "--task",
      file(`${ok}\n\n${JSON.stringify({ context: "Q:", choices: ["a", "b"], answer: 2 })}\n`, "jsonl"),
      ...ids,
    ],
    /line 3: "answer" 2 is not an index of the 2 choices/,
  );
  userError(
    ["eval", bytes, "--text", file("some text"), "--ctx", "600", ...ids],
    /config\.json: a window of 600 positions \(--ctx\) is larger than the model's 512/,
  );
  userError(
    ["eval", bytes, "--text", file("some text"), "--ctx", "8", "--stride", "9", ...ids],
    /--stride 9: must be from 1 to the 8/,
  );
  userError(
    ["eval", bytes, "--zero", "0:256:0", ...ids],
    /weight \[0, 256, 0\]: model\.layers\.0\.mlp\.down_proj\.weight has 256 output channels/,
  );
  userError(["eval", bytes, "--zero", "0:36", ...ids], /--zero 0:36: expected LAYER:ROW:COLUMN/);
  userError(
    ["eval", bytes, "--restore-super-activation", ...ids],
    /--restore-super-activation needs a super weight changed/,
  );
  userError(
    ["eval", bytes, "--text", file("a"), "--ids-file", file("1"), ...ids],
    /give one of --text, --ids-file, --dataset/,
  );
  userError(["eval", bytes, "--prune-outliers", "2", ...ids], /--prune-outliers 2: must be a fraction between 0 and 1/);

  // A choice that tokenizes to nothing after its context: a tokenizer that drops "_".
  const folder = join(scratch, "drops-underscores");
  mkdirSync(folder);
  for (const f of ["config.json", "model.safetensors"]) symlinkSync(fixturePath("llama-f32", f), join(folder, f));
  writeFileSync(
    join(folder, "tokenizer.json"),
    JSON.stringify({
      version: "1.0",
      added_tokens: [],
      normalizer: { type: "Replace", pattern: { String: "_" }, content: "" },
      pre_tokenizer: { type: "WhitespaceSplit" },
      post_processor: null,
      decoder: null,
      model: { type: "WordLevel", vocab: { "[UNK]": 0, "Q:": 2, yes: 3, no: 4 }, unk_token: "[UNK]" },
    }),
  );
  const task = file(`${ok}\n${JSON.stringify({ context: "Q:", choices: ["yes", "_"], answer: 0 })}\n`, "jsonl");
  userError(
    ["eval", folder, "--task", task, "--ids", "1,2"],
    /f\d+\.jsonl: line 2: choice 1 \("_"\) tokenizes to no tokens after the context/,
  );
});

test(
  "--chat: prompts as a user turn through the chat template; --generate reports repetition, KL, stopword mass",
  { skip: skipWithoutFixtures },
  async () => {
    const folder = join(scratch, "bytes-chat");
    mkdirSync(folder);
    for (const f of [
      "config.json",
      "model.safetensors.index.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "tokenizer.json",
    ])
      symlinkSync(fixturePath("bytes-llama-6m", f), join(folder, f));
    const template =
      "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}" +
      "{% if add_generation_prompt %}<|assistant|>{% endif %}";
    writeFileSync(
      join(folder, "tokenizer_config.json"),
      JSON.stringify({ bos_token: "<s>", eos_token: "</s>", add_bos_token: true, chat_template: template }),
    );
    const out = await json("eval", folder, "--chat", "--prompt", "Hi", "--generate", "6", "--zero", "0:36:486");
    assert.equal(out.chat, true);
    // The template writes the BOS; the tokenizer adds nothing more (apply_chat_template's add_special_tokens=False).
    assert.deepEqual(out.prompts.items[0].ids, [256, ...new TextEncoder().encode("<|user|>Hi\n<|assistant|>")]);
    const [base, zeroed] = out.generation.prompts[0].arms;
    assert.equal(base.klToBaseline, null);
    assert.ok(zeroed.klToBaseline > 0 && zeroed.klFirst > 0);
    for (const g of [base, zeroed]) {
      assert.ok(g.ids.length <= 6);
      assert.equal(typeof g.text, "string");
      assert.ok(g.stopwordMass >= 0 && g.stopwordMass <= 1);
    }
    const text = cli("eval", folder, "--chat", "--prompt", "Hi", "--generate", "6", "--zero", "0:36:486");
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /greedy continuations \(6 tokens, chat template\)/);
    assert.match(text.stdout, /KL \d\.\d{4} \(first \d\.\d{4}\)/);
    userError(
      ["eval", bytes, "--chat", "--prompt", "Hi"],
      /tokenizer_config\.json: has no chat_template, so --chat has no template to apply/,
    );
  },
);
