// What evaluate() reports about itself, on bytes-llama-6m (a real model with a tokenizer): every kind of arm
// scoring a window as it scores the same ids as a prompt, in batches of two variants; the progress messages; the
// report's own fields (defaults, shape, the windows' protocol, tasks and their stderr, generation, passes and
// bytes); the refusals before any pass; the options that ask for a scan, and a kept-super prune's size.
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { evaluate } from "../src/eval/eval.js";
import { forward } from "../src/engine/forward.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { sharedContextChoices, type McTask } from "../src/data/requests.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

const bytes = fixturePath("bytes-llama-6m");
const utf8 = (s: string) => [...new TextEncoder().encode(s)];
const close = (a: number, b: number, what: string, tol = 1e-9) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test(
  "every kind of arm scores a window as it scores the same ids as a prompt, in batches of two variants",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(bytes);
    try {
      // bytes-llama-6m's super weights are [0, 36, 486] and [1, 36, 71]: a zero, a scale, a prune keeping them,
      // and the restore of their activations. Windows run without hooks (the layers before the first one an arm
      // changes are shared); the prompts run with them, every layer per variant.
      const ids = [256, ...utf8("Once upon a time there was a little girl who liked to read books")];
      const said: string[] = [];
      const t0 = performance.now();
      const r = await evaluate(model, {
        plan: {
          zero: [{ layer: 1, row: 36, column: 71 }],
          scale: [{ weight: { layer: 0, row: 36, column: 486 }, factor: 0.5 }],
          restoreSuperActivation: true,
          prune: { fraction: 0.002, keepSuper: true },
          leaveOneOut: true,
        },
        prompts: [{ label: "story", ids }],
        perplexity: {
          corpus: { kind: "ids", name: "story", ids, windowTokens: ids.length, source: { file: "story.ids" } },
        },
        maxVariants: 2,
        onProgress: (m) => said.push(m),
      });
      const wall = (performance.now() - t0) / 1000;
      const roles = r.arms.map((a) => a.role);
      assert.deepEqual(roles, ["baseline", "intervention", "single", "single", "leave-one-out", "leave-one-out"]);
      const models = new Set(r.arms.map((a) => a.model)).size;
      assert.equal(models, 4, "leave-one-out of two weights is the other one alone");
      assert.deepEqual(r.variants, { models, batches: models - 1, maxVariants: 2 });
      assert.deepEqual(said, [
        "scan of 1 prompt",
        `6 arms, ${models} distinct models in ${models - 1} batches`,
        "prompts",
        `perplexity: ${ids.length} tokens of story`,
        "perplexity: window 1/1",
      ]);
      assert.deepEqual(
        r.scan!.found.filter((w) => w.class === "super").map((w) => [w.layer, w.row, w.column]),
        readReference("bytes-llama-6m")
          .detection.found.filter((w: any) => w.layer < 7)
          .map((w: any) => [w.layer, w.row, w.column]),
        "the reference's detections but the last layer's outlier",
      );
      assert.equal(r.scan!.threshold, 50);
      r.arms.forEach((a, i) => {
        const prompt = r.prompts!.items[0].arms[i].meanNll!;
        close(r.perplexity!.arms[i].meanNll, prompt, `${a.label}: the window against the prompt`, 1e-5);
        if (i > 0) assert.notEqual(prompt, r.prompts!.items[0].arms[0].meanNll, `${a.label} changes the model`);
        close(r.perplexity!.arms[i].deltaMeanNll, r.perplexity!.arms[i].meanNll - r.perplexity!.arms[0].meanNll, "Δ");
        close(r.prompts!.items[0].arms[i].deltaMeanNll!, prompt - r.prompts!.items[0].arms[0].meanNll!, "Δ prompt");
      });
      // The residual followed at each super weight's channel and the scan's token (the two share channel 36):
      // after layer 0, every arm restores the baseline's activation there (to 0.5 %: the prune changes layer 0's
      // attention a little).
      const base = r.prompts!.items[0].arms[0].traces;
      for (const [i, a] of r.prompts!.items[0].arms.entries()) {
        assert.deepEqual(
          a.traces.map((t) => [t.layer, t.channel, t.token, t.byLayer.length]),
          [
            [0, 36, 0, 8],
            [1, 36, 0, 8],
          ],
        );
        close(a.traces[0].byLayer[0], base[0].byLayer[0], `${r.arms[i].label}: restored after layer 0`, 5e-3);
      }
      assert.ok(Math.abs(base[0].byLayer[0]) > 50, `the super activation: ${base[0].byLayer[0]}`);
      assert.deepEqual(r.perplexity && { ...r.perplexity, arms: undefined }, {
        name: "story",
        source: "story.ids",
        tokens: ids.length,
        windows: 1,
        ctx: ids.length,
        stride: ids.length,
        bos: null,
        dropPartial: false,
        arms: undefined,
      });
      // One prompt pass and one window pass per batch, each reading every weight at least once, whatever it
      // shares (a prune's variant reads its tensors once more, to find their largest |w|).
      const one = (await forward(model, ids)).bytesRead;
      assert.equal(r.passes, 2 * (models - 1));
      assert.ok(r.bytesRead >= r.passes * one, `${r.bytesRead} bytes in ${r.passes} passes of ${one}`);
      assert.ok(r.seconds > 0 && r.seconds <= wall, `${r.seconds} s of ${wall}`);
    } finally {
      model.close();
    }
  },
);

