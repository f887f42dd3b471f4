// Signed figures in tables: the minus sign for losses, and no "−0.00" for a difference that rounds to zero.
import { test } from "node:test";
import assert from "node:assert/strict";
import { signed } from "../src/signed.js";

test("signed: '+' and the minus sign, zero when it rounds to zero", () => {
  assert.equal(signed(0.12345, 4), "+0.1235");
  assert.equal(signed(-0.12345, 4), "−0.1235");
  assert.equal(signed(-1e-9, 2), "+0.00");
  assert.equal(signed(-0.004, 2), "+0.00");
  assert.equal(signed(-0.006, 2), "−0.01");
  assert.equal(signed(-0, 2), "+0.00");
});
