// What an evaluation's plan and report say about themselves: every arm's label and role for a plan that asks for
// everything at once (mixed operations, a kept-super prune, restore, leave-one-out, a sweep and nulls), each
// null's description and neighbourhood against a full sort of the tensor, the nulls of an expert's weight
// (the expert kept in every coordinate) and of GPT-2's transposed Conv1D weights, and evaluate()'s progress
// messages and the report's own fields (defaults, shape, the windows' protocol, the passes and bytes added up).
import { test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Model } from "../src/engine/model.js";
import { interventionVariants, locateWeight } from "../src/eval/interventions.js";
import { nullNeighbourhood, planArms, type ScannedWeight } from "../src/eval/arms.js";
import { evaluate } from "../src/eval/eval.js";
import { forward } from "../src/engine/forward.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { sharedContextChoices, type McTask } from "../src/data/requests.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

function scannedOf(model: Model, ref: any): ScannedWeight[] {
  return ref.expectedSuperWeights.map((w: any) => ({
    ...locateWeight(model, {
      layer: w.layer,
      ...(w.expert !== undefined ? { expert: w.expert } : {}),
      row: w.row,
      column: w.column,
    }),
    token: w.token,
    class: w.class,
  }));
}

/** Every element's rank by |w| descending, ties in stored order; and the `count` nearest ranks to `flat`. */
function neighbourhoodBySort(values: Float32Array, flat: number, count: number) {
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  const rank = new Int32Array(values.length);
  order.forEach((i, r) => (rank[i] = r));
  const near = [...values.keys()]
    .filter((j) => j !== flat)
    .sort((a, b) => Math.abs(rank[a] - rank[flat]) - Math.abs(rank[b] - rank[flat]) || rank[a] - rank[b])
    .slice(0, count);
  return { rank, near };
}

test(
  "planArms: every arm's label and role when a plan asks for everything, and each null's description",
  { skip: skipWithoutFixtures },
  () => {
    const name = "planted-llama-bf16";
    const model = Model.open(fixturePath(name));
    try {
      const scanned = scannedOf(model, readReference(name));
      const { arms, nulls } = planArms(model, {
        zero: [{ layer: 1, row: 11, column: 37 }],
        scale: [{ weight: { layer: 2, row: 70, column: 201 }, factor: 2 }],
        scanned,
        prune: { fraction: 0.01, keepSuper: true },
        restoreSuperActivation: true,
        leaveOneOut: true,
        sweepScale: [0.5],
        nulls: 2,
        seed: 1,
      });
      const both = "zero [1, 11, 37], ×2 [2, 70, 201]";
      const prune = "prune 1% largest |w| (super weights kept)";
      const restore = " + restore super activation";
      assert.deepEqual(
        arms.map((a) => [a.role, a.label]),
        [
          ["baseline", "baseline"],
          ["intervention", `${both} + ${prune}${restore}`],
          ["single", `only zero [1, 11, 37]${restore}`],
          ["single", `only ×2 [2, 70, 201]${restore}`],
          ["leave-one-out", `all but [1, 11, 37]${restore}`],
          ["leave-one-out", `all but [2, 70, 201]${restore}`],
          ["sweep", "scale ×0.5"],
          // The nulls compare the weight change alone: new arms without the restore.
          ["single", "only zero [1, 11, 37]"],
          ...arms.slice(8, 10).map((a) => ["null", a.label]),
          ["single", "only ×2 [2, 70, 201]"],
          ...arms.slice(11, 13).map((a) => ["null", a.label]),
          ["joint", both],
          ["null", "null 1: joint"],
          ["null", "null 2: joint"],
          ["prune", prune],
          ["null", "null 1: random 1%"],
          ["null", "null 2: random 1%"],
        ],
      );
      assert.deepEqual(
        arms.map((a) => a.factor),
        arms.map((a) => (a.role === "sweep" ? 0.5 : undefined)),
      );
      assert.equal("factor" in arms[1], false, "only a sweep's arms carry a factor");
      // Each single with restore puts back its own weight's activation; each leave-one-out the other's.
      const site = (w: ScannedWeight) => ({ layer: w.layer, tensor: w.tensor, token: w.token, channel: w.row });
      assert.deepEqual(arms[1].intervention.restore, scanned.map(site));
      assert.deepEqual(arms[2].intervention.restore, [site(scanned[0])]);
      assert.deepEqual(arms[3].intervention.restore, [site(scanned[1])]);
      assert.deepEqual(arms[4].intervention.restore, [site(scanned[1])]);
      assert.deepEqual(arms[5].intervention.restore, [site(scanned[0])]);
      assert.deepEqual(arms[1].intervention.prune, { fraction: 0.01, spare: scanned });
      assert.deepEqual(
        arms[6].intervention.weights.map((w) => [w.index, w.newValue]),
        scanned.map((w) => [w.index, Math.fround(w.value * 0.5)]),
        "the sweep scales the named weights",
      );
      assert.deepEqual(arms[17].intervention.prune, {
        fraction: 0.01,
        spare: scanned,
        random: arms[17].intervention.prune!.random,
      });

      assert.deepEqual(
        nulls.map((g) => [g.real, g.arms, g.what]),
        [
          [7, [8, 9], `zero [1, 11, 37] vs the same on 2 random weights of ${scanned[0].tensor} near it in |w| rank`],
          [10, [11, 12], `×2 [2, 70, 201] vs the same on 2 random weights of ${scanned[1].tensor} near it in |w| rank`],
          [13, [14, 15], `${both} vs the same on one random |w|-rank neighbour of each, 2 times`],
          [16, [17, 18], `${prune} vs zeroing random sets of the same size in every linear weight, 2 times`],
        ],
      );
      for (const [i, w] of scanned.entries()) {
        const g = nulls[i];
        const values = model.read(w.tensor),
          [rows, cols] = model.shape(w.tensor);
        const flat = w.index[0] * cols + w.index[1];
        const { rank, near } = neighbourhoodBySort(values, flat, nullNeighbourhood(2));
        const drawn = g.arms.map((id) => arms[id].intervention.weights[0]);
        assert.deepEqual(g.neighbourhood, {
          tensor: w.tensor,
          elements: rows * cols,
          rank: rank[flat],
          window: [Math.min(...near.map((j) => rank[j])), Math.max(...near.map((j) => rank[j]))],
          drawn: drawn.map((d) => ({
            coordinate: { layer: w.layer, row: d.index[0], column: d.index[1] },
            value: values[d.index[0] * cols + d.index[1]],
            rank: rank[d.index[0] * cols + d.index[1]],
          })),
        });
        const op = i === 0 ? "zero" : "×2";
        g.arms.forEach((id, j) =>
          assert.equal(arms[id].label, `null ${j + 1}: ${op} [${w.layer}, ${drawn[j].index.join(", ")}]`),
        );
        drawn.forEach((d) => assert.equal(d.newValue, i === 0 ? 0 : Math.fround(d.value * 2)));
      }
    } finally {
      model.close();
    }
  },
);