test(
  "evaluate: its progress, and the report's own fields: defaults, shape, the windows' protocol, tasks, generation",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(bytes);
    const config = JSON.parse(readFileSync(join(bytes, "config.json"), "utf8"));
    const tokenizer = loadTokenizer(bytes)!;
    try {
      const said: string[] = [];
      const task: McTask = {
        kind: "multiple_choice",
        name: "three",
        metrics: ["acc", "acc_norm"],
        source: { repo: "org/three", path: "test.jsonl" },
        items: [
          { id: "a", choices: sharedContextChoices("Once upon a", ["time", "spoon"]), answer: 0 },
          { id: "b", choices: sharedContextChoices("The cat sat on the", ["mat", "xqz"]), answer: 0 },
          { id: "c", choices: sharedContextChoices("One, two,", ["three", "qqq"]), answer: 1 },
        ],
      };
      // 600 characters of text, one window of the model's 512 positions (the corpus asks for 1000): with
      // --window-bos the text is tokenized without the tokenizer's BOS, which starts each window instead.
      const text = "Once upon a time there was a little girl. ".repeat(15).slice(0, 600);
      const r = await evaluate(model, {
        plan: { zero: [{ layer: 0, row: 36, column: 486 }] },
        prompts: [
          { label: "one token", ids: [256] },
          { label: "story", ids: tokenizer.encode("Once upon a time") },
          { label: "end", ids: tokenizer.encode("The end.") },
        ],
        perplexity: {
          corpus: { kind: "text", name: "text", text, windowTokens: 1000, source: { repo: "org/text", path: "t.txt" } },
          windowBos: true,
        },
        tasks: [task],
        generate: { tokens: 2 },
        chat: true,
        tokenizer,
        onProgress: (m) => said.push(m),
      });
      assert.deepEqual(said, [
        "2 arms, 2 distinct models in 1 batch",
        "prompts",
        "perplexity: 600 tokens of text",
        "perplexity: window 1/1",
        "three: item 1/3",
        "three: item 2/3",
        "three: item 3/3",
        "generate: prompt 1/3",
        "generate: prompt 2/3",
        "generate: prompt 3/3",
      ]);
      assert.deepEqual(
        [r.model, r.modelType, r.chat, r.seed, r.scan, r.variants, r.nulls],
        [bytes, "llama", true, 0, null, { models: 2, batches: 1, maxVariants: 16 }, []],
      );
      assert.deepEqual(r.shape, {
        layers: config.num_hidden_layers,
        hidden: config.hidden_size,
        intermediate: config.intermediate_size,
        vocab: config.vocab_size,
      });
      assert.deepEqual(r.arms[1].applied.weights, [
        {
          layer: 0,
          row: 36,
          column: 486,
          tensor: "model.layers.0.mlp.down_proj.weight",
          index: [36, 486],
          old: r.arms[1].applied.weights[0].old,
          new: 0,
        },
      ]);
      // Unscanned, the zeroed weight is followed where its input peaks: the first token; without its super weight
      // the activation there falls
      // (127.6 → 71.8).
      for (const p of r.prompts!.items)
        for (const a of p.arms)
          assert.deepEqual(
            a.traces.map((t) => [t.layer, t.channel, t.token]),
            [[0, 36, 0]],
          );
      const [before, after] = r.prompts!.items[1].arms.map((a) => a.traces[0].byLayer[0]);
      assert.ok(Math.abs(after) < 0.7 * Math.abs(before), `${before} → ${after}`);
      assert.equal(r.arms[1].applied.prune, undefined);
      assert.equal("restore" in r.arms[1].applied, false);

      // A one-token prompt predicts nothing: no NLL, no Δ, and the prompts' mean is the other two's.
      assert.deepEqual(
        r.prompts!.items[0].arms.map((a) => [a.meanNll, a.deltaMeanNll]),
        [
          [null, null],
          [null, null],
        ],
      );
      r.prompts!.meanNll.forEach((m, a) =>
        close(m!, (r.prompts!.items[1].arms[a].meanNll! + r.prompts!.items[2].arms[a].meanNll!) / 2, `arm ${a}`),
      );
      assert.equal(r.shift!.prompts, 3);
      assert.equal(r.shift!.arms[0], null, "the baseline has no shift against itself");
      assert.ok(r.shift!.arms[1] !== null && r.shift!.baselineStopwordMass! > 0);

      const { arms: _, ...ppl } = r.perplexity!;
      assert.deepEqual(ppl, {
        name: "text",
        source: "org/text@main/t.txt",
        tokens: 600,
        windows: 1,
        ctx: 512,
        stride: 511,
        bos: config.bos_token_id,
        dropPartial: true,
      });

      const [t] = r.tasks;
      assert.deepEqual([t.name, t.source, t.items], ["three", "org/three@main/test.jsonl", 3]);
      assert.ok(t.arms[0].acc > 0, "the baseline gets some right, so that Δ is not the arm's own accuracy");
      t.arms.forEach((a, i) => close((a as any).deltaAcc, a.acc - t.arms[0].acc, `arm ${i} Δacc`));
      // Each stderr is the harness's sqrt(sample variance / n) of its items' hits.
      const stderr = (hits: boolean[]) => {
        const p = hits.filter(Boolean).length / hits.length;
        return Math.sqrt(hits.reduce((q, h) => q + ((h ? 1 : 0) - p) ** 2, 0) / (hits.length - 1) / hits.length);
      };
      for (const a of t.arms as any[]) {
        close(a.accStderr, stderr(a.items.map((it: any) => it.acc)), "acc stderr");
        close(a.accNormStderr, stderr(a.items.map((it: any) => it.accNorm)), "acc_norm stderr");
      }

      assert.equal(r.generation!.tokens, 2);
      assert.deepEqual(
        r.generation!.prompts.map((p) => [p.label, p.arms.map((a) => a!.ids.length)]),
        [
          ["one token", [2, 2]],
          ["story", [2, 2]],
          ["end", [2, 2]],
        ],
      );
      // The generation's passes and bytes are added to the measurements'.
      const one = (await forward(model, [256])).bytesRead;
      assert.ok(r.passes > 3 + 1 + 3, `${r.passes} passes: 3 prompts, a window, 3 items, then generation`);
      assert.ok(r.bytesRead >= r.passes * one, `${r.bytesRead} bytes in ${r.passes} passes of ${one}`);
    } finally {
      model.close();
    }
  },
);

