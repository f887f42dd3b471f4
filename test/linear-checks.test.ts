// The engine's weight products refusing what they cannot do, and an override's look at a tensor that is not a
// matrix: on the tiny Llama of tiny.ts (hidden 8, intermediate 16), whose values are known here.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_BLOCK_ELEMENTS } from "../src/checkpoint/block-buffer.js";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { linear } from "../src/engine/linear.js";
import { Pass } from "../src/engine/pass.js";
import { jsBackend } from "../src/engine/matmul.js";
import type { TensorRows, WeightOverride } from "../src/engine/variants.js";
import { tinyTensors, writeTiny } from "./tiny.js";

const root = mkdtempSync(join(tmpdir(), "sw-linear-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folder = writeTiny(join(root, "tiny"));
const IDS = [1, 2, 3];

test("an override whose blocks cannot fit the engine's block size is refused, naming it and its tensor", async () => {
  const model = Model.open(folder);
  try {
    // 2·MAX elements per block: a whole number of the down projection's 16-element rows, but twice the budget.
    const tooBig: WeightOverride = {
      tensor: "model.layers.0.mlp.down_proj.weight",
      key: "huge",
      alignment: 2 * MAX_BLOCK_ELEMENTS,
      apply() {},
    };
    await assert.rejects(forward(model, IDS, { variants: [{}, { overrides: [tooBig] }], head: false }), {
      name: "RangeError",
      message: `override huge of model.layers.0.mlp.down_proj.weight: blocks of ${2 * MAX_BLOCK_ELEMENTS} elements exceed the engine's block size`,
    });
  } finally {
    model.close();
  }
});

test("a product whose input does not have the weight's columns is refused with both counts", async () => {
  const model = Model.open(folder);
  try {
    const pass = new Pass(model, jsBackend, 1, [{}], [], true, [1]);
    await assert.rejects(linear(pass, new Float32Array(12), [1], "model.layers.0.mlp.down_proj.weight"), {
      message: "linear model.layers.0.mlp.down_proj.weight: input has 12 columns, weight expects 16",
    });
    await assert.rejects(linear(pass, new Float32Array(2 * 15), [2], "model.layers.0.mlp.down_proj.weight"), {
      message: "linear model.layers.0.mlp.down_proj.weight: input has 15 columns, weight expects 16",
    });
  } finally {
    model.close();
  }
});

test("an override's look at a vector: its elements as rows of one column, read and counted", async () => {
  const norm = "model.layers.1.input_layernorm.weight";
  const stored = tinyTensors().find((t) => t.name === norm)!.data;
  const model = Model.open(folder);
  try {
    let seen: { rows: number; cols: number; read: number[]; blocks: [number[], number][] } | undefined;
    const look: WeightOverride = {
      tensor: norm,
      key: "look",
      prepare(t: TensorRows) {
        seen = {
          rows: t.rows,
          cols: t.cols,
          read: [...t.read(2, 5)],
          blocks: [...t.blocks()].map(([b, r0]) => [[...b], r0]),
        };
      },
      apply() {},
    };
    const out = await forward(model, IDS, { variants: [{}, { overrides: [look] }], head: false });
    assert.deepEqual(seen, { rows: 8, cols: 1, read: [...stored.subarray(2, 5)], blocks: [[[...stored], 0]] });
    // The look read the vector's 8 float32 values once more (3, then 8) beside the pass's own reads.
    const plain = await forward(model, IDS, { head: false });
    assert.equal(out.bytesRead - plain.bytesRead, 4 * (3 + 8));
  } finally {
    model.close();
  }
});
