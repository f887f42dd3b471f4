// GGUF files as a user meets them: `run --ids … --json` on every llama.cpp file of shared/fixtures/gguf against
// its expected.json (per-token NLL; in-process also the logits and every layer's down_proj input and output),
// `scan` finding the planted super weight of the quantized files at the original checkpoint's coordinates,
// `--prompt` through the file's own vocabulary giving llama.cpp's ids (no BOS: the file's add_bos_token is
// false, where the folder's tokenizer.json adds <s>), and broken files refused through the CLI — exit 2, one
// line naming the file and the fault, at once — for each fault a real file can carry.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Model } from "../src/engine/model.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { toleranceUsed } from "./tolerance.js";
import { flat, runRecorded } from "./recorded.js";
import { cliJson, expectRefusal } from "./cli-child.js";

const gguf = (file: string) => fixturePath("gguf", file);
const expectedOf = (file: string) => JSON.parse(readFileSync(gguf(file.replace(/\.gguf$/, ".expected.json")), "utf8"));
const FILES = skipWithoutFixtures
  ? []
  : readdirSync(fixturePath("gguf"))
      .filter((f) => f.endsWith(".gguf"))
      .sort();
const coord = (w: { layer: number; row: number; column: number }) => `[${w.layer}, ${w.row}, ${w.column}]`;
const opts = { skip: skipWithoutFixtures };

const dir = mkdtempSync(join(tmpdir(), "sw-gguf-run-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("every fixture GGUF is here (10 files, each with its expected.json)", { skip: skipWithoutFixtures }, () => {
  assert.equal(FILES.length, 10);
});

for (const file of FILES) {
  test(`run --ids --json on ${file}: per-token NLL and perplexity as expected.json`, () => {
    const e = expectedOf(file);
    const out = cliJson("run", gguf(file), "--ids", e.input_ids.join(","));
    assert.deepEqual(out.ids, e.input_ids);
    assert.equal(out.modelType, e.gguf.metadata["general.architecture"].value);
    const used = toleranceUsed(out.nll, e.nll, 1e-4, 0);
    assert.ok(used <= 1, `${file}: NLL off by ${used.toFixed(2)}× the 1e-4 tolerance`);
    assert.ok(Math.abs(out.perplexity - e.perplexity) <= 1e-4 * e.perplexity, `${out.perplexity} vs ${e.perplexity}`);
  });

  test(`${file} in-process: logits and every layer's down_proj input and output within the tolerance`, async () => {
    const e = expectedOf(file);
    const model = Model.open(gguf(file));
    try {
      const out = await runRecorded(model, e.input_ids);
      const { abs, rel } = e.tolerance;
      const checks: [string, ArrayLike<number> | undefined, number[]][] = [["logits", out.logits, flat(e.logits)]];
      for (let l = 0; l < model.spec.layers; l++) {
        checks.push([`layer ${l} down_proj input`, out.downIn[l], flat(e.down_proj_input[l])]);
        checks.push([`layer ${l} down_proj output`, out.downOut[l], flat(e.down_proj_output[l])]);
      }
      assert.equal(checks.length, 1 + 2 * e.down_proj_input.length);
      for (const [what, actual, expected] of checks) {
        assert.ok(actual, `${what} not recorded`);
        const used = toleranceUsed(actual, expected, abs, rel);
        assert.ok(used <= 1, `${file} ${what}: ${used.toFixed(2)}× the tolerance`);
      }
    } finally {
      model.close();
    }
  });

  test(`scan --ids on ${file} finds detection.found: the original checkpoint's coordinates`, () => {
    const e = expectedOf(file);
    const out = cliJson("scan", gguf(file), "--ids", e.input_ids.join(","));
    const found = e.detection.found as any[];
    assert.deepEqual(out.superWeights.map(coord).sort(), found.map(coord).sort());
    for (const f of found) {
      const w = out.superWeights.find((x: any) => coord(x) === coord(f));
      assert.equal(w.iteration, f.iteration, coord(f));
      assert.equal(w.token, f.token);
      assert.equal(w.inputToken, f.inputToken);
      assert.equal(w.tensor, f.tensor);
      // The weight as stored in this file (dequantized), and the spikes of the dequantized model.
      assert.ok(Math.abs(w.value - f.value) <= 1e-6 * Math.abs(f.value), `value ${w.value} vs ${f.value}`);
      for (const k of ["inputActivation", "outputActivation"] as const)
        assert.ok(toleranceUsed([w[k]], [f[k]], e.tolerance.abs, e.tolerance.rel) <= 1, `${k} ${w[k]} vs ${f[k]}`);
    }
    // The source checkpoint's own super weights: what quantization must not lose.
    const source = readReference(e.source.fixture);
    const original = (source.expectedSuperWeights ?? source.detection?.found ?? []) as any[];
    assert.deepEqual(found.map(coord).sort(), original.map(coord).sort(), "same coordinates as the checkpoint");
    if (file.startsWith("planted")) {
      assert.deepEqual(out.superWeights.map(coord), ["[1, 40, 300]"]);
      assert.equal(out.superWeights[0].class, "super");
    }
  });
}