test(
  "nulls of an expert's weight draw from that expert's tensor and name the expert in every coordinate",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("newer", "planted-mixtral-bf16");
    const model = Model.open(dir);
    try {
      const w = readReference("newer/planted-mixtral-bf16").expectedSuperWeights[0];
      assert.deepEqual([w.layer, w.expert, w.row, w.column], [1, 2, 9, 40]);
      const zero = [{ layer: 1, expert: 2, row: 9, column: 40 }];
      const { arms, nulls } = planArms(model, { zero, nulls: 3, seed: 5 });
      const [g] = nulls;
      const tensor = "model.layers.1.block_sparse_moe.experts.2.w2.weight";
      assert.equal(g.neighbourhood!.tensor, tensor);
      assert.equal(g.what, `zero [1, 2, 9, 40] vs the same on 3 random weights of ${tensor} near it in |w| rank`);
      const values = model.read(tensor),
        cols = model.shape(tensor)[1];
      g.arms.forEach((id, j) => {
        const [d] = arms[id].intervention.weights;
        assert.equal(d.tensor, tensor);
        assert.equal(d.expert, 2);
        assert.equal(arms[id].label, `null ${j + 1}: zero [1, 2, ${d.index.join(", ")}]`);
        assert.deepEqual(g.neighbourhood!.drawn[j].coordinate, {
          layer: 1,
          expert: 2,
          row: d.index[0],
          column: d.index[1],
        });
        assert.equal(d.value, values[d.index[0] * cols + d.index[1]]);
      });

      // The same row and column in another expert is another weight.
      const two = planArms(model, { zero: [...zero, { ...zero[0], expert: 3 }] }).arms;
      assert.equal(two[1].label, "zero [1, 2, 9, 40] [1, 3, 9, 40]");

      // Found by the scan, the report keeps the expert in the scan's list, the applied weights and the traces;
      // the nulls' own weights are not traced.
      const ids = readReference("newer/planted-mixtral-bf16").input_ids as number[];
      const corpus = { kind: "ids" as const, name: "c", ids, windowTokens: ids.length, source: { file: "c" } };
      const r = await evaluate(model, {
        plan: { zeroSuper: true, nulls: 3, seed: 5 },
        prompts: [{ label: "p", ids }],
        perplexity: { corpus },
      });
      assert.deepEqual(
        r.scan!.found.filter((x) => x.class === "super").map((x) => [x.layer, x.expert, x.row, x.column]),
        [[1, 2, 9, 40]],
      );
      assert.deepEqual(
        r.arms.map((a) => a.applied.weights.map((x) => x.expert)),
        [[], [2], [2], [2], [2]],
      );
      for (const a of r.prompts!.items[0].arms)
        assert.deepEqual(
          a.traces.map((t) => [t.layer, t.channel, t.token]),
          [[1, 9, w.token]],
        );
      assert.deepEqual(
        r.nulls[0].stats.map((x) => x.metric),
        ["prompts: mean NLL", "c: mean NLL"],
      );
      // A one-token prompt gives the nulls no prompt metric.
      const short = await evaluate(model, { plan: { zero, nulls: 1 }, prompts: [{ label: "p", ids: [1] }] });
      assert.deepEqual(short.nulls[0].stats, []);
      assert.deepEqual(r.arms[1].applied.weights[0], {
        layer: 1,
        expert: 2,
        row: 9,
        column: 40,
        tensor,
        index: [9, 40],
        old: 2,
        new: 0,
      });
    } finally {
      model.close();
    }
  },
);

