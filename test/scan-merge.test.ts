// The two pure steps of a scan's report: the prompts' finds merged by place (a super weight is input-independent, so
// the report says which prompts found it and takes its evidence from the first prompt that calls it super), and the
// published coordinates of a known model checked against the finds and against the model's shapes. The model's
// numbers are the paper's: Llama-7B's super weight is layers[2].mlp.down_proj.weight[3968, 7003] (Yu et al., table 1),
// in a model of 32 layers, hidden 4096, intermediate 11008 (huggyllama/llama-7b's config.json).
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPublished, mergePrompts, type PromptFind } from "../src/superweight/scan.js";

const llama7b = { layers: 32, hidden: 4096, intermediate: 11008 };

test("checkPublished: found or not, its class when found, and whether it fits each of the three sizes", () => {
  assert.equal(checkPublished(llama7b, "someone/else", []), null);
  const found = [
    { layer: 2, row: 3968, column: 7004, class: "outlier" as const },
    { layer: 1, row: 3968, column: 7003, class: "outlier" as const },
    { layer: 2, row: 3967, column: 7003, class: "outlier" as const },
    { layer: 2, row: 3968, column: 7003, class: "super" as const },
  ];
  const check = checkPublished(llama7b, "huggyllama/llama-7b", found)!;
  assert.equal(check.modelId, "huggyllama/llama-7b");
  assert.ok(check.source.length > 0);
  assert.deepEqual(check.coordinates, [{ layer: 2, row: 3968, column: 7003, found: true, class: "super", fits: true }]);
  // Its alias names the same entry; nothing found leaves no class.
  assert.deepEqual(checkPublished(llama7b, "llama-7b", found.slice(0, 3))!.coordinates, [
    { layer: 2, row: 3968, column: 7003, found: false, fits: true },
  ]);
  // Each size one short of holding the coordinate: it cannot exist there.
  for (const shape of [
    { ...llama7b, layers: 2 },
    { ...llama7b, hidden: 3968 },
    { ...llama7b, intermediate: 7003 },
  ])
    assert.equal(checkPublished(shape, "huggyllama/llama-7b", [])!.coordinates[0].fits, false, JSON.stringify(shape));
  assert.equal(
    checkPublished({ layers: 3, hidden: 3969, intermediate: 7004 }, "llama-7b", [])!.coordinates[0].fits,
    true,
  );
});

/** A candidate and one prompt's verdict on it, every field distinct so that a field copied from the wrong place shows. */
function find(
  prompt: number,
  place: { layer: number; row: number; column: number; expert?: number | "shared" },
  cls: "super" | "outlier",
  tokenText?: string,
): PromptFind {
  const n = 100 * prompt + 10 * place.layer;
  const candidate: any = {
    ...place,
    tensor: `model.layers.${place.layer}.mlp.down_proj.weight`,
    index: [place.row, place.column],
    value: 1.5 + n,
    inputActivation: 2 + n,
    outputActivation: 3 + n,
    token: 4 + n,
    inputToken: 5 + n,
    iteration: 1 + prompt,
    inputToMedian: 6 + n,
    outputToMedian: 7 + n,
  };
  const said: any = {
    prompt,
    class: cls,
    evidence: { prompt },
    reasons: [`reason of prompt ${prompt}`],
    nllNote: `note of prompt ${prompt}`,
    iteration: 1 + prompt,
    token: 4 + n,
    inputToken: 5 + n,
    inputActivation: 2 + n,
    outputActivation: 3 + n,
  };
  return { candidate, said, ...(tokenText !== undefined ? { tokenText } : {}) };
}