test(
  "--window-bos on a model without bos_token_id: a one-line error naming its config",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("olmo-f32");
    const model = Model.open(dir);
    try {
      const corpus = { kind: "ids" as const, name: "x", ids: [1, 2, 3, 4], windowTokens: 4, source: { file: "x" } };
      await assert.rejects(
        evaluate(model, { plan: {}, prompts: [{ label: "p", ids: [1, 2] }], perplexity: { corpus, windowBos: true } }),
        { message: `${join(dir, "config.json")}: names no bos_token_id to start each window with (--window-bos)` },
      );
      // Without it, the window is the corpus's (no room kept for a BOS), and a file's partial window is kept.
      const r = await evaluate(model, { plan: {}, prompts: [{ label: "p", ids: [1, 2] }], perplexity: { corpus } });
      assert.deepEqual(
        [r.perplexity!.ctx, r.perplexity!.stride, r.perplexity!.bos, r.perplexity!.dropPartial],
        [4, 4, null, false],
      );
    } finally {
      model.close();
    }
  },
);

test(
  "evaluate: a task needs a tokenizer; --add-bos and itemAt reach the task's requests",
  { skip: skipWithoutFixtures },
  async () => {
    const item = (id: string, context: string) => ({
      id,
      choices: sharedContextChoices(context, ["a", "b"]),
      answer: 0,
    });
    const task: McTask = {
      kind: "multiple_choice",
      name: "t",
      metrics: ["acc"],
      source: { file: "t.jsonl" },
      items: [item("x", "Q:"), item("y", "R:")],
    };
    const olmo = Model.open(fixturePath("olmo-f32"));
    try {
      await assert.rejects(evaluate(olmo, { plan: {}, prompts: [{ label: "p", ids: [1, 2] }], tasks: [task] }), {
        message: `${olmo.path}: has no tokenizer.json, so the task t cannot be tokenized`,
      });
    } finally {
      olmo.close();
    }
    const model = Model.open(bytes);
    const tokenizer = loadTokenizer(bytes)!;
    try {
      const run = (choice: object, t = task) =>
        evaluate(model, { plan: {}, prompts: [{ label: "p", ids: [256, 65] }], tasks: [t], tokenizer, choice });
      const plain = (await run({})).tasks[0].arms[0] as any,
        withBos = (await run({ addBos: true })).tasks[0].arms[0] as any;
      // --add-bos puts bytes-llama-6m's BOS before each context: every log-likelihood changes.
      plain.items.forEach((it: any, i: number) =>
        it.logLikelihoods.forEach((ll: number, c: number) => assert.notEqual(ll, withBos.items[i].logLikelihoods[c])),
      );
      const y = {
        id: "y",
        choices: [...item("y", "R:").choices, { context: "R:", continuation: "", normLength: 0 }],
        answer: 0,
      };
      const empty = { ...task, items: [item("x", "Q:"), y] };
      await assert.rejects(run({ itemAt: (t: McTask, i: number) => `${t.name} line ${i + 7}` }, empty), {
        message: 't.jsonl: t line 8: choice 2 ("") tokenizes to no tokens after the context',
      });
    } finally {
      model.close();
    }
  },
);

