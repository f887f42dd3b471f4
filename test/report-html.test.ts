// `superweight report`'s data and page: every figure's numbers against the planted fixtures' references (spikes per
// layer, the super activation with and without the super weights and as the scan's later pass saw it, the
// next-token shift from the reference logits, the sweep's ends), the quantization comparison reader with one test
// per fault code, and the page itself: self-contained, one figure per measurement, written atomically.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { buildReport, reportJson, REPORT_VERSION, type ReportData } from "../src/report/html-data.js";
import { renderReportHtml, writeReportHtml } from "../src/report/html.js";
import { readQuantComparisons } from "../src/report/figures-quantize.js";
import { DataError } from "../src/data/errors.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";
import { writeTiny } from "./tiny.js";

const scratch = mkdtempSync(join(tmpdir(), "sw-report-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const file = (content: string) => {
  const path = join(scratch, `f${n++}.json`);
  writeFileSync(path, content);
  return path;
};

const PLANTED = ["planted-llama-bf16", "planted-llama-f16", "newer/planted-mixtral-bf16"];
const TOP = 8;
const SWEEP = [0, 0.5, 1, 2];

async function report(name: string, extra: Partial<Parameters<typeof buildReport>[1]> = {}): Promise<ReportData> {
  const model = Model.open(fixturePath(name));
  try {
    const ref = readReference(name);
    return await buildReport(model, {
      label: name,
      prompts: [{ label: "reference ids", ids: ref.input_ids }],
      threshold: ref.threshold,
      maxIterations: 10,
      top: TOP,
      sweepScale: SWEEP,
      ...extra,
    });
  } finally {
    model.close();
  }
}

const softmax = (logits: number[]) => {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

for (const name of PLANTED) {
  test(`${name}: every figure's numbers are the reference's`, { skip: skipWithoutFixtures }, async () => {
    const ref = readReference(name);
    const { abs, rel } = ref.tolerance;
    const r = await report(name);
    const L = ref.layers.length;

    // Figure 3: the full model's spikes per layer.
    // A sparse layer: the largest over its experts' down projections (before the routing weight).
    const largest = (l: any, side: "downProjInput" | "downProjOutput") =>
      l[side] ?? l.experts.map((e: any) => e[side]).reduce((a: any, b: any) => (b.max > a.max ? b : a));
    const spikes = r.figures.spikes.layers;
    assert.equal(spikes.length, L);
    const inputs = ref.layers.map((l: any) => largest(l, "downProjInput").max);
    const outputs = ref.layers.map((l: any) => largest(l, "downProjOutput"));
    assert.ok(
      toleranceUsed(
        spikes.map((s) => s.input),
        inputs,
        abs,
        rel,
      ) <= 1,
    );
    assert.ok(
      toleranceUsed(
        spikes.map((s) => s.output),
        outputs.map((o: any) => o.max),
        abs,
        rel,
      ) <= 1,
    );
    assert.deepEqual(
      spikes.map((s) => [s.outputToken, s.outputChannel]),
      outputs.map((o: any) => [o.token, o.channel]),
    );

    // Figures 2 and 4: each super activation, in the full model, with every super weight zeroed, and (found in a
    // later pass) as that pass saw it.
    const supers = ref.expectedSuperWeights.filter((w: any) => w.class === "super");
    const at = (w: any) => [w.layer, w.expert ?? null, w.row, w.column];
    assert.deepEqual(r.scan.superWeights.filter((w) => w.class === "super").map(at), supers.map(at));
    assert.equal(r.figures.superActivation.length, ref.superActivations.length);
    for (const sa of ref.superActivations) {
      const t = r.figures.superActivation.find((x) => x.channel === sa.channel && x.token === sa.token);
      assert.ok(t, `trace of channel ${sa.channel}`);
      assert.ok(toleranceUsed(t.full as number[], sa.residualByLayer, abs, rel) <= 1, "full model");
      assert.ok(toleranceUsed(t.zeroed as number[], sa.residualByLayerWithSuperWeightsZeroed, abs, rel) <= 1, "zeroed");
      if (sa.iteration > 1)
        assert.ok(toleranceUsed(t.atDetection!.byLayer as number[], sa.residualByLayerAtDetection, abs, rel) <= 1);
      else assert.equal(t.atDetection, null);
    }

    // Figure 5: the average next-token distribution after the last position, before and after, from the
    // reference logits; the top rises and falls by the reference's own changes.
    const T = ref.input_ids.length;
    const before = softmax(ref.logits[T - 1]),
      zeroed = softmax(ref.withSuperWeightsZeroed.logits[T - 1]);
    const ids = before.map((_, i) => i);
    const change = (i: number) => zeroed[i] - before[i];
    const rises = ids
      .filter((i) => change(i) > 0)
      .sort((a, b) => change(b) - change(a))
      .slice(0, TOP);
    const falls = ids
      .filter((i) => change(i) < 0)
      .sort((a, b) => change(a) - change(b))
      .slice(0, TOP);
    const shift = r.figures.shift!;
    assert.deepEqual(
      shift.tokens.filter((t) => t.direction === "rise").map((t) => t.id),
      rises,
    );
    assert.deepEqual(
      shift.tokens.filter((t) => t.direction === "fall").map((t) => t.id),
      falls,
    );
    for (const t of shift.tokens) {
      assert.ok(Math.abs(t.before - before[t.id]) <= 1e-7 + 5e-3 * before[t.id], `p(${t.id}) before`);
      assert.ok(Math.abs(t.after - zeroed[t.id]) <= 1e-7 + 5e-3 * zeroed[t.id], `p(${t.id}) after`);
      assert.equal(t.stopword, null, "no tokenizer: stopwords unknown");
      assert.equal(t.label, `#${t.id}`);
    }
    assert.equal(shift.stopwordMass, null);

    // Figure 6: ×0 is the model with the super weights zeroed, ×1 the original.
    const sweep = r.figures.sweep!;
    assert.deepEqual(
      sweep.points.map((p) => p.factor),
      SWEEP,
    );
    assert.equal(sweep.scored, "prompts");
    assert.equal(sweep.tokens, T - 1);
    const scaled = (f: number) => sweep.points.find((p) => p.factor === f)!;
    assert.ok(Math.abs(scaled(0).meanNll - mean(ref.withSuperWeightsZeroed.nll)) <= 1e-4);
    assert.ok(Math.abs(scaled(1).meanNll - mean(ref.nll)) <= 1e-4);
    assert.ok(Math.abs(scaled(1).perplexity - ref.perplexity) <= 1e-4 * ref.perplexity);

    const back = JSON.parse(reportJson(r));
    assert.equal(back.version, REPORT_VERSION);
    assert.equal(back.kind, "superweight-report");
    assert.deepEqual(back.figures, JSON.parse(JSON.stringify(r.figures)));
  });
}

test(
  "bytes-llama-6m: tokens by their text, stopwords marked, their mass before and after, and --text's perplexity",
  { skip: skipWithoutFixtures },
  async () => {
    const name = "bytes-llama-6m";
    const { loadTokenizer } = await import("../src/tokenizer/tokenizer.js");
    const { readTextCorpus } = await import("../src/data/index.js");
    const tokenizer = loadTokenizer(fixturePath(name))!;
    const corpus = readTextCorpus(fixturePath(name, "heldout.txt"));
    const r = await report(name, { tokenizer, perplexity: { corpus, ctx: 128, maxTokens: 256 }, sweepScale: [0, 1] });
    const shift = r.figures.shift!;
    for (const t of shift.tokens) {
      // Byte-level: token id b < 256 is the byte b.
      assert.equal(t.text, t.id < 256 ? tokenizer.decode([t.id]) : t.text);
      assert.equal(typeof t.stopword, "boolean");
    }
    // " a" never occurs as one byte token, but "a" does: the English stopword list has it; "]" is no stopword.
    const { stopwordMask } = await import("../src/eval/shift.js");
    const mask = stopwordMask(tokenizer, 258);
    assert.equal(mask["a".charCodeAt(0)], 1);
    assert.equal(mask["]".charCodeAt(0)], 0);
    for (const t of shift.tokens) assert.equal(t.stopword, mask[t.id] === 1);
    const mass = shift.stopwordMass!;
    assert.ok(mass.before > 0 && mass.before < 1 && mass.after > 0 && mass.after < 1);
    assert.equal(r.eval.perplexity!.tokens, 256);
    // The sweep scores the text: ×1 is the baseline's perplexity of it.
    assert.equal(r.figures.sweep!.scored, "heldout.txt");
    assert.equal(r.figures.sweep!.points[1].perplexity, r.eval.perplexity!.arms[0].perplexity);
  },
);

test("a model without super weights: the scan's table and spikes, the rest said to be missing", async () => {
  const folder = writeTiny(join(scratch, "tiny"));
  const model = Model.open(folder);
  try {
    const r = await buildReport(model, {
      label: "tiny",
      prompts: [{ label: "ids", ids: [1, 2, 3, 4] }],
      threshold: 50,
      maxIterations: 3,
      sweepScale: [0, 1],
    });
    assert.equal(r.scan.superWeights.length, 0);
    assert.equal(r.zeroedArm, null);
    assert.deepEqual([r.figures.superActivation, r.figures.shift, r.figures.sweep], [[], null, null]);
    assert.equal(r.figures.spikes.layers.length, model.spec.layers);
    assert.ok(r.notes.some((m) => m.includes("no weight as super")));
    assert.ok(r.notes.some((m) => m.includes("--sweep-scale was skipped")));
    const html = await renderReportHtml(r);
    assert.ok(html.includes('id="figure-3"'));
    for (const id of ["figure-4", "figure-5", "figure-6", "figure-7"]) assert.ok(!html.includes(`id="${id}"`), id);
    assert.ok(html.includes("No super weight found at threshold 50"));
  } finally {
    model.close();
  }
});

const blockwise = (configurations: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ version: 1, kind: "rtn-compare", baseline: { perplexity: 5.5 }, configurations, ...extra });
const rtn = (block: number | null, perplexity: number) => ({
  method: "rtn",
  bits: 4,
  block,
  perplexity,
  bytes: 1000,
  bitsPerWeight: 4.5,
});

test("quantization files: the gguf compare output and the block-wise form, merged in order", () => {
  const gguf = file(
    JSON.stringify({
      version: 1,
      kind: "gguf-quantize",
      found: { source: "scan", weights: [], outliers: [] },
      comparison: {
        model: "m",
        ftype: "Q4_K_M",
        tokens: 11,
        window: 11,
        checkpoint: { meanNll: 0.03, perplexity: 1.0297, predictions: 10 },
        recipes: [
          {
            label: "stock",
            recipe: "Q4_K_M; stock",
            fileBytes: 1518560,
            tensorBytes: 1,
            bitsPerWeight: 4.85,
            typeCounts: {},
            superWeights: [],
            meanNll: 0.031,
            perplexity: 1.0312,
            predictions: 10,
          },
          {
            label: "keep-super Q8_0",
            recipe: "…",
            fileBytes: 1584192,
            tensorBytes: 1,
            bitsPerWeight: 5.06,
            typeCounts: {},
            superWeights: [],
            meanNll: 0.03,
            perplexity: 1.0305,
            predictions: 10,
          },
        ],
      },
    }),
  );
  const blocks = file(
    blockwise([
      rtn(64, 5.9),
      { ...rtn(128, 6.1), label: "mine", kl: 0.02, meanNll: 1.8 },
      { recipe: "nf4", bits: 4, block: null, perplexity: 6.5, bytes: 900, bitsPerWeight: 4 },
    ]),
  );
  // The rtn / nf4 comparison (src/compress/compare.ts's QuantizeComparison inside a "quantize" report).
  const config = (weights: unknown, perplexity: number, activations: unknown = null) => ({
    id: 0,
    model: 0,
    weights,
    activations,
    tokensScored: 10,
    meanNll: Math.log(perplexity),
    perplexity,
    deltaMeanNll: 0.1,
    kl: { mean: 0.01, max: 0.1 },
    size: { quantizedBytes: 5000, totalBytes: 9000, bitsPerWeight: 4.25 },
    superWeights: [],
  });
  const rtnWeights = (block: unknown, method = "naive") => ({
    method,
    scheme: "rtn",
    bits: 4,
    block,
    clip: "zscore:9",
    heldOut: 0,
  });
  const compress = file(
    JSON.stringify({
      kind: "quantize",
      version: 1,
      model: "m",
      format: "rtn",
      superWeights: { source: "scan", held: [] },
      written: null,
      comparison: {
        kind: "quantize-comparison",
        version: 1,
        baseline: {
          tokensScored: 10,
          meanNll: 1.6,
          perplexity: 4.95,
          size: { quantizedBytes: 1, totalBytes: 1, bitsPerWeight: 16 },
        },
        configs: [
          config(null, 5.0, { bits: 8, keepSuperActivation: false }),
          config(rtnWeights("tensor"), 7.5),
          config(rtnWeights(128, "clip+hold-out"), 5.1),
          config(rtnWeights(128), 5.3, { bits: 8, keepSuperActivation: true }),
        ],
      },
    }),
  );
  const q = readQuantComparisons([gguf, blocks, compress]);
  assert.deepEqual(q.files, [gguf, blocks, compress]);
  assert.deepEqual(q.baselines, [
    { file: gguf, perplexity: 1.0297 },
    { file: blocks, perplexity: 5.5 },
    { file: compress, perplexity: 4.95 },
  ]);
  assert.deepEqual(
    q.configurations.map((c) => [c.label, c.series, c.bits, c.block, c.perplexity, c.kl, c.bytes, c.bitsPerWeight]),
    [
      ["Q4_K_M stock", "stock", null, null, 1.0312, null, 1518560, 4.85],
      ["Q4_K_M keep-super Q8_0", "keep-super Q8_0", null, null, 1.0305, null, 1584192, 5.06],
      ["rtn 4-bit, block 64", "rtn 4-bit", 4, 64, 5.9, null, 1000, 4.5],
      ["mine", "rtn 4-bit", 4, 128, 6.1, 0.02, 1000, 4.5],
      ["nf4 4-bit", "nf4 4-bit", 4, null, 6.5, null, 900, 4],
      ["rtn4 naive, block tensor", "rtn4 naive", 4, "tensor", 7.5, 0.01, 5000, 4.25],
      ["rtn4 clip+hold-out, block 128", "rtn4 clip+hold-out", 4, 128, 5.1, 0.01, 5000, 4.25],
      ["rtn4 naive · A8, block 128", "rtn4 naive · A8", 4, 128, 5.3, 0.01, 5000, 4.25],
    ],
  );
});

test("quantization files: one clear error per fault, naming the file and the field", () => {
  const cases: [string, string, RegExp][] = [
    ["{", "COMPARE_NOT_JSON", /is not JSON/],
    ["[1]", "COMPARE_NOT_OBJECT", /not a JSON object/],
    [JSON.stringify({ kind: "gguf-quantize", found: {} }), "COMPARE_NO_COMPARISON", /run `superweight quantize/],
    [JSON.stringify({ version: 1, results: [] }), "COMPARE_UNKNOWN_KIND", /configurations/],
    [blockwise([rtn(64, 6)], { version: 2 }), "COMPARE_VERSION", /version 2/],
    [blockwise([]), "COMPARE_EMPTY", /configurations is empty/],
    [
      blockwise([{ ...rtn(64, 6), perplexity: undefined }]),
      "COMPARE_FIELD_MISSING",
      /configurations\[0\]\.perplexity is missing/,
    ],
    [blockwise([{ ...rtn(64, 6), method: undefined }]), "COMPARE_FIELD_MISSING", /configurations\[0\] has no method/],
    [blockwise([rtn(64, -1)]), "COMPARE_FIELD_TYPE", /configurations\[0\]\.perplexity is -1: expected a positive/],
    [blockwise([rtn(1.5, 6)]), "COMPARE_FIELD_TYPE", /configurations\[0\]\.block is 1\.5/],
    [blockwise([7]), "COMPARE_FIELD_TYPE", /configurations\[0\] is 7: expected an object/],
    [
      JSON.stringify({ kind: "quantize", comparison: { kind: "quantize-comparison", version: 3 } }),
      "COMPARE_VERSION",
      /comparison\.version 3/,
    ],
    [
      JSON.stringify({
        kind: "quantize-comparison",
        version: 1,
        baseline: { perplexity: 2 },
        configs: [{ weights: null }],
      }),
      "COMPARE_EMPTY",
      /configs has no configuration with quantized weights/,
    ],
    [
      JSON.stringify({
        kind: "quantize-comparison",
        version: 1,
        baseline: { perplexity: 2 },
        configs: [{ weights: { scheme: "rtn", method: "naive", bits: 4, block: "row" } }],
      }),
      "COMPARE_FIELD_TYPE",
      /configs\[0\]\.weights\.block is "row"/,
    ],
    [
      JSON.stringify({
        kind: "gguf-quantize",
        comparison: {
          ftype: "Q4_0",
          checkpoint: { perplexity: 1 },
          recipes: [{ label: "stock", perplexity: 1, meanNll: 0, bitsPerWeight: 4.5 }],
        },
      }),
      "COMPARE_FIELD_MISSING",
      /comparison\.recipes\[0\]\.fileBytes is missing/,
    ],
  ];
  for (const [content, code, message] of cases) {
    const path = file(content);
    assert.throws(
      () => readQuantComparisons([path]),
      (e: unknown) => {
        assert.ok(e instanceof DataError, String(e));
        assert.equal(e.code, code, `${content}: ${e.message}`);
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, message);
        return true;
      },
    );
  }
  assert.throws(
    () => readQuantComparisons([join(scratch, "absent.json")]),
    (e: unknown) => e instanceof DataError && e.code === "FILE_UNREADABLE",
  );
});

test(
  "the page: self-contained, one figure per measurement, the data embedded, written atomically",
  { skip: skipWithoutFixtures },
  async () => {
    const q = readQuantComparisons([file(blockwise([rtn(32, 5.7), rtn(64, 5.9), rtn(128, 6.1)]))]);
    const r = await report("planted-llama-bf16", { quantization: q });
    const html = await renderReportHtml(r);
    for (const id of ["figure-3", "figure-4", "figure-5", "figure-6", "figure-7"])
      assert.ok(html.includes(`<figure id="${id}">`), id);
    // Nothing is fetched: no script, stylesheet, image or font from a URL (the SVG namespace is a name, not a fetch).
    assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|<img|@import|url\(|src="http/i);
    assert.deepEqual(
      html.match(/https?:\/\/[^"\s<]+/g)!.filter((u) => !/^http:\/\/www\.w3\.org\//.test(u)),
      [],
    );
    const data = html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/s)![1];
    assert.deepEqual(JSON.parse(data).figures, JSON.parse(reportJson(r)).figures);
    // Themes and print.
    assert.match(html, /@media \(prefers-color-scheme:dark\)/);
    assert.match(html, /@media print/);

    const out = join(scratch, "page", "report.html");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(join(scratch, "page"));
    writeFileSync(out, "old");
    writeReportHtml(out, html);
    assert.equal(readFileSync(out, "utf8"), html);
    assert.deepEqual(readdirSync(join(scratch, "page")), ["report.html"], "no temporary file left");
    assert.throws(() => writeReportHtml(join(scratch, "missing", "r.html"), html), /ENOENT/);
    assert.ok(!existsSync(join(scratch, "missing")));
  },
);
