// `superweight eval --json` with everything that adds up across arms at once, on bytes-llama-6m (a real model with
// a tokenizer): a zero-shot task file, a single-weight change with its null draws, and the 0.1 % prune with the
// super weights kept, with its own nulls. Each summary is checked against the pieces it sums: the task's accuracy
// from its items' predictions and the answers in the file, each delta against the baseline arm, the null
// statistics by their definition in docs/eval.md, and the prune's size from the checkpoint's own tensor shapes.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { commandJsonIn } from "./cli-in-process.js";
import { evalCommand } from "../src/cli/eval.js";

const scratch = mkdtempSync(join(tmpdir(), "sw-eval-report-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const items = [
  { context: "The cat sat on the", choices: ["mat.", "sky."], answer: 0 },
  { context: "One, two,", choices: ["three", "blue", "seven"], answer: 0 },
  { context: "Water is", choices: ["wet", "dry"], answer: 1 },
];

/** The checkpoint's linear weights (every layer's projections) and their element counts, from its headers. */
function linearWeights(dir: string): Map<string, number> {
  const index = JSON.parse(readFileSync(join(dir, "model.safetensors.index.json"), "utf8"));
  const sizes = new Map<string, number>();
  for (const file of new Set<string>(Object.values(index.weight_map))) {
    const bytes = readFileSync(join(dir, file));
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
    for (const [name, t] of Object.entries<any>(header))
      if (/^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$/.test(name))
        sizes.set(
          name,
          t.shape.reduce((a: number, b: number) => a * b, 1),
        );
  }
  return sizes;
}

/** docs/eval.md: Δ of the real change against the draws' mean and sample sd, z, and the rank of |Δ| among them. */
function expectedStats(real: number, draws: number[]) {
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  const sd = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1));
  return {
    real,
    nullMean: mean,
    nullSd: sd,
    z: sd > 0 ? (real - mean) / sd : null,
    rank: 1 + draws.filter((d) => Math.abs(d) >= Math.abs(real)).length,
    of: draws.length + 1,
  };
}