test(
  "nulls of a GPT-2 weight: stored [in, out], so each draw's coordinate is its stored index transposed",
  { skip: skipWithoutFixtures },
  () => {
    const model = Model.open(fixturePath("gpt2-f32"));
    try {
      const { arms, nulls } = planArms(model, { zero: [{ layer: 1, row: 7, column: 200 }], nulls: 4, seed: 2 });
      const { tensor } = arms[1].intervention.weights[0];
      assert.match(tensor, /h\.1\.mlp\.c_proj\.weight$/);
      const [inputs, outputs] = model.shape(tensor);
      assert.deepEqual([inputs, outputs], [4 * 60, 60], "Conv1D: [intermediate, hidden]");
      assert.deepEqual(arms[1].intervention.weights[0].index, [200, 7]);
      const values = model.read(tensor);
      for (const [j, id] of nulls[0].arms.entries()) {
        const [d] = arms[id].intervention.weights;
        const { row, column } = nulls[0].neighbourhood!.drawn[j].coordinate;
        assert.deepEqual(d.index, [column, row], "stored [column, row]");
        assert.ok(row < outputs && column < inputs);
        assert.equal(d.value, values[d.index[0] * outputs + d.index[1]]);
      }
    } finally {
      model.close();
    }
  },
);

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

test(
  "planArms: each weight counted once, what tells two weights apart, and each refusal's message",
  { skip: skipWithoutFixtures },
  () => {
    const name = "planted-llama-bf16";
    const model = Model.open(fixturePath(name));
    try {
      const scanned = scannedOf(model, readReference(name));
      const labels = (plan: object) => planArms(model, plan).arms.map((a) => a.label);
      // The same weight twice with the same operation is one weight; a super weight named and zeroed as super too.
      assert.deepEqual(
        labels({
          zero: [
            { layer: 1, row: 11, column: 37 },
            { layer: 1, row: 11, column: 37 },
          ],
        }),
        ["baseline", "zero [1, 11, 37]"],
      );
      assert.deepEqual(labels({ zero: [{ layer: 1, row: 11, column: 37 }], zeroSuper: true, scanned }), [
        "baseline",
        "zero [1, 11, 37] [2, 70, 201]",
      ]);
      // Weights that differ in one of layer, row or column are different weights.
      const near = [
        { layer: 1, row: 11, column: 37 },
        { layer: 2, row: 11, column: 37 },
        { layer: 1, row: 12, column: 37 },
        { layer: 1, row: 11, column: 38 },
      ];
      assert.deepEqual(labels({ zero: near }), ["baseline", "zero [1, 11, 37] [2, 11, 37] [1, 12, 37] [1, 11, 38]"]);
      // Several weights with leave-one-out but no nulls still get each weight alone; with nulls but no
      // leave-one-out, each weight alone keeps the restore, beside the plain weight change the nulls compare.
      const both = { zeroSuper: true, scanned };
      assert.deepEqual(
        planArms(model, { ...both, leaveOneOut: true }).arms.map((a) => a.role),
        ["baseline", "intervention", "single", "single", "leave-one-out", "leave-one-out"],
      );
      const restored = planArms(model, { ...both, restoreSuperActivation: true, nulls: 1 }).arms;
      assert.deepEqual(
        restored.filter((a) => a.role === "single").map((a) => a.label),
        [
          "only zero [1, 11, 37] + restore super activation",
          "only zero [2, 70, 201] + restore super activation",
          "only zero [1, 11, 37]",
          "only zero [2, 70, 201]",
        ],
      );
      // A prune alone, without the super weights kept.
      const { arms } = planArms(model, { prune: { fraction: 0.01, keepSuper: false } });
      assert.deepEqual(
        arms.map((a) => [a.label, a.intervention.prune]),
        [
          ["baseline", undefined],
          ["prune 1% largest |w|", { fraction: 0.01, spare: [] }],
        ],
      );

      const refused = (plan: object, message: string) =>
        assert.throws(() => planArms(model, plan), { name: "UserError", message });
      refused(
        {
          zero: [{ layer: 1, row: 11, column: 37 }],
          scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 2 }],
        },
        "--scale: weight [1, 11, 37] is already set by zero",
      );
      refused(
        { scale: [{ weight: { layer: 1, row: 11, column: 37 }, factor: 2 }], zeroSuper: true, scanned },
        "--zero-super: weight [1, 11, 37] is already set by ×2",
      );
      refused(
        { zero: [{ layer: 2, row: 70, column: 201 }], scaleSuper: 3, scanned },
        "--scale-super: weight [2, 70, 201] is already set by zero",
      );
      refused({ prune: { fraction: 0.01, keepSuper: true } }, "--keep-super needs the scan's super weights");
      const outlier = scanned.map((w) => ({ ...w, class: "outlier" as const }));
      refused(
        { zeroSuper: true, scanned: outlier },
        "--zero-super: the scan classified no weight as super on the prompt (candidates: [1, 11, 37] [2, 70, 201])",
      );
      refused(
        { prune: { fraction: 0.01, keepSuper: true }, scanned: [] },
        "--keep-super: the scan classified no weight as super on the prompt (candidates: none)",
      );
      refused(
        { zero: [{ layer: 1, row: 11, column: 38 }], restoreSuperActivation: true, scanned },
        "--restore-super-activation: the scan did not find [1, 11, 38] on the prompt, so its super activation's token is unknown",
      );
    } finally {
      model.close();
    }
  },
);