// ---- the file's own tokenizer ----

test("--prompt on bytes-llama-6m.Q8_0.gguf gives llama.cpp's ids: the UTF-8 bytes, no BOS", opts, () => {
  const file = gguf("bytes-llama-6m.Q8_0.gguf");
  const e = expectedOf("bytes-llama-6m.Q8_0.gguf");
  assert.equal(e.gguf.metadata["tokenizer.ggml.add_bos_token"].value, false);
  const [plain, mixed] = e.llamaCppTokenization.samples as { text: string; ids: number[] }[];
  const out = cliJson("run", file, "--prompt", plain.text, "--top", "1");
  assert.deepEqual(out.ids, plain.ids);
  assert.notEqual(out.ids[0], 256, "no <s> in front");
  assert.equal(out.nll.length, plain.ids.length - 1);
  assert.ok(out.nll.every(Number.isFinite));
  // llama.cpp's sample was tokenized with special tokens as plain text; the CLI parses them, as llama-cli
  // does: "<s>" in the text is the control token 256, every other byte as llama.cpp gives it.
  const both = cliJson("run", file, "--prompt", plain.text, "--prompt", mixed.text, "--top", "1");
  const at = Buffer.from(mixed.text.slice(0, mixed.text.indexOf("<s>"))).length;
  assert.deepEqual(both.runs[0].ids, plain.ids);
  assert.deepEqual(both.runs[1].ids, [...mixed.ids.slice(0, at), 256, ...mixed.ids.slice(at + 3)]);
});

test(
  "the BOS difference: the GGUF adds none (add_bos_token false), the checkpoint's tokenizer.json adds <s>",
  { skip: skipWithoutFixtures },
  () => {
    const fromGguf = cliJson("run", gguf("bytes-llama-6m.Q8_0.gguf"), "--prompt", "Hello", "--top", "1");
    const fromFolder = cliJson("run", fixturePath("bytes-llama-6m"), "--prompt", "Hello", "--top", "1");
    assert.deepEqual(fromGguf.ids, [72, 101, 108, 108, 111]);
    assert.deepEqual(fromFolder.ids, [256, 72, 101, 108, 108, 111]);
    // The same ids through both give the same predictions up to Q8_0's error: --ids is how to force a BOS.
    const forced = cliJson("run", gguf("bytes-llama-6m.Q8_0.gguf"), "--ids", fromFolder.ids.join(","), "--top", "1");
    assert.equal(forced.nll.length, fromFolder.nll.length);
    for (let i = 0; i < forced.nll.length; i++)
      assert.ok(Math.abs(forced.nll[i] - fromFolder.nll[i]) < 0.1, `${forced.nll[i]} vs ${fromFolder.nll[i]}`);
  },
);

// ---- broken files through the CLI ----

/** Where the fields of a GGUF header lie: each kv's value, each tensor info's type and offset (read here, not by
 * the reader under test). */
function layout(b: Buffer) {
  let pos = 24;
  const tensorCount = Number(b.readBigUInt64LE(8));
  const kvCount = Number(b.readBigUInt64LE(16));
  const str = () => {
    const n = Number(b.readBigUInt64LE(pos));
    const s = b.toString("utf8", pos + 8, pos + 8 + n);
    pos += 8 + n;
    return s;
  };
  const SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  const skip = (type: number) => (type === 8 ? void str() : void (pos += SIZE[type]));
  const kvs = new Map<string, number>();
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = b.readUInt32LE(pos);
    pos += 4;
    kvs.set(key, pos);
    if (type !== 9) skip(type);
    else {
      const item = b.readUInt32LE(pos);
      const n = Number(b.readBigUInt64LE(pos + 4));
      pos += 12;
      for (let j = 0; j < n; j++) skip(item);
    }
  }
  const tensors: { name: string; typeAt: number; offsetAt: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = str();
    pos += 4 + 8 * b.readUInt32LE(pos);
    tensors.push({ name, typeAt: pos, offsetAt: pos + 4 });
    pos += 12;
  }
  return { kvs, tensors, end: pos };
}