const close = (a: number | null, b: number | null, what: string) =>
  a === null || b === null
    ? assert.equal(a, b, what)
    : assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test(
  "eval --task --zero --null --prune-outliers --keep-super: tasks, nulls and the prune add up from their parts",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("bytes-llama-6m");
    const task = join(scratch, "three.jsonl");
    writeFileSync(task, items.map((i) => JSON.stringify(i)).join("\n") + "\n");
    const r = await commandJsonIn(
      { HF_HUB_OFFLINE: "1", SUPERWEIGHT_CACHE: join(scratch, "cache") },
      evalCommand,
      dir,
      "--task",
      task,
      "--zero",
      "0:36:486",
      "--null",
      "2",
      "--seed",
      "0",
      "--prune-outliers",
      "0.001",
      "--keep-super",
    );
    const roles = r.arms.map((a: any) => a.role);
    assert.deepEqual(roles, ["baseline", "intervention", "single", "null", "null", "prune", "null", "null"]);

    // The task: one entry, its items from the file, each arm's accuracy the share of its items' predictions that
    // are the file's answers, and its deltas against the baseline arm.
    assert.equal(r.tasks.length, 1);
    const t = r.tasks[0];
    assert.deepEqual(
      [t.name, t.kind, t.metrics, t.source, t.items],
      ["three.jsonl", "multiple_choice", ["acc", "acc_norm"], task, 3],
    );
    assert.equal(t.arms.length, roles.length);
    t.arms.forEach((arm: any, a: number) => {
      assert.equal(arm.items.length, 3);
      arm.items.forEach((it: any, i: number) => {
        assert.equal(it.logLikelihoods.length, items[i].choices.length);
        const best = it.logLikelihoods.indexOf(Math.max(...it.logLikelihoods));
        assert.equal(it.pred, best, `arm ${a} item ${i}`);
        assert.equal(it.acc, it.pred === items[i].answer);
        assert.equal(it.accNorm, it.predNorm === items[i].answer);
      });
      const share = (f: (it: any) => boolean) => arm.items.filter(f).length / 3;
      close(
        arm.acc,
        share((it) => it.acc),
        `arm ${a} acc`,
      );
      close(
        arm.accNorm,
        share((it) => it.accNorm),
        `arm ${a} acc_norm`,
      );
      close(arm.deltaAcc, arm.acc - t.arms[0].acc, `arm ${a} Δacc`);
      close(arm.deltaAccNorm, arm.accNorm - t.arms[0].accNorm, `arm ${a} Δacc_norm`);
    });

    // The nulls: the single change against its two draws, the prune against its two random sets, each metric's Δ
    // from the arms' own figures.
    r.shift.arms.slice(1).forEach((s: any) => assert.equal(s.stopwordMass.before, r.shift.baselineStopwordMass));
    const metric = (a: number): Record<string, number> => ({
      "prompts: mean NLL": r.prompts.meanNll[a],
      "next-token stopword mass": a === 0 ? r.shift.baselineStopwordMass : r.shift.arms[a].stopwordMass.after,
      "three.jsonl: acc": t.arms[a].acc,
      "three.jsonl: acc_norm": t.arms[a].accNorm,
    });
    assert.deepEqual(
      r.nulls.map((g: any) => [g.real, g.arms]),
      [
        [2, [3, 4]],
        [5, [6, 7]],
      ],
    );
    for (const g of r.nulls) {
      const base = metric(0);
      assert.deepEqual(
        g.stats.map((s: any) => s.metric),
        Object.keys(base),
      );
      for (const { metric: name, stats } of g.stats) {
        const want = expectedStats(
          metric(g.real)[name] - base[name],
          g.arms.map((a: number) => metric(a)[name] - base[name]),
        );
        for (const k of ["real", "nullMean", "nullSd", "z"] as const)
          close(stats[k], want[k], `${g.what}: ${name} ${k}`);
        assert.deepEqual([stats.rank, stats.of], [want.rank, want.of], `${g.what}: ${name} rank`);
      }
    }

    // The prune: every linear weight of the checkpoint, round(0.001 · n) of each zeroed but for the super weights
    // kept. The scan finds [0, 36, 486] and [1, 36, 71] super; [7, 188, 272] is in the last layer, an outlier.
    const found = readReference("bytes-llama-6m").detection.found.map((w: any) => [w.layer, w.row, w.column]);
    assert.deepEqual(found, [
      [0, 36, 486],
      [7, 188, 272],
      [1, 36, 71],
    ]);
    const spared = [
      { layer: 0, row: 36, column: 486 },
      { layer: 1, row: 36, column: 71 },
    ];
    const sizes = linearWeights(dir);
    assert.equal(sizes.size, 8 * 7);
    let zeroed = 0;
    for (const [name, n] of sizes) {
      const kept = spared.filter((w) => name === `model.layers.${w.layer}.mlp.down_proj.weight`).length;
      zeroed += Math.round(0.001 * (n - kept));
    }
    const prune = { fraction: 0.001, selection: "largest |w|", spared, tensors: sizes.size, zeroed };
    assert.deepEqual(r.arms[5].applied.prune, prune);
    assert.deepEqual(r.arms[1].applied.prune, prune);
    for (const a of [6, 7]) {
      const { seed, ...rest } = r.arms[a].applied.prune;
      assert.deepEqual(rest, { ...prune, selection: "random" });
      assert.ok(Number.isInteger(seed), `null ${a}'s seed`);
    }
    assert.notEqual(r.arms[6].applied.prune.seed, r.arms[7].applied.prune.seed);
    assert.equal(r.arms[0].applied?.prune, undefined);
  },
);

