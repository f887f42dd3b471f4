// The real bytes-llama-6m's held-out perplexity in the reference's windowing (16 windows of 512 tokens, three
// arms), and with its candidates zeroed, against heldout-reference.json. On its own because it is the slowest
// eval test (about 25 s): mutation runs leave it out.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Model } from "../src/engine/model.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { readTextCorpus } from "../src/data/user-files.js";
import { interventionKey, locateWeight, setTo, type Intervention } from "../src/eval/interventions.js";
import { ArmRunner } from "../src/eval/runner.js";
import { corpusStream, windowedPerplexity } from "../src/eval/perplexity.js";
import type { Arm } from "../src/eval/arms.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

test(
  "bytes-llama-6m: held-out perplexity in the reference's windowing, and with its candidates zeroed",
  { skip: skipWithoutFixtures },
  async () => {
    const dir = fixturePath("bytes-llama-6m");
    const ref = JSON.parse(readFileSync(`${dir}/heldout-reference.json`, "utf8"));
    assert.match(
      ref.windowing,
      /non-overlapping windows of 511 bytes .* each fed as \[256\] \+ window; every window byte is scored/,
    );
    const model = Model.open(dir);
    const tokenizer = loadTokenizer(dir)!;
    const stream = corpusStream(model, readTextCorpus(`${dir}/heldout.txt`), tokenizer, true);
    assert.equal(stream.length, ref.bytes);
    const arm = (id: number, zeroed: number[][]): Arm => {
      const intervention: Intervention = {
        weights: zeroed.map(([layer, row, column]) => setTo(locateWeight(model, { layer, row, column }), 0)),
      };
      return {
        id,
        label: String(id),
        role: id ? "intervention" : "baseline",
        intervention,
        key: interventionKey(intervention),
      };
    };
    const runner = new ArmRunner(model, [
      arm(0, []),
      arm(1, ref.firstCandidateZeroed.zeroed),
      arm(2, ref.allCandidatesZeroed.zeroed),
    ]);
    const run = await windowedPerplexity(model, stream, runner, { ctx: 512, stride: 511, bos: 256 });
    assert.equal(run.windows.length, 16);
    for (const [i, key] of ["base", "firstCandidateZeroed", "allCandidatesZeroed"].entries()) {
      const s = run.scores[i];
      assert.equal(s.tokensScored, ref[key].tokensScored, key);
      assert.ok(Math.abs(s.meanNll - ref[key].meanNll) <= 1e-4, `${key}: mean NLL ${s.meanNll} vs ${ref[key].meanNll}`);
      assert.ok(Math.abs(s.perplexity / ref[key].perplexity - 1) <= 1e-4, `${key}: perplexity`);
    }
    model.close();
  },
);