test(
  "evaluate: --scale-super and --sweep-scale alone ask for the scan; a kept-super prune's size",
  { skip: skipWithoutFixtures },
  async () => {
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      const prompts = [{ label: "ref", ids: readReference("planted-llama-bf16").input_ids as number[] }];
      const scaled = await evaluate(model, { plan: { scaleSuper: 0.5 }, prompts });
      assert.deepEqual(
        scaled.arms.map((a) => a.label),
        ["baseline", "×0.5 [1, 11, 37] [2, 70, 201]"],
      );
      assert.equal(scaled.scan!.found.filter((w) => w.class === "super").length, 2);
      const swept = await evaluate(model, {
        plan: { sweepScale: [2] },
        prompts,
        scan: { threshold: 40, maxIterations: 3 },
      });
      assert.deepEqual(
        swept.arms.map((a) => [a.label, a.factor]),
        [
          ["baseline", undefined],
          ["scale ×2", 2],
        ],
      );
      assert.equal(swept.scan!.threshold, 40);
      assert.equal("factor" in swept.arms[0], false, "only a sweep's arms carry a factor");
      // A kept-super prune of half of every linear weight: round(n / 2) of each, less half of a spared weight in
      // the two tensors that hold one (half of an odd count rounds up).
      const pruned = await evaluate(model, { plan: { prune: { fraction: 0.5, keepSuper: true } }, prompts });
      const file = readFileSync(join(fixturePath("planted-llama-bf16"), "model.safetensors"));
      const header = JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString());
      const linear = Object.entries<any>(header).filter(([n]) =>
        /^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/.test(n),
      );
      const spared = ["model.layers.1.mlp.down_proj.weight", "model.layers.2.mlp.down_proj.weight"];
      const zeroed = linear.reduce(
        (z, [n, t]) => z + Math.round(0.5 * (t.shape[0] * t.shape[1] - (spared.includes(n) ? 1 : 0))),
        0,
      );
      assert.deepEqual(
        [pruned.arms[1].applied.prune!.tensors, pruned.arms[1].applied.prune!.zeroed],
        [linear.length, zeroed],
      );
      // With a coordinate to sweep, no scan.
      const named = await evaluate(model, {
        plan: { sweepScale: [2], zero: [{ layer: 1, row: 11, column: 37 }] },
        prompts,
      });
      assert.equal(named.scan, null);
    } finally {
      model.close();
    }
  },
);