test(
  "nulls: a tensor's other targets are left out of each one's neighbourhood; a tensor too small for the draws",
  { skip: skipWithoutFixtures },
  () => {
    const model = Model.open(fixturePath("gpt2-f32"));
    try {
      const tensor = "transformer.h.1.mlp.c_proj.weight";
      const values = model.read(tensor),
        cols = model.shape(tensor)[1];
      // The target, and the weight just below it in |w| rank (stored [in, out]: coordinates are transposed).
      const order = [...values.keys()].sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
      const [a, b] = [order[100], order[101]];
      const coordinate = (flat: number) => ({ layer: 1, row: flat % cols, column: Math.floor(flat / cols) });
      const { nulls } = planArms(model, { zero: [coordinate(a), coordinate(b)], nulls: 2 });
      const rank = new Int32Array(values.length);
      order.forEach((i, r) => (rank[i] = r));
      for (const [g, self, other] of [
        [nulls[0], a, b],
        [nulls[1], b, a],
      ] as const) {
        const near = [...values.keys()]
          .filter((j) => j !== self && j !== other)
          .sort((x, y) => Math.abs(rank[x] - rank[self]) - Math.abs(rank[y] - rank[self]) || rank[x] - rank[y])
          .slice(0, nullNeighbourhood(2));
        assert.deepEqual(g.neighbourhood!.window, [
          Math.min(...near.map((j) => rank[j])),
          Math.max(...near.map((j) => rank[j])),
        ]);
      }
      const n = values.length;
      assert.throws(() => planArms(model, { zero: [coordinate(a)], nulls: n }), {
        message: `--null ${n}: ${tensor} has only ${n - 1} other weights to draw from`,
      });
    } finally {
      model.close();
    }
  },
);

test("a prune's overrides spare each kept weight in its own tensor only", { skip: skipWithoutFixtures }, () => {
  const name = "planted-llama-bf16";
  const model = Model.open(fixturePath(name));
  try {
    const [kept] = scannedOf(model, readReference(name));
    const cols = model.shape(kept.tensor)[1];
    const flat = kept.index[0] * cols + kept.index[1];
    for (const random of [undefined, { seed: 9 }]) {
      const [, variant] = interventionVariants(
        model,
        [{ weights: [], prune: { fraction: 0.01, spare: [kept], ...(random ? { random } : {}) } }],
        { offset: 0 },
      );
      const keys = new Map(variant.overrides!.map((o) => [o.tensor, o.key]));
      const kind = random ? "zero-random:9" : "zero-largest";
      assert.equal(keys.get(kept.tensor), `${kind}:0.01:${flat}`);
      assert.equal(keys.get("model.layers.2.mlp.down_proj.weight"), `${kind}:0.01:`);
      assert.equal(keys.get("model.layers.1.mlp.up_proj.weight"), `${kind}:0.01:`);
    }
  } finally {
    model.close();
  }
});