let made = 0;
/** A copy of planted-llama-256.Q4_K_M.gguf changed by `edit`. */
function broken(edit: (b: Buffer, l: ReturnType<typeof layout>) => Buffer | void): string {
  const b = readFileSync(gguf("planted-llama-256.Q4_K_M.gguf"));
  const out = edit(b, layout(b)) ?? b;
  const path = join(dir, `broken-${made++}.gguf`);
  writeFileSync(path, out);
  return path;
}

/** `run` (and, where given, the other commands) refuse it in one line naming the file, well within a second or
 * so: no hang, no buffer sized by a lying length. */
function refused(path: string, commands: string[][], ...fragments: (string | RegExp)[]): void {
  for (const args of commands) expectRefusal([...args, path, "--ids", "1,17,42"], path, ...fragments);
}
const RUN = [["run"]];
const ALL = [["run"], ["scan"], ["audit"]];

test("a truncated file: cut inside the header, inside the data, or a few bytes short", opts, () => {
  refused(
    broken((b) => b.subarray(0, 3000)),
    ALL,
    "tokenizer.ggml.tokens",
    "truncated?",
  );
  refused(
    broken((b) => b.subarray(0, b.length >> 1)),
    ALL,
    "lies past the end",
    "truncated",
  );
  refused(
    broken((b) => b.subarray(0, b.length - 100)),
    RUN,
    "past the end of the 1518364-byte file (truncated?)",
  );
});

test("lying tensor offsets: past the end, into another tensor, misaligned", opts, () => {
  const t = 5; // blk.0.attn_output.weight
  refused(
    broken((b, l) => void b.writeBigUInt64LE(2n ** 60n, l.tensors[t].offsetAt)),
    ALL,
    `tensor "blk.0.attn_output.weight" data offset 1152921504606846976 lies past the end`,
  );
  const offset = (b: Buffer, l: ReturnType<typeof layout>, i: number) => b.readBigUInt64LE(l.tensors[i].offsetAt);
  refused(
    broken((b, l) => void b.writeBigUInt64LE(offset(b, l, t + 1), l.tensors[t].offsetAt)),
    RUN,
    "overlaps",
  );
  refused(
    broken((b, l) => void b.writeBigUInt64LE(offset(b, l, t) + 4n, l.tensors[t].offsetAt)),
    RUN,
    "is not a multiple of 32",
  );
});

test("tensor types: unknown, removed from ggml, known without a dequantizer", opts, () => {
  const t = 5;
  refused(
    broken((b, l) => void b.writeUInt32LE(99, l.tensors[t].typeAt)),
    ALL,
    "unknown ggml type 99",
  );
  refused(
    broken((b, l) => void b.writeUInt32LE(31, l.tensors[t].typeAt)),
    RUN,
    "Q4_0_4_4",
    "removed",
  );
  refused(
    broken((b, l) => void b.writeUInt32LE(16, l.tensors[t].typeAt)),
    ALL,
    "IQ2_XXS, which cannot be dequantized here",
  );
});

test("tensor and kv counts that disagree with what the file holds", opts, () => {
  const count = (delta: number) => (b: Buffer) => void b.writeBigUInt64LE(b.readBigUInt64LE(8) + BigInt(delta), 8);
  refused(broken(count(+1)), ALL, "tensor 39 (of 40) has an empty name");
  refused(
    broken(count(-1)),
    ALL,
    "after the 38 tensor infos the header counts",
    "not the zero padding",
    "more tensor infos than its tensor count says",
  );
  refused(broken(count(2 ** 40)), RUN, "tensor count 1099511627815 cannot fit");
  refused(
    broken((b) => void b.writeBigUInt64LE(b.readBigUInt64LE(16) + 1n, 16)),
    RUN,
    "name of tensor 0 (of 39)",
    "claims",
  );
});

test("absurd string and array lengths are refused before anything is allocated", opts, () => {
  refused(
    broken((b, l) => void b.writeBigUInt64LE(2n ** 62n, l.kvs.get("general.name")!)),
    ALL,
    `key "general.name"`,
    "claims 4611686018427387904 bytes but the limit is 16777216",
  );
  const tokens = (n: bigint) => (b: Buffer, l: ReturnType<typeof layout>) =>
    void b.writeBigUInt64LE(n, l.kvs.get("tokenizer.ggml.tokens")! + 4);
  refused(broken(tokens(2n ** 40n)), ALL, "claims 1099511627776 STRING items but the limit");
  refused(broken(tokens(2n ** 20n)), RUN, "claims 1048576 STRING items but only");
  // A plausible count a little too large: the items run on into the next keys, and a length read there lies.
  refused(broken(tokens(300n)), RUN, `"tokenizer.ggml.tokens"[257]`, "claims");
});
