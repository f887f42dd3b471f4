// A GGUF file opened as a Model, in this process: the forward pass on its dequantized weights against the numbers
// expected.json states for it (a float32 pass on those weights), for a quantized file and an F32 one of another
// architecture, and the model's description taken from the file's metadata.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

for (const file of ["planted-llama-256.Q8_0.gguf", "qwen2-bf16.F32.gguf"])
  test(
    `${file}: the pass on its weights gives the NLL and logits of its expected.json`,
    {
      skip: skipWithoutFixtures,
    },
    async () => {
      const path = join(fixturePath("gguf"), file);
      const expected = JSON.parse(readFileSync(path.replace(/\.gguf$/, ".expected.json"), "utf8"));
      const meta = expected.gguf.metadata;
      const arch = meta["general.architecture"].value;
      const model = Model.open(path);
      try {
        assert.equal(model.path, path);
        assert.equal(model.spec.layers, Number(meta[`${arch}.block_count`].value));
        assert.equal(model.spec.hidden, Number(meta[`${arch}.embedding_length`].value));
        const ids: number[] = expected.input_ids;
        const out = await forward(model, ids, { head: { logits: true, targets: [...ids.slice(1), -1] } });
        const { abs, rel } = expected.tolerance;
        const V = model.spec.vocab;
        expected.nll.forEach((want: number, t: number) => {
          const got = out.nll![0][t];
          assert.ok(Math.abs(got - want) <= abs + rel * Math.abs(want), `nll[${t}]: ${got} vs ${want}`);
        });
        expected.logits.forEach((row: number[], t: number) =>
          row.forEach((want, v) => {
            const got = out.logits![t * V + v];
            assert.ok(Math.abs(got - want) <= abs + rel * Math.abs(want), `logits[${t}, ${v}]: ${got} vs ${want}`);
          }),
        );
      } finally {
        model.close();
      }
    },
  );
