// The streamed LM head's running state on its own (one position's distribution while vocabulary blocks go by:
// log-sum-exp against a running maximum, the target's logit, nothing read past a block), and the head's requests
// through a pass on the tiny Llama of tiny.ts: NLL of target 0, several variants' rows from whole logits, and no
// field that was not asked for. Expected values are computed here in float64 from the logits.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RowState } from "../src/engine/head.js";
import { Model } from "../src/engine/model.js";
import { forward } from "../src/engine/forward.js";
import { editWeights } from "../src/engine/variants.js";
import { writeTiny } from "./tiny.js";

const root = mkdtempSync(join(tmpdir(), "sw-head-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folder = writeTiny(join(root, "tiny"));

test("RowState: a later block far below the running maximum adds nothing and overflows nothing", () => {
  const s = new RowState(-1, 0);
  s.see(Float32Array.from([1000, 0]), 0, 2, 0);
  s.see(Float32Array.from([-1000, -1000]), 0, 2, 2);
  assert.equal(s.logSumExp, 1000); // 1000 + log(1 + e^-1000 + 2e^-2000) rounds to 1000
  // And a later block far above it: the earlier sum is rescaled, not lost to overflow.
  const t = new RowState(-1, 0);
  t.see(Float32Array.from([-1000, -1000]), 0, 2, 0);
  t.see(Float32Array.from([1000, 1000]), 0, 2, 2);
  assert.equal(t.logSumExp, 1000 + Math.log(2));
});

test("RowState: a block is its n values at the offset, never the next row's", () => {
  const s = new RowState(1, 2);
  // Two rows of 2 in one buffer: row 0 is [0, 0], row 1 [2000, 5]; this state sees row 0 only.
  const values = Float32Array.from([0, 0, 2000, 5]);
  s.see(values, 0, 2, 0);
  assert.equal(s.logSumExp, Math.log(2));
  assert.equal(s.target, 0);
  assert.deepEqual(s.best, [
    { id: 0, logit: 0 },
    { id: 1, logit: 0 },
  ]);
});

test("RowState: the target's logit is taken from the block that holds it and kept through later ones", () => {
  const s = new RowState(1, 1);
  s.see(Float32Array.from([3, 5]), 0, 2, 0);
  s.see(Float32Array.from([7, 9, 11]), 0, 3, 2);
  s.see(Float32Array.from([0, 1, -2, 4]), 1, 3, 5); // ids 5–7 at offset 1
  assert.equal(s.target, 5);
  assert.deepEqual(s.best, [{ id: 4, logit: 11 }]);
  const lse = Math.log([3, 5, 7, 9, 11, 1, -2, 4].reduce((a, v) => a + Math.exp(v - 11), 0)) + 11;
  assert.ok(Math.abs(s.logSumExp - lse) < 1e-12, `${s.logSumExp} vs ${lse}`);
});

/** −log softmax(row)[target] in float64. */
function nllOf(row: Float32Array, target: number): number {
  const m = Math.max(...row);
  return m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0)) - row[target];
}

test("the head: target 0 is scored, each variant's rows from its own logits, nothing unasked for", async () => {
  const model = Model.open(folder);
  try {
    const ids = [1, 2, 3, 4];
    const V = model.spec.vocab;
    const variants = [
      {},
      { overrides: editWeights(model, [{ tensor: "lm_head.weight", row: 0, column: 3, value: 4 }]) },
    ];
    const targets = [0, 3, -1, 0];
    const whole = await forward(model, ids, { variants, head: { logits: true } });
    const logits = whole.logits!;
    const row = (v: number, t: number) => logits.subarray((v * ids.length + t) * V, (v * ids.length + t + 1) * V);
    assert.notDeepEqual([...row(0, 0)], [...row(1, 0)], "the edit changes token 0's logit");
    for (const head of [{ targets }, { logits: true, targets }]) {
      const out = await forward(model, ids, { variants, head });
      assert.equal(out.nll!.length, 2);
      for (let v = 0; v < 2; v++)
        targets.forEach((target, t) => {
          const got = out.nll![v][t];
          if (target < 0) assert.ok(Number.isNaN(got), `variant ${v} position ${t}: not scored`);
          else {
            const want = nllOf(row(v, t), target);
            assert.ok(
              Math.abs(got - want) < 1e-5,
              `${JSON.stringify(head)} variant ${v} position ${t}: ${got} vs ${want}`,
            );
          }
        });
      assert.equal("logitsAt" in out, false, "no logitsAt asked for");
      assert.equal("top" in out, false, "no top asked for");
      assert.equal("logits" in out, head.logits === true);
    }
    // The k best alone: no NLL either.
    const top = await forward(model, ids, { variants, head: { top: { k: 2, positions: [3] } } });
    assert.deepEqual(
      Object.keys(top).filter((k) => ["nll", "logits", "logitsAt", "top"].includes(k)),
      ["top"],
    );
    assert.deepEqual(
      top.top![1][0].map((t) => t.id),
      [...row(1, 3)]
        .map((logit, id) => ({ id, logit }))
        .sort((a, b) => b.logit - a.logit || a.id - b.id)
        .slice(0, 2)
        .map((t) => t.id),
    );
  } finally {
    model.close();
  }
});
