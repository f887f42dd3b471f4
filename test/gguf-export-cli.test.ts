// `superweight quantize --format gguf` run as a user runs it: a file written with the recipe in its metadata and
// the super weight read back; --json; --compare; and each bad option or input refused in one line, exit 2, with
// nothing written.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFile } from "../src/gguf/container.js";
import { fixturePath, readReference, skipWithoutFixtures } from "./fixtures.js";
import { assertRefused, cli, fingerprint, userEnv, writeTiny, type Run } from "./tiny.js";

const home = mkdtempSync(join(tmpdir(), "sw-quantize-cli-"));
after(() => rmSync(home, { recursive: true, force: true }));
const env = userEnv(home);
const PLANTED = fixturePath("planted-llama-256");
const IDS = "1,17,42,5,99,23,7,61,3,88,14";

function outDir(name: string): string {
  const d = join(home, name);
  mkdirSync(d, { recursive: true });
  return d;
}

test(
  "quantize --format gguf --keep: the file, its recipe keys, the super weight read back (text and --json)",
  { skip: skipWithoutFixtures },
  async () => {
    const out = outDir("ok");
    const [text, json] = await Promise.all([
      cli(
        [
          "quantize",
          PLANTED,
          "--format",
          "gguf",
          "--type",
          "Q4_0",
          "--keep",
          "1:40:300",
          "--keep-type",
          "F16",
          "--stand-in-vocab",
          "--name",
          "fixture",
          "-o",
          join(out, "a.gguf"),
        ],
        env,
      ),
      cli(
        [
          "quantize",
          PLANTED,
          "--format",
          "gguf",
          "--type",
          "Q8_0",
          "--keep",
          "1:40:300",
          "--stand-in-vocab",
          "--name",
          "fixture",
          "-o",
          join(out, "b.gguf"),
          "--json",
        ],
        env,
      ),
    ]);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /super weights given with --keep: \[1, 40, 300\]/);
    assert.match(text.stdout, /recipe: Q4_0; tensors holding super weights at F16 \(blk\.1\.ffn_down\.weight\)/);
    assert.match(text.stdout, /blk\.1\.ffn_down\.weight +F16 +2\.21875 +2\.21875 +0/);
    const md = readGgufFile(join(out, "a.gguf")).metadata;
    assert.deepEqual(md.get("superweight.super_weights")!.value, ["1:40:300"]);
    assert.deepEqual(md.get("general.file_type"), { type: "UINT32", value: 2 });

    assert.equal(json.status, 0, json.stderr);
    const r = JSON.parse(json.stdout);
    assert.equal(r.kind, "gguf-quantize");
    assert.equal(r.found.source, "keep");
    // Q8_0 is already the keep type: nothing raised, and the super weight reads back as llama.cpp's Q8_0 stores it
    assert.deepEqual(
      r.exported.superWeights.map((w: any) => [w.type, w.value]),
      [["Q8_0", 2.21875]],
    );
    assert.ok(Math.abs(r.exported.superWeights[0].stored - 2.21885681) < 1e-7);
    assert.match(r.exported.recipe, /left at their stock types \(blk\.1\.ffn_down\.weight Q8_0\)/);
  },
);

