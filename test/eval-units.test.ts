// The eval's small parts against published or hand-worked values: mulberry32 (the first draws of seeds 0, 42 and
// 0xdeadbeef, from an implementation of the published algorithm outside this code), FNV-1a 32 (its published test
// vectors "a" and "foobar"), the random-zeroing null, the chat template's lookup, and item line numbers.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.js";
import type { Model } from "../src/engine/model.js";
import type { TensorRows } from "../src/engine/variants.js";
import { rng, seedOf, zeroRandom } from "../src/eval/random.js";
import { chatTemplateFor } from "../src/eval/tokens.js";
import { itemLines } from "../src/eval/choice.js";

const root = mkdtempSync(join(tmpdir(), "sw-eval-units-"));
after(() => rmSync(root, { recursive: true, force: true }));

test("rng is mulberry32: its first draws for three seeds", () => {
  const draws = (seed: number) => {
    const r = rng(seed);
    return [r(), r(), r()];
  };
  assert.deepEqual(draws(0), [0.26642920868471265, 0.0003297457005828619, 0.2232720274478197]);
  assert.deepEqual(draws(42), [0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
  assert.deepEqual(draws(0xdeadbeef), [0.9413696140982211, 0.26719574979506433, 0.772033357527107]);
});

test("seedOf is FNV-1a over the names joined by NUL, from the seed xor the offset basis", () => {
  assert.equal(seedOf(0, "a"), 0xe40c292c);
  assert.equal(seedOf(0, "foobar"), 0xbf9cf968);
  assert.equal(seedOf(0, "foo", "bar"), seedOf(0, "foo\u0000bar"));
  assert.notEqual(seedOf(0, "foo", "bar"), seedOf(0, "foobar"));
  assert.equal(seedOf(7, "w", 3), 759527690);
  assert.equal(seedOf(0), 0x811c9dc5);
});

function rowsOf(n: number, cols: number): TensorRows {
  const data = new Float32Array(n).fill(1);
  return {
    tensor: "w",
    rows: n / cols,
    cols,
    read: (r0, r1) => data.slice(r0 * cols, r1 * cols),
    *blocks() {
      for (let r = 0; r < n / cols; r++) yield [data.slice(r * cols, (r + 1) * cols), r] as [Float32Array, number];
    },
  };
}

/** The indices a zeroRandom override zeroes in a tensor of n ones, applied in blocks of `block` elements. */
function zeroedBy(fraction: number, spare: number[], seed: number, n = 200, block = 7): number[] {
  const o = zeroRandom("w", fraction, spare, seed);
  o.prepare!(rowsOf(n, 10));
  const w = new Float32Array(n).fill(1);
  for (let first = 0; first < n; first += block) o.apply(w.subarray(first, Math.min(n, first + block)), first);
  return [...w.keys()].filter((i) => w[i] === 0);
}

test("zeroRandom zeroes round(fraction · candidates) distinct elements, never a spared one, the same for a seed", () => {
  const spare = [0, 5, 17, 199];
  const a = zeroedBy(0.25, spare, 1);
  assert.equal(a.length, Math.round(0.25 * (200 - spare.length)));
  assert.ok(a.every((i) => !spare.includes(i)));
  assert.deepEqual(zeroedBy(0.25, spare, 1, 200, 200), a, "the blocks do not change which");
  assert.deepEqual(zeroedBy(0.25, [17, 0, 199, 5, 5], 1), a, "spare in any order, repeated");
  assert.notDeepEqual(zeroedBy(0.25, spare, 2), a, "another seed, another draw");
  // Spared indices are skipped, not zeroed in their place: with all but 3 spared, those 3 are the ones zeroed.
  const all = [...Array(200).keys()];
  assert.deepEqual(zeroedBy(1, all.slice(3), 9), [0, 1, 2]);
  assert.deepEqual(
    zeroedBy(
      1,
      all.filter((i) => i !== 100 && i !== 150),
      9,
    ),
    [100, 150],
  );
  assert.deepEqual(zeroedBy(0, [], 1), []);
  assert.equal(zeroedBy(1, [], 1).length, 200);
  assert.equal(zeroRandom("w", 0.5, [3, 1, 3], 4).key, "zero-random:4:0.5:1,3");
  for (const bad of [-0.5, 2, NaN])
    assert.throws(() => zeroRandom("w", bad, [], 1), { message: `fraction ${bad} is not in [0, 1]` });
});

test("chatTemplateFor reads tokenizer_config.json's chat_template, or says what is missing", () => {
  const folder = (config?: string) => {
    const dir = mkdtempSync(join(root, "m-"));
    if (config !== undefined) writeFileSync(join(dir, "tokenizer_config.json"), config);
    return { path: dir, source: {} } as unknown as Model;
  };
  const m = folder(JSON.stringify({ chat_template: "{{ bos_token }}{{ messages[0].content }}", bos_token: "<s>" }));
  const chat = chatTemplateFor(m);
  assert.equal(chat.template, "{{ bos_token }}{{ messages[0].content }}");
  assert.equal(chat.label, join(m.path, "tokenizer_config.json"));
  assert.equal(chat.options.bosToken, "<s>");
  const refuses = (model: Model, message: string) =>
    assert.throws(
      () => chatTemplateFor(model),
      (e: unknown) =>
        e instanceof UserError && e.message === `${join(model.path, "tokenizer_config.json")}: ${message}`,
    );
  refuses(folder(), "is missing, so --chat has no template to apply");
  refuses(folder("{}"), "has no chat_template, so --chat has no template to apply");
  const broken = folder("{oops");
  assert.throws(
    () => chatTemplateFor(broken),
    (e: unknown) =>
      e instanceof UserError &&
      e.message.startsWith(`${join(broken.path, "tokenizer_config.json")}: is not valid JSON (`),
  );
});

test("itemLines gives the 1-based line of every non-blank line", () => {
  const file = join(root, "tasks.jsonl");
  writeFileSync(file, '{"a":1}\n\n  \n{"b":2}\r\n{"c":3}\n');
  assert.deepEqual(itemLines(file), [1, 4, 5]);
});

test("readPromptFile: one prompt per non-blank line; a file of blank lines is EMPTY_FILE naming it", async () => {
  const { readPromptFile } = await import("../src/eval/prompts.js");
  const { DataError } = await import("../src/data/errors.js");
  const dir = mkdtempSync(join(tmpdir(), "sw-prompts-"));
  try {
    const file = join(dir, "p.txt");
    writeFileSync(file, "first prompt\n\n   \nsecond one\r\n\tthird\n");
    assert.deepEqual(readPromptFile(file), ["first prompt", "second one", "\tthird"]);
    writeFileSync(file, "\n  \n\t\n");
    assert.throws(
      () => readPromptFile(file),
      (e: unknown) => {
        assert.ok(e instanceof DataError);
        assert.equal(e.message, `${file}: holds no prompts (one per line expected)`);
        assert.equal(e.code, "EMPTY_FILE");
        return true;
      },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("ArmRunner: at least two variants per pass, and arm 0 the baseline", async () => {
  const { ArmRunner } = await import("../src/eval/runner.js");
  const model = {} as Model;
  const baseline = { id: 0, label: "baseline", role: "baseline" as const, intervention: { weights: [] }, key: "" };
  for (const max of [1, 0, 2.5])
    assert.throws(() => new ArmRunner(model, [baseline], max), {
      name: "RangeError",
      message: `maxVariants ${max}: at least 2`,
    });
  const other = { ...baseline, role: "intervention" as const, key: "zero:x" };
  assert.throws(() => new ArmRunner(model, [other, baseline]), { message: "arm 0 must be the baseline" });
});
