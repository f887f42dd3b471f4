// In-memory weight quantization (src/compress/weights.ts) against the packed checkpoint on disk: for every path an
// override can take (blocks measured in apply from aligned rows, blocks measured once before the pass, rows as
// blocks) the values it leaves are the packed reader's, element for element, and a forward pass with every scheme
// as a variant of one pass gives the logits of each packed checkpoint; measuring shares one read per tensor.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import type { TensorRows } from "../src/engine/variants.js";
import { writePackedCheckpoint } from "../src/quant/packed-writer.js";
import type { Scheme } from "../src/quant/scheme.js";
import { heldWeights, includeOf, keepRequests, keptIndices, selectTensors } from "../src/compress/tensors.js";
import {
  alignedRows,
  MeasurePool,
  modelRows,
  quantizeOverride,
  quantizeWeights,
  transformedValue,
} from "../src/compress/weights.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";

const root = mkdtempSync(join(tmpdir(), "sw-compress-weights-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Each path: [scheme, the path its down_proj [96, 248] override takes]. */
const SCHEMES: [Scheme, "aligned" | "measured" | "rows"][] = [
  [{ kind: "rtn", bits: 8, block: "tensor", clip: { method: "none" } }, "measured"],
  [{ kind: "rtn", bits: 4, block: "channel", clip: { method: "zscore", k: 2 } }, "rows"],
  [{ kind: "rtn", bits: 3, block: 128, clip: { method: "block-pct", fraction: 0.02 } }, "aligned"],
  [{ kind: "rtn", bits: 2, block: 100, clip: { method: "none" } }, "measured"],
  [{ kind: "rtn", bits: 4, block: 1 << 20, clip: { method: "zscore", k: 3 } }, "measured"],
  [{ kind: "nf4", range: "absmax", block: 64, clip: { method: "tensor-pct", fraction: 0.001 } }, "measured"],
  [{ kind: "nf4", range: "minmax", block: 31, clip: { method: "none" } }, "rows"],
];

interface Planted {
  input_ids: number[];
  expectedSuperWeights: { layer: number; row: number; column: number; class: string }[];
}

function pathOf(o: ReturnType<typeof quantizeOverride>): string {
  return o.alignment ? "aligned" : o.prepare ? "measured" : "rows";
}

for (const fixture of ["planted-llama-bf16", "planted-llama-f16"])
  test(
    `${fixture}: every override path leaves the packed reader's values; one pass of all schemes gives each ` +
      "packed checkpoint's logits",
    { skip: skipWithoutFixtures },
    async () => {
      const source = fixturePath(fixture);
      const ref = readReference<Planted>(fixture);
      const model = Model.open(source);
      const tensors = selectTensors(model);
      const held = heldWeights(
        model,
        ref.expectedSuperWeights.filter((w) => w.class === "super"),
      );
      const down = "model.layers.1.mlp.down_proj.weight";
      const variants = [];
      const packedModels: Model[] = [];
      try {
        for (const [i, [scheme, path]] of SCHEMES.entries()) {
          const out = join(root, `${fixture}-${i}`);
          writePackedCheckpoint(source, out, {
            scheme,
            keep: keepRequests(held),
            include: includeOf(tensors),
            chunkElements: 1000,
          });
          const packed = Model.open(out);
          packedModels.push(packed);
          const overrides = quantizeWeights(
            model,
            tensors.map((t) => t.name),
            scheme,
            (t) => keptIndices(held, t),
          );
          const label = `${fixture} ${JSON.stringify(scheme)}`;
          if (fixture === "planted-llama-bf16")
            assert.equal(pathOf(overrides.find((o) => o.tensor === down)!), path, `${label}: path`);
          for (const o of overrides) {
            const [rows, cols] = model.shape(o.tensor);
            if (o.prepare) o.prepare(modelRows(model, o.tensor));
            const expected = packed.read(o.tensor);
            // the smallest row groups the alignment allows, and the whole tensor at once
            const step = o.alignment ? o.alignment / cols : 1;
            for (const group of [step, rows]) {
              const got = new Float32Array(rows * cols);
              for (let r0 = 0; r0 < rows; r0 += group) {
                const w = model.readRows(o.tensor, r0, Math.min(rows, r0 + group)).slice();
                o.apply(w, r0 * cols);
                got.set(w, r0 * cols);
              }
              let differ = 0;
              for (let k = 0; k < got.length; k++) if (!Object.is(got[k], expected[k])) differ++;
              assert.equal(differ, 0, `${label} ${o.tensor}, groups of ${group} rows: ${differ} elements differ`);
            }
          }
          // the super weights come back exactly from both
          for (const h of held) {
            const o = overrides.find((x) => x.tensor === h.tensor)!;
            assert.ok(Object.is(transformedValue(model, o, h.index), h.value), `${label}: ${h.tensor}[${h.index}]`);
            assert.ok(Object.is(packed.weight(h.tensor, h.row, h.column), h.value));
          }
          variants.push({
            overrides: quantizeWeights(
              model,
              tensors.map((t) => t.name),
              scheme,
              (t) => keptIndices(held, t),
            ),
          });
        }
        // every scheme a variant of the same pass (the alignments of several overrides of a tensor combine)
        const ids = ref.input_ids;
        const inMemory = await forward(model, ids, { variants });
        const n = inMemory.logits!.length / variants.length;
        for (const [v, packed] of packedModels.entries()) {
          const disk = (await forward(packed, ids)).logits!;
          let worst = 0;
          for (let k = 0; k < n; k++)
            worst = Math.max(
              worst,
              Math.abs(inMemory.logits![v * n + k] - disk[k]) / Math.max(1e-6, Math.abs(disk[k])),
            );
          assert.ok(worst <= 1e-5, `${fixture} ${JSON.stringify(SCHEMES[v][0])}: relative logit difference ${worst}`);
        }
      } finally {
        model.close();
        for (const m of packedModels) m.close();
      }
    },
  );

test("alignedRows: a power of two of rows holding whole blocks, within the engine's block; else none", () => {
  const rtn = (block: Scheme["block"], clip: Scheme["clip"] = { method: "none" }): Scheme => ({
    kind: "rtn",
    bits: 4,
    block,
    clip,
  });
  assert.equal(alignedRows(rtn(128), [96, 248]), 16); // 128 / gcd(128, 248) = 16 rows of 248 = 31 blocks
  assert.equal(alignedRows(rtn(128), [688, 256]), 1); // half a row
  assert.equal(alignedRows(rtn(4096), [256, 688]), 256);
  assert.equal(alignedRows(rtn(100), [96, 248]), undefined); // 25 rows: not a power of two
  assert.equal(alignedRows(rtn("channel"), [96, 248]), 1);
  assert.equal(alignedRows(rtn("tensor"), [96, 248]), undefined); // one block: measured once
  assert.equal(alignedRows(rtn(1 << 20), [96, 248]), undefined); // larger than the tensor: the tensor
  assert.equal(alignedRows(rtn(128, { method: "tensor-pct", fraction: 0.01 }), [96, 248]), undefined);
  // 1M blocks of an [11008, 4096] tensor: 256 rows hold one
  assert.equal(alignedRows(rtn(1 << 20), [11008, 4096]), 256);
  assert.equal(alignedRows(rtn(1 << 20), [4096, 11008]), undefined); // 4096 rows of 11008: too many
});

test("an override refuses rows that split one of its blocks", { skip: skipWithoutFixtures }, () => {
  const model = Model.open(fixturePath("planted-llama-bf16"));
  try {
    const o = quantizeOverride(
      model,
      "model.layers.1.mlp.down_proj.weight",
      { kind: "rtn", bits: 4, block: 128, clip: { method: "none" } },
      [],
    );
    assert.equal(o.alignment, 16 * 248);
    assert.throws(() => o.apply(new Float32Array(248), 0), /split a block of 128/);
    assert.throws(() => o.apply(new Float32Array(16 * 248), 248), /split a block of 128/);
  } finally {
    model.close();
  }
});

test(
  "a MeasurePool reads a tensor once for every override of it that measures before the pass",
  { skip: skipWithoutFixtures },
  () => {
    const model = Model.open(fixturePath("planted-llama-bf16"));
    try {
      const tensor = "model.layers.1.mlp.down_proj.weight";
      const pool = new MeasurePool();
      const schemes: Scheme[] = [
        { kind: "rtn", bits: 4, block: "tensor", clip: { method: "none" } },
        { kind: "rtn", bits: 3, block: 100, clip: { method: "zscore", k: 2 } },
        { kind: "nf4", range: "absmax", block: 64, clip: { method: "tensor-pct", fraction: 0.01 } },
      ];
      const overrides = schemes.map((s) => quantizeOverride(model, tensor, s, [37], pool));
      let reads = 0;
      const rows = modelRows(model, tensor);
      const counted: TensorRows = {
        ...rows,
        *blocks() {
          reads++;
          yield* rows.blocks();
        },
      };
      for (const o of overrides) o.prepare!(counted);
      assert.equal(reads, 1);
      // and each override's values are those of its own pool
      for (const [i, s] of schemes.entries()) {
        const alone = quantizeOverride(model, tensor, s, [37]);
        alone.prepare!(modelRows(model, tensor));
        const a = model.read(tensor),
          b = a.slice();
        overrides[i].apply(a, 0);
        alone.apply(b, 0);
        assert.deepEqual(a, b);
      }
    } finally {
      model.close();
    }
  },
);