test("mergePrompts: one weight per place; the first prompt that calls it super gives its class and evidence", () => {
  const a = { layer: 1, row: 3, column: 150 };
  const b = { layer: 3, row: 3, column: 17 };
  const merged = mergePrompts([
    [find(0, a, "outlier", "<0>"), find(0, b, "outlier", "<0b>")],
    [find(1, a, "super", "<1>")],
    [find(2, a, "super", "<2>"), find(2, b, "super", "<2b>")],
  ]);
  assert.equal(merged.length, 2);
  const [wa, wb] = merged;
  assert.deepEqual([wa.layer, wa.row, wa.column, wb.layer, wb.row, wb.column], [1, 3, 150, 3, 3, 17]);
  assert.deepEqual([wa.prompts, wa.classes, wa.allPrompts], [[0, 1, 2], ["outlier", "super", "super"], true]);
  assert.deepEqual([wb.prompts, wb.classes, wb.allPrompts], [[0, 2], ["outlier", "super"], false]);
  assert.deepEqual(
    wa.perPrompt.map((s) => s.prompt),
    [0, 1, 2],
  );
  // a: super first on prompt 1, so prompt 1's verdict; the candidate's own fields stay those first found.
  const one = find(1, a, "super");
  assert.equal(wa.class, "super");
  for (const f of ["evidence", "reasons", "nllNote", "iteration", "token", "inputToken"] as const)
    assert.deepEqual(wa[f], one.said[f], f);
  assert.deepEqual([wa.inputActivation, wa.outputActivation], [one.said.inputActivation, one.said.outputActivation]);
  assert.equal(wa.tokenText, "<1>");
  assert.equal(wa.value, find(0, a, "outlier").candidate.value);
  // b: super first on prompt 2.
  assert.equal(wb.class, "super");
  assert.deepEqual(wb.reasons, ["reason of prompt 2"]);
  assert.equal(wb.tokenText, "<2b>");
});

test("mergePrompts: a weight super from the start keeps that prompt's verdict; an expert is a place of its own", () => {
  const a = { layer: 1, row: 9, column: 40 };
  const merged = mergePrompts([
    [find(0, a, "super", "<0>"), find(0, { ...a, expert: 0 }, "outlier"), find(0, { ...a, expert: 2 }, "super")],
    [find(1, a, "super", "<1>"), find(1, { ...a, expert: 2 }, "outlier")],
  ]);
  assert.deepEqual(
    merged.map((w) => [w.expert, w.class, w.classes, w.allPrompts]),
    [
      [undefined, "super", ["super", "super"], true],
      [0, "outlier", ["outlier"], false],
      [2, "super", ["super", "outlier"], true],
    ],
  );
  assert.equal("expert" in merged[0], false);
  assert.deepEqual([merged[0].nllNote, merged[0].tokenText], ["note of prompt 0", "<0>"]);
  // An upgrade without a tokenizer leaves no token text behind.
  const [w] = mergePrompts([[find(0, a, "outlier")], [find(1, a, "super")]]);
  assert.equal(w.class, "super");
  assert.equal("tokenText" in w, false);
  assert.deepEqual(mergePrompts([[], []]), []);
});

test("mergePrompts: in pass order (iteration, layer, row), places told apart whatever their digits", () => {
  const at = (layer: number, row: number, column: number) => ({ layer, row, column });
  // Found on prompt 0 in this order; iteration is 1 + prompt in these finds, so prompt 1's come later.
  const merged = mergePrompts([
    [find(0, at(3, 5, 1), "super"), find(0, at(1, 9, 1), "super"), find(0, at(1, 2, 34), "super")],
    [find(1, at(0, 1, 1), "super"), find(1, at(1, 23, 4), "outlier")],
  ]);
  assert.deepEqual(
    merged.map((w) => [w.iteration, w.layer, w.row, w.column]),
    [
      [1, 1, 2, 34],
      [1, 1, 9, 1],
      [1, 3, 5, 1],
      [2, 0, 1, 1],
      [2, 1, 23, 4],
    ],
  );
  // An outlier on every prompt keeps the first prompt's verdict and evidence.
  const a = at(2, 4, 6);
  const [w] = mergePrompts([[find(0, a, "outlier")], [find(1, a, "outlier")], [find(2, a, "super")]]);
  assert.deepEqual([w.class, w.reasons, w.classes], ["super", ["reason of prompt 2"], ["outlier", "outlier", "super"]]);
  const [v] = mergePrompts([[find(0, a, "outlier")], [find(1, a, "outlier")]]);
  assert.deepEqual(
    [v.class, v.reasons, v.nllNote, v.iteration],
    ["outlier", ["reason of prompt 0"], "note of prompt 0", 1],
  );
});
