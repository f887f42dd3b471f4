// `superweight audit` through the CLI, against what shared/fixtures/gguf/*.expected.json states of each
// planted-llama-256 file: the super weight's dequantized value, its block-mates' error (rms, max, became 0,
// distinct values; K-quants: the rest of the 256-super-block too), the super activation and the NLL; the file with
// the per-tensor override says the block is kept; without --reference it runs on the file's own scan and says what
// it cannot know; the exporter's superweight.* keys are read back (audit-cli.test.ts: the table, refusals); published
// coordinates are taken from the model id the metadata names.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";
import { cli } from "./cli-child.js";
import { commandJson } from "./cli-in-process.js";
import { auditCommand } from "../src/cli/audit.js";
import { runCommand } from "../src/cli/run.js";
import { expectedOf, gguf, kept, reference, VERDICTS, withMetadata } from "./audit-files.js";

const PLANTED = skipWithoutFixtures
  ? []
  : readdirSync(fixturePath("gguf"))
      .filter((f) => /^planted.*\.gguf$/.test(f))
      .sort();
const opts = { skip: skipWithoutFixtures };

const dir = mkdtempSync(join(tmpdir(), "sw-audit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Within 1e-6 relative: the expected.json figures have 9 significant digits. */
function near(got: number, want: number, what: string): void {
  assert.ok(Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-12, `${what}: ${got} vs ${want}`);
}

function sameMates(got: any, want: any, what: string): void {
  assert.deepEqual(got.columns, want.columns, `${what} columns`);
  assert.equal(got.n, want.n, `${what} n`);
  assert.equal(got.vsOriginal.zeroed, want.zeroed, `${what} zeroed`);
  assert.equal(got.stored.distinctValues, want.distinctValues, `${what} distinct values`);
  near(got.vsOriginal.rmsOriginal, want.rmsOriginal, `${what} rms original`);
  near(got.vsOriginal.rmsError, want.rmsError, `${what} rms error`);
  near(got.vsOriginal.maxAbsError, want.maxAbsError, `${what} max abs error`);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

test("the seven planted GGUF files are here", opts, () => assert.equal(PLANTED.length, 7));

for (const file of PLANTED) {
  test(`audit ${file} --reference: the super weight and its block-mates as expected.json states`, async () => {
    const e = expectedOf(file);
    const sw = e.superWeights[0];
    const r = await commandJson(auditCommand, gguf(file), "--reference", reference(), "--ids", e.input_ids.join(","));
    assert.equal(r.version, 1);
    assert.equal(r.superWeights.length, 1);
    const w = r.superWeights[0];
    assert.deepEqual([w.layer, w.row, w.column], [sw.layer, sw.row, sw.column]);
    assert.deepEqual(w.sources, ["reference scan"]);
    assert.equal(w.tensor, sw.hfTensor);
    assert.equal(w.ggufTensor, sw.ggufTensor);
    assert.equal(w.ggufElement, sw.ggufElement);
    assert.equal(w.ggmlType, sw.ggmlType);
    assert.equal(w.blockSize, sw.blockSize);
    assert.equal(w.unquantized, sw.blockSize === 1);
    assert.equal(w.stored, Math.fround(sw.dequantized), "the dequantized value, as stored");
    assert.equal(w.original, sw.original);
    assert.equal(w.originalFrom, "reference");
    near(w.error, sw.error, "error");
    sameMates(w.block32, sw.block32, `${file} block32`);
    if (sw.superBlock256) sameMates(w.superBlock256, sw.superBlock256, `${file} superBlock256`);
    else assert.equal(w.superBlock256, null);
    near(w.restOfRowRmsError, sw.restOfRowRmsError, "rest of the row");

    // The super activation: the file's scan (the dequantized model) and the checkpoint's.
    const found = e.detection.found[0];
    const planted = readReference("planted-llama-256").expectedSuperWeights[0];
    assert.equal(w.activation.gguf.found, true);
    assert.equal(w.activation.gguf.class, "super");
    assert.equal(w.activation.reference.class, "super");
    for (const [got, want] of [
      [w.activation.gguf, found],
      [w.activation.reference, planted],
    ])
      for (const k of ["inputActivation", "outputActivation"])
        assert.ok(toleranceUsed([got[k]], [want[k]]) <= 1, `${k} ${got[k]} vs ${want[k]}`);

    // The model-level cost: mean NLL of the file (expected.json) against the checkpoint (reference.json).
    const refNll = mean(readReference("planted-llama-256").nll);
    assert.equal(r.nll.on, "inputs");
    assert.ok(Math.abs(r.nll.gguf.meanNll - mean(e.nll)) <= 1e-4, `${r.nll.gguf.meanNll} vs ${mean(e.nll)}`);
    assert.ok(Math.abs(r.nll.reference.meanNll - refNll) <= 1e-4);
    near(r.nll.change, (r.nll.gguf.meanNll - r.nll.reference.meanNll) / r.nll.reference.meanNll, "change");
    assert.deepEqual(r.unknown, []);
    assert.match(r.verdict, VERDICTS[file.replace(/^planted-llama-256\.|\.gguf$/g, "")]);
  });
}

test("the per-tensor override: the block is kept (F16, error 0)", opts, async () => {
  const file = "planted-llama-256.Q4_K_M-keep-sw-F16.gguf";
  const r = await commandJson(
    auditCommand,
    gguf(file),
    "--reference",
    reference(),
    "--ids",
    expectedOf(file).input_ids.join(","),
  );
  const w = r.superWeights[0];
  assert.equal(w.ggmlType, "F16");
  assert.equal(w.unquantized, true);
  assert.equal(w.error, 0);
  assert.equal(w.block32.vsOriginal.rmsError, 0);
  assert.equal(w.block32.vsOriginal.zeroed, 0);
  assert.equal(w.block32.stored.distinctValues, 30);
  assert.equal(r.fileType, "Q4_K_M");
  assert.deepEqual(r.tensorTypes, { Q4_K: 24, Q6_K: 5, F16: 1, F32: 9 });
});

for (const file of PLANTED) {
  test(`audit ${file} without --reference: the file's own scan, its stored block, and what cannot be known`, async () => {
    const e = expectedOf(file);
    const sw = e.superWeights[0];
    const r = await commandJson(auditCommand, gguf(file), "--ids", e.input_ids.join(","));
    assert.equal(r.reference, null);
    const w = r.superWeights[0];
    assert.deepEqual([w.layer, w.row, w.column, w.sources], [1, 40, 300, ["gguf scan"]]);
    assert.equal(w.stored, Math.fround(sw.dequantized));
    assert.deepEqual([w.original, w.error, w.originalFrom, w.block32.vsOriginal], [null, null, null, null]);
    // The stored spread stands in for the error: distinct values and zeros of the 31 stored block-mates.
    assert.equal(w.block32.stored.distinctValues, sw.block32.distinctValues);
    assert.equal(w.block32.stored.exactZeros, sw.block32.zeroed);
    assert.equal(w.activation.reference, null);
    assert.equal(w.activation.gguf.class, "super");
    assert.ok(Math.abs(r.nll.gguf.meanNll - mean(e.nll)) <= 1e-4);
    assert.deepEqual([r.nll.reference, r.nll.change], [null, null]);
    assert.ok(
      r.unknown.some((u: string) => /original values/.test(u)),
      JSON.stringify(r.unknown),
    );
    assert.match(
      r.verdict,
      w.unquantized ? /kept: its tensor is stored F(16|32) \(not block-quantized\)/ : /unknown without --reference/,
    );
    assert.match(r.verdict, /no reference to compare/);
  });
}

// ---- the exporter's superweight.* keys ----

test("superweight.* keys: the kept super weights and their recorded originals, the recipe", opts, async () => {
  const file = "planted-llama-256.Q4_K_M.gguf";
  const e = expectedOf(file);
  const recipe = "Q4_K_M; keep 1:40:300";
  const path = withMetadata(dir, file, kept(["1:40:300", "0:7:9"], [2.21875, 0.5], recipe));
  const r = await commandJson(auditCommand, path, "--ids", e.input_ids.join(","));
  assert.deepEqual(r.exporter, { superWeights: ["1:40:300", "0:7:9"], recipe });
  const [other, w] = r.superWeights;
  assert.deepEqual(w.sources, ["gguf metadata"], "the file's own list is used, the scan stands by");
  assert.equal(w.original, 2.21875);
  assert.equal(w.originalFrom, "gguf metadata");
  near(w.error, e.superWeights[0].error, "error against the recorded original");
  assert.deepEqual(w.recorded, { original: 2.21875 });
  // A listed weight the scan does not find: audited all the same, its activation not forming.
  assert.deepEqual([other.layer, other.row, other.column, other.activation.gguf.found], [0, 7, 9, false]);
  assert.match(r.verdict, /\[0, 7, 9\].*the super activation does not form \(layer 0's largest down_proj output is/);
  const text = cli("audit", path, "--ids", e.input_ids.join(",")).stdout;
  assert.ok(
    text.includes(`written by superweight's exporter: kept super weights 1:40:300, 0:7:9; recipe "${recipe}"`),
    text,
  );
  // With a reference, the reference's value is the original; the recorded one is kept beside it.
  const withRef = await commandJson(auditCommand, path, "--reference", reference(), "--ids", e.input_ids.join(","));
  assert.deepEqual(withRef.superWeights[1].sources, ["gguf metadata", "reference scan"]);
  assert.equal(withRef.superWeights[1].originalFrom, "reference");
});

// ---- which model: published coordinates ----

test(
  "the model id from the file's metadata takes the published coordinates (outside this model: left out)",
  opts,
  async () => {
    const file = "planted-llama-256.Q4_K_M.gguf";
    const ids = expectedOf(file).input_ids.join(",");
    const url = withMetadata(dir, file, [
      ["general.source.url", { type: "STRING", value: "https://huggingface.co/huggyllama/llama-7b" }],
    ]);
    const r = await commandJson(auditCommand, url, "--ids", ids);
    assert.deepEqual(r.modelId, { id: "huggyllama/llama-7b", from: "general.source.url", published: true });
    assert.deepEqual(r.skipped, [{ layer: 2, row: 3968, column: 7003, why: "outside this model's shapes" }]);
    assert.deepEqual(
      r.superWeights.map((w: any) => w.sources),
      [["gguf scan"]],
    );
    // --model-id wins over the metadata; an id the directory does not know is said so.
    const other = await commandJson(auditCommand, url, "--ids", ids, "--model-id", "someone/unknown");
    assert.deepEqual(other.modelId, { id: "someone/unknown", from: "--model-id", published: false });
    assert.deepEqual(other.skipped, []);
    assert.deepEqual((await commandJson(auditCommand, gguf(file), "--ids", ids)).modelId, {
      id: "fixture",
      from: "general.name",
      published: false,
    });
  },
);

// ---- --text, and what audit refuses ----

test("--text: the file's tokens (its UTF-8 bytes here), the same ids scored on both models", opts, async () => {
  const file = gguf("bytes-llama-6m.Q8_0.gguf");
  const folder = fixturePath("bytes-llama-6m");
  const text = fixturePath("bytes-llama-6m", "heldout.txt");
  const ids = expectedOf("bytes-llama-6m.Q8_0.gguf").input_ids.join(",");
  const r = await commandJson(
    auditCommand,
    file,
    "--reference",
    folder,
    "--ids",
    ids,
    "--text",
    text,
    "--max-tokens",
    "100",
  );
  assert.deepEqual([r.nll.on, r.nll.tokens, r.nll.truncated, r.nll.predictions], ["text", 100, 8176 - 100, 99]);
  const bytes = [...readFileSync(text).subarray(0, 100)].join(",");
  const runOn = async (model: string) => (await commandJson(runCommand, model, "--ids", bytes, "--top", "1")).meanNll;
  near(r.nll.gguf.meanNll, await runOn(file), "GGUF NLL on the text");
  near(r.nll.reference.meanNll, await runOn(folder), "reference NLL on the text");
  // bytes-llama-6m's token-0 super weight, found on both sides.
  const origin = r.superWeights.find((w: any) => w.layer === 0 && w.row === 36 && w.column === 486);
  assert.ok(origin, JSON.stringify(r.superWeights.map((w: any) => [w.layer, w.row, w.column])));
  assert.equal(origin.ggmlType, "F16", "ffn_down falls back to F16 (688 is not a multiple of 32)");
  assert.equal(origin.activation.gguf.class, "super");
});
