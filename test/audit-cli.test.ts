// `superweight audit` as a user runs it, in a child process: the table, the default prompt, and the refusals of
// malformed superweight.* keys and of what cannot be audited, each in one line naming the file. (The --json
// results are checked in-process in audit.test.ts; this file is left out of the mutation groups, as Stryker
// cannot see what a child process covers.)
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GgufKv } from "../src/gguf/container.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";
import { cli, expectRefusal } from "./cli-child.js";
import { expectedOf, gguf, kept, reference, VERDICTS, withMetadata } from "./audit-files.js";

const opts = { skip: skipWithoutFixtures };
const dir = mkdtempSync(join(tmpdir(), "sw-audit-cli-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("the table: the super weight, its block-mates, the activation, the NLL, the verdict", opts, () => {
  const file = "planted-llama-256.Q4_K_M.gguf";
  const ids = expectedOf(file).input_ids.join(",");
  const r = cli("audit", gguf(file), "--reference", reference(), "--ids", ids);
  assert.equal(r.status, 0, r.stderr);
  const text = r.stdout;
  assert.match(
    text,
    /^\[1, 40, 300\]\s+reference scan\s+blk\.1\.ffn_down\.weight\s+Q4_K\s+256-511\s+2\.218504\s+2\.21875\s+-0\.000246\s+-0\.011%$/m,
  );
  assert.match(text, /^\[1, 40, 300\]\s+32-group\s+288-319\s+31\s+0\.0494\s+0\.0425\s+0\.0757\s+0\s+30 → 2$/m);
  assert.match(text, /^\s+rest of 256\s+256-511\s+224\s+0\.0436\s+0\.00385\s+0\.00856\s+0\s+211 → 89$/m);
  assert.match(text, /^\[1, 40, 300\]\s+super\s+175\.0\s+387\.9\s+super\s+180\.0\s+399\.2$/m);
  assert.match(
    text,
    /mean NLL on the inputs \(11 tokens\): GGUF 0\.0307 \(perplexity 1\.0312\), reference 0\.0293 \(perplexity 1\.0297\): \+4\.9\d%/,
  );
  const verdict = text.trimEnd().split("\n").pop()!;
  assert.match(verdict.replace(/^verdict: /, ""), VERDICTS.Q4_K_M, verdict);
});

test("without --reference or ids: the default prompt, and a text that says nothing was found", opts, () => {
  // The planted super weight fires on token 1 at the first position: the default prompt never starts with it.
  const r = cli("audit", gguf("planted-llama-256.Q4_K_M.gguf"));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /reference: none \(give --reference/);
  assert.match(r.stdout, /without a reference this cannot be known:/);
  assert.match(r.stdout, /verdict: no super weight found/);
});

test("malformed superweight.* keys are refused, naming the file and the key", opts, () => {
  const file = "planted-llama-256.Q4_K_M.gguf";
  const cases: [[string, GgufKv][], string][] = [
    [kept(["1:40"], null), `"superweight.super_weights"[0] is "1:40", not "layer:row:column"`],
    [kept(["1:40:300", "1:40:300"], null), "lists 1:40:300 twice"],
    [kept(["1:40:300"], [1, 2]), `"superweight.original_values" has 2 values for 1 super weights`],
    [[["superweight.super_weights", { type: "STRING", value: "1:40:300" }]], "must be an ARRAY of STRING, not STRING"],
    [[["superweight.original_values", { type: "ARRAY", itemType: "FLOAT32", value: [1] }]], "without"],
    [[["superweight.recipe", { type: "UINT32", value: 3 }]], `"superweight.recipe" must be a STRING, not UINT32`],
    [kept(["4:0:0"], null), "lists 4:0:0, outside the model (4 layers, hidden 256, intermediate 512)"],
  ];
  for (const [extra, says] of cases) {
    const path = withMetadata(dir, file, extra);
    expectRefusal(["audit", path, "--ids", "1,17"], path, says);
  }
});

test("audit refuses what it cannot audit, in one line", opts, () => {
  const planted = gguf("planted-llama-256.Q4_K_M.gguf");
  expectRefusal(["audit", reference(), "--ids", "1,2"], reference(), "is not a GGUF file");
  expectRefusal(
    ["audit", planted, "--reference", fixturePath("llama-f32"), "--ids", "1,2"],
    fixturePath("llama-f32"),
    `is not the model of ${planted}: the reference has 3 layers, hidden 72`,
  );
  const missing = join(dir, "no-such.txt");
  expectRefusal(["audit", planted, "--ids", "1,2", "--text", missing], missing, "does not exist");
  expectRefusal(["audit", planted, "--ids", "1,2", "--max-tokens", "1"], "--max-tokens 1", "an integer ≥ 2");
});