test(
  "eval --tasks lambada_openai from the offline cache: last-word accuracy and perplexity per arm, and their nulls",
  { skip: skipWithoutFixtures },
  async () => {
    const hfHome = join(scratch, "hf");
    const snapshot = join(hfHome, "hub", "datasets--EleutherAI--lambada_openai", "snapshots");
    const dir = join(snapshot, "900124bf3b8235c6daf21033af9948b3f07346c4", "data");
    mkdirSync(dir, { recursive: true });
    const texts = ["the dog ran to the park", "she opened the door and saw the cat", "one two three four"];
    writeFileSync(join(dir, "lambada_test.jsonl"), texts.map((text) => JSON.stringify({ text })).join("\n") + "\n");
    const r = await commandJsonIn(
      { HF_HOME: hfHome, HF_HUB_OFFLINE: "1", SUPERWEIGHT_CACHE: join(scratch, "cache") },
      evalCommand,
      fixturePath("bytes-llama-6m"),
      "--tasks",
      "lambada_openai",
      "--zero",
      "0:36:486",
      "--null",
      "2",
      "--seed",
      "0",
    );
    assert.equal(r.tasks.length, 1);
    const t = r.tasks[0];
    assert.deepEqual([t.name, t.kind, t.items], ["lambada_openai", "last_word", 3]);
    assert.match(t.source, /^EleutherAI\/lambada_openai@900124bf/);
    assert.equal(t.arms.length, r.arms.length);
    for (const [a, arm] of t.arms.entries()) {
      assert.ok(Number.isFinite(arm.perplexity) && arm.perplexity > 1, `arm ${a}: ${arm.perplexity}`);
      close(arm.deltaAcc, arm.acc - t.arms[0].acc, `arm ${a} Δacc`);
      close(arm.deltaPerplexity, arm.perplexity - t.arms[0].perplexity, `arm ${a} Δperplexity`);
      assert.equal("accNorm" in arm, false);
    }
    assert.ok(t.arms[1].deltaPerplexity !== 0, "zeroing the super weight changes the last words' perplexity");
    const [g] = r.nulls;
    assert.deepEqual(
      g.stats.map((s: any) => s.metric),
      ["prompts: mean NLL", "next-token stopword mass", "lambada_openai: acc", "lambada_openai: perplexity"],
    );
    const ppl = g.stats[3].stats;
    close(ppl.real, t.arms[g.real].perplexity - t.arms[0].perplexity, "Δ perplexity of the real change");
    const draws = g.arms.map((a: number) => t.arms[a].perplexity - t.arms[0].perplexity);
    close(ppl.nullMean, (draws[0] + draws[1]) / 2, "the draws' mean");
  },
);

test(
  "eval --generate: each shown arm's greedy continuation with its text, null arms left out",
  {
    skip: skipWithoutFixtures,
  },
  async () => {
    const r = await commandJsonIn(
      { HF_HUB_OFFLINE: "1", SUPERWEIGHT_CACHE: join(scratch, "cache") },
      evalCommand,
      fixturePath("bytes-llama-6m"),
      "--prompt",
      "The cat",
      "--generate",
      "5",
      "--zero",
      "0:36:486",
      "--null",
      "2",
    );
    assert.deepEqual(
      r.arms.map((a: any) => a.role),
      ["baseline", "intervention", "null", "null"],
    );
    assert.equal(r.generation.tokens, 5);
    assert.equal(r.generation.prompts.length, 1);
    const [p] = r.generation.prompts;
    assert.equal(p.label, "The cat");
    assert.equal(p.arms.length, 4);
    assert.deepEqual(p.arms.slice(2), [null, null]);
    for (const g of p.arms.slice(0, 2)) {
      assert.equal(g.ids.length, 5);
      assert.equal(g.stoppedAtEos, false);
      // bytes-llama-6m's tokenizer: ids 0–255 are the bytes themselves.
      assert.ok(g.ids.every((id: number) => id < 256));
      assert.equal(g.text, Buffer.from(g.ids).toString("utf8"));
    }
    assert.equal(p.arms[0].klToBaseline, null);
    assert.ok(p.arms[1].klToBaseline > 0);
    // One pass for the prompt's measurements, then at least one per generated token.
    assert.ok(r.passes >= 1 + 5, `${r.passes} passes`);
  },
);