test(
  "quantize --compare --json (scan on --ids, score on --text-ids): the checkpoint row is the reference perplexity",
  { skip: skipWithoutFixtures },
  async () => {
    const r = await cli(
      [
        "quantize",
        PLANTED,
        "--format",
        "gguf",
        "--type",
        "Q4_0",
        "--compare",
        "--ids",
        IDS,
        "--text-ids",
        IDS,
        "--stand-in-vocab",
        "--json",
      ],
      env,
    );
    assert.equal(r.status, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.deepEqual(
      c.found.weights.map((w: any) => [w.layer, w.row, w.column]),
      [[1, 40, 300]],
    );
    assert.deepEqual(
      c.comparison.recipes.map((x: any) => x.label),
      ["stock", "keep-super Q8_0", "keep-super F16"],
    );
    assert.ok(Math.abs(c.comparison.checkpoint.perplexity - readReference("planted-llama-256").perplexity) < 1e-5);
    assert.equal(c.exported, undefined);
  },
);

/** A refusal leaves the folder as it was. */
async function refused(args: string[], folder: string, file: string | undefined, ...mentions: (string | RegExp)[]) {
  const before = fingerprint(folder);
  const r: Run = await cli(args, env);
  assertRefused(r, file, ...mentions);
  assert.deepEqual(fingerprint(folder), before, `${args.join(" ")}: the folder changed`);
}

test("bad options and inputs: one line, exit 2, nothing written", { skip: skipWithoutFixtures }, async () => {
  const out = outDir("bad");
  const tiny = writeTiny(join(home, "tiny"));
  const o = join(out, "x.gguf");
  const q = (...more: string[]) => ["quantize", PLANTED, "--format", "gguf", "--stand-in-vocab", ...more];
  const cases: [string[], string, string | undefined, ...(string | RegExp)[]][] = [
    [q("--type", "Q3_K", "-o", o), out, undefined, "--type Q3_K: unknown type", "Q4_K_M"],
    [q("--keep-type", "Q4_0", "-o", o), out, undefined, "--keep-type Q4_0"],
    [q("--keep", "9:0:0", "-o", o), out, undefined, "layer 9 is outside the model's 4 layers"],
    [q("--keep", "1:256:0", "-o", o), out, undefined, "[256, 0] is outside model.layers.1.mlp.down_proj.weight"],
    [q("--keep", "1:40", "-o", o), out, undefined, "expected layer:row:column"],
    [q("--clip", "zscore:-1", "-o", o), out, undefined, "clip must be"],
    [q(), out, undefined, "give --out PATH"],
    [q("--compare", "--text", "t.txt", "--text-ids", "1,2"), out, undefined, "--text or --text-ids"],
    [q("-o", out), out, undefined, "is a folder"],
    [q("-o", join(home, "nowhere", "x.gguf")), out, undefined, "does not exist"],
    [
      ["quantize", tiny, "--format", "gguf", "--type", "Q8_0", "-o", o],
      out,
      tiny,
      "no tokenizer.json",
      "--stand-in-vocab",
    ],
    [
      ["quantize", tiny, "--format", "gguf", "--stand-in-vocab", "--force", "-o", join(tiny, "model.safetensors")],
      tiny,
      undefined,
      "one of the model's own files",
    ],
  ];
  for (const [args, folder, file, ...mentions] of cases) await refused(args, folder, file, ...mentions);
  assert.deepEqual(readdirSync(out), []);
});

test(
  "an existing --out is kept unless --force; a .gguf source is never written over",
  { skip: skipWithoutFixtures },
  async () => {
    const out = outDir("exists");
    const first = join(out, "m.gguf");
    const gguf = (...args: string[]) =>
      cli(["quantize", ...args.slice(0, 1), "--format", "gguf", ...args.slice(1)], env);
    const ok = await gguf(PLANTED, "--type", "F16", "--stand-in-vocab", "-o", first);
    assert.equal(ok.status, 0, ok.stderr);
    await refused(
      ["quantize", PLANTED, "--format", "gguf", "--stand-in-vocab", "-o", first],
      out,
      undefined,
      `--out ${first} exists: pass --force`,
    );
    // the GGUF as the source: its own tokenizer keys are reused; --out at itself is refused even with --force
    await refused(
      ["quantize", first, "--format", "gguf", "--type", "Q8_0", "--force", "-o", first],
      out,
      undefined,
      "one of the model's own files",
    );
    const again = await cli(["quantize", first, "--format", "gguf", "--type", "Q8_0", "-o", join(out, "q8.gguf")], env);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /vocabulary: from gguf/);
    assert.doesNotMatch(again.stdout, /already quantized/); // an F16 source
    const twice = await gguf(join(out, "q8.gguf"), "--type", "Q4_0", "-o", join(out, "q4.gguf"));
    assert.match(twice.stdout, /note: the source is already quantized \(Q8_0\): its dequantized weights are quantized/);
    rmSync(join(out, "q4.gguf"));
    const replaced = await gguf(PLANTED, "--type", "Q4_0", "--stand-in-vocab", "--force", "-o", first);
    assert.equal(replaced.status, 0, replaced.stderr);
    assert.deepEqual(readGgufFile(first).metadata.get("general.file_type"), { type: "UINT32", value: 2 });
    assert.deepEqual(readdirSync(out).sort(), ["m.gguf", "q8.gguf"]);
    assert.ok(!existsSync(join(out, "m.gguf.tmp")));
  },
);
