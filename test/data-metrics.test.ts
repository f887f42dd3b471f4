// The harness's scoring rules on hand-worked numbers: acc (argmax, first on ties), acc_norm (divided by
// code points), mean_stderr = sqrt(p(1 − p)/(n − 1)), LAMBADA's perplexity; and the Python string rules
// the task formatting depends on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { accuracy, accuracyStderr, lastWordPerplexity, mcOutcome } from "../src/data/metrics.js";
import { pyCapitalize, pyLstrip, pyStrip } from "../src/data/pytext.js";
import { codePointLength, sharedContextChoices, type McItem } from "../src/data/requests.js";

const item = (choices: string[], answer: number): McItem => ({
  id: "t",
  answer,
  choices: sharedContextChoices("Question: q\nAnswer:", choices),
});

test("acc picks the highest log-likelihood; acc_norm divides by each choice's length in code points", () => {
  // lengths 1, 10: -2/1 = -2 < -6/10 = -0.6, so acc_norm prefers the long choice acc rejects
  const long = item(["a", "abcdefghij"], 1);
  assert.deepEqual(mcOutcome(long, [-2, -6]), { pred: 0, predNorm: 1, acc: false, accNorm: true });
  // "😀😀" is 2 code points (4 UTF-16 units, 8 bytes): -3/2 = -1.5 < -4/3 ≈ -1.333, so acc_norm picks "abc";
  // divided by bytes (-3/8) or UTF-16 units (-3/4) the emoji would have won
  const emoji = item(["😀😀", "abc"], 0);
  assert.deepEqual(mcOutcome(emoji, [-3, -4]), { pred: 0, predNorm: 1, acc: true, accNorm: false });
});

test("ties go to the first choice, as np.argmax", () => {
  assert.deepEqual(mcOutcome(item(["x", "y", "z"], 1), [-1, -1, -1]), {
    pred: 0,
    predNorm: 0,
    acc: false,
    accNorm: false,
  });
  assert.equal(mcOutcome(item(["x", "y"], 1), [-Infinity, -5]).pred, 1);
});

test("a NaN or a wrong count of log-likelihoods is refused", () => {
  assert.throws(() => mcOutcome(item(["x", "y"], 0), [Number.NaN, -1]), /NaN/);
  assert.throws(() => mcOutcome(item(["x", "y"], 0), [-1]), /1 log-likelihoods for 2 choices/);
});

test("accuracyStderr is the harness's sample stderr of the mean: sqrt(p(1-p)/(n-1))", () => {
  // p = 3/4, n = 4: sqrt(0.1875 / 3) = 0.25 exactly
  assert.equal(accuracyStderr([true, false, true, true]), 0.25);
  // p = 1/2, n = 2: sqrt(0.25 / 1) = 0.5
  assert.equal(accuracyStderr([true, false]), 0.5);
  // p = 0.3, n = 10: sqrt(0.21 / 9) = 0.15275252316519466
  const ten = [true, true, true, false, false, false, false, false, false, false];
  assert.ok(Math.abs(accuracyStderr(ten)! - 0.15275252316519466) < 1e-15);
  assert.equal(accuracy(ten), 0.3);
  assert.equal(accuracyStderr([true, true, true]), 0);
  // one item: the harness writes "N/A"
  assert.equal(accuracyStderr([true]), null);
  assert.equal(accuracyStderr([]), null);
});

test("LAMBADA perplexity is exp(-mean of per-item summed log-likelihoods)", () => {
  // lls -1, -3: exp(2) = 7.38905609893065
  assert.ok(Math.abs(lastWordPerplexity([-1, -3]) - 7.38905609893065) < 1e-12);
  assert.equal(lastWordPerplexity([0, 0]), 1);
});

test("codePointLength is Python's len", () => {
  assert.equal(codePointLength("ohm (Ω)"), 7);
  assert.equal(codePointLength("a 😀 face"), 8);
  assert.equal(codePointLength(""), 0);
});

test("pyStrip/pyLstrip strip what Python's str.isspace() accepts, no more", () => {
  assert.equal(pyLstrip("\u0085\u001c \tText "), "Text ");
  assert.equal(pyLstrip("\uFEFFText"), "\uFEFFText"); // JavaScript's trimStart would drop U+FEFF
  assert.equal(pyStrip("\u3000\n x y \u2029\u001f"), "x y");
});

test("pyCapitalize upper-cases the first character and lower-cases the rest", () => {
  assert.equal(pyCapitalize("hELLO wORLD"), "Hello world");
  assert.equal(pyCapitalize("then, the man"), "Then, the man");
  assert.equal(pyCapitalize("éCOLE"), "École");
  assert.equal(pyCapitalize("😀ABC"), "😀abc");
  assert.equal(pyCapitalize(""), "");
});
