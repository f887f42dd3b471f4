// Model.open on the tiny Llama written here, word for word: a config claiming more layers than the weights hold
// (none, only layer 0, layers 0 to k), a missing tensor, a wrong shape, unexpected tensors (five named, then a
// count); then what an open model says of its tensors.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../src/errors.js";
import { Model } from "../src/engine/model.js";
import { toBf16Bits } from "../src/checkpoint/dtype.js";
import { TINY_CONFIG, tinyTensors, writeTiny } from "./tiny.js";

const root = mkdtempSync(join(tmpdir(), "sw-model-open-"));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const folder = (o: Parameters<typeof writeTiny>[1]) => writeTiny(join(root, `m${counter++}`), o);

function refuses(dir: string, file: string, code: string, message: string): void {
  assert.throws(
    () => Model.open(dir),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e}`);
      assert.equal(e.message, `${file}: ${message}`);
      assert.equal(e.code, code);
      return true;
    },
  );
}

test("a config that claims more layers than the weights hold says what they hold", () => {
  const layers = (n: number) => tinyTensors({ ...TINY_CONFIG, num_hidden_layers: n });
  const claim = (n: number, tensors: ReturnType<typeof tinyTensors>) => {
    const dir = folder({ config: { ...TINY_CONFIG, num_hidden_layers: n }, tensors });
    return [dir, join(dir, "config.json")];
  };
  let [dir, config] = claim(3, layers(1));
  refuses(dir, config, "BAD_CONFIG", "says the model has 3 layers, but the weights hold only layer 0");
  [dir, config] = claim(4, layers(2));
  refuses(dir, config, "BAD_CONFIG", "says the model has 4 layers, but the weights hold layers 0 to 1");
  [dir, config] = claim(1, layers(0));
  refuses(dir, config, "BAD_CONFIG", "says the model has 1 layer, but the weights hold no layer tensors");
});

test("missing, misshapen and unexpected tensors are named with the file that holds them", () => {
  const missing = folder({ tensors: tinyTensors().filter((t) => t.name !== "model.layers.1.mlp.up_proj.weight") });
  refuses(
    missing,
    missing,
    "MISSING_TENSOR",
    'tensor "model.layers.1.mlp.up_proj.weight" is missing (model_type "llama" with this config needs it)',
  );
  const wrong = tinyTensors();
  const up = wrong.find((t) => t.name === "model.layers.0.mlp.up_proj.weight")!;
  up.shape = [8, 16];
  const misshapen = folder({ tensors: wrong });
  refuses(
    misshapen,
    join(misshapen, "model.safetensors"),
    "WRONG_SHAPE",
    'tensor "model.layers.0.mlp.up_proj.weight" has shape [8,16] but the config implies [16,8]',
  );
  const extra = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: `extra.${i}`,
      dtype: "F32" as const,
      shape: [1],
      data: new Float32Array(1),
    }));
  const six = folder({ tensors: [...tinyTensors(), ...extra(6)] });
  refuses(
    six,
    join(six, "model.safetensors"),
    "UNEXPECTED_TENSOR",
    'unexpected tensor(s) for model_type "llama" with this config: extra.0, extra.1, extra.2, extra.3, extra.4 and 1 more',
  );
  const five = folder({ tensors: [...tinyTensors(), ...extra(5)] });
  refuses(
    five,
    join(five, "model.safetensors"),
    "UNEXPECTED_TENSOR",
    'unexpected tensor(s) for model_type "llama" with this config: extra.0, extra.1, extra.2, extra.3, extra.4',
  );
  const two = folder({ tensors: [...tinyTensors(), ...extra(2)] });
  refuses(
    two,
    join(two, "model.safetensors"),
    "UNEXPECTED_TENSOR",
    'unexpected tensor(s) for model_type "llama" with this config: extra.0, extra.1',
  );
});

test("an open model: shapes, dtypes, layouts, single weights and whole small tensors", () => {
  const tensors = tinyTensors(TINY_CONFIG, "BF16");
  const model = Model.open(folder({ tensors }));
  try {
    const down = "model.layers.1.mlp.down_proj.weight";
    assert.deepEqual(model.shape(down), [8, 16]);
    assert.equal(model.dtype(down), "BF16");
    assert.equal(model.layout(down), "nk");
    assert.equal(model.layout("lm_head.weight"), "nk");
    const stored = tensors.find((t) => t.name === down)!.data;
    // What the writer stored: the value rounded to bf16 (dtype.ts, tested on its own in safetensors.test.ts).
    const bf16 = (x: number) => new Float32Array(new Uint32Array([toBf16Bits(x) << 16]).buffer)[0];
    assert.equal(model.weight(down, 3, 5), bf16(stored[3 * 16 + 5]));
    assert.equal(model.weight(down, 7, 15), bf16(stored[7 * 16 + 15]));
    for (const [r, c] of [
      [8, 0],
      [0, 16],
      [-1, 0],
    ])
      assert.throws(() => model.weight(down, r, c), { message: `[${r}, ${c}] is outside ${down} of shape [8,16]` });
    assert.throws(() => model.weight("model.norm.weight", 0, 0), {
      message: "[0, 0] is outside model.norm.weight of shape [8]",
    });
    assert.deepEqual(
      [...model.read("model.norm.weight")],
      [...tensors.find((t) => t.name === "model.norm.weight")!.data].map(bf16),
    );
    assert.equal(model.has("model.norm.weight"), true);
    assert.equal(model.has("nope"), false);
    assert.throws(() => model.shape("nope"), {
      message: `${model.path}: tensor "nope" is missing from the checkpoint`,
    });
  } finally {
    model.close();
  }
});

test("close gives back the checkpoint's file descriptors", async () => {
  const { readdirSync } = await import("node:fs");
  const open = () => readdirSync("/proc/self/fd").length;
  const before = open();
  const model = Model.open(folder({ shards: 3 }));
  model.read("model.norm.weight");
  model.read("lm_head.weight");
  model.read("model.embed_tokens.weight");
  assert.ok(open() > before);
  model.close();
  assert.equal(open(), before);
});
