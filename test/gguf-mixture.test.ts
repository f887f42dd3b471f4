// llama.cpp's tensor type choice per file type: every tensor type (and the tensor order) of every llama-quantize
// output among the GGUF fixtures, from the source's tensor list, then hand-made cases of the rules in
// src/llama-quant.cpp (layer counters, the 70B attn_v rule, fallbacks, overrides, tied embeddings, phi3's qkv).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { UserError } from "../src/errors.js";
import {
  chooseTypes,
  FTYPES,
  parseTensorTypeOverride,
  quantizeOrder,
  type Ftype,
  type MixtureOptions,
  type TensorInfo,
} from "../src/gguf/mixture.js";
import type { GgmlType } from "../src/gguf/quantize.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

interface Expected {
  source: { recipe: string };
  gguf: {
    metadata: Record<string, { value: unknown }>;
    tensors: { name: string; type: GgmlType; ne: number[] }[];
  };
}
const expected = (stem: string): Expected =>
  JSON.parse(readFileSync(fixturePath("gguf", `${stem}.expected.json`), "utf8"));

/** The file type and model options a GGUF's own metadata implies. */
function optionsOf(e: Expected): { ftype: Ftype; options: MixtureOptions } {
  const meta = (key: string) => e.gguf.metadata[key]?.value;
  const arch = meta("general.architecture") as string;
  const id = meta("general.file_type");
  const ftype = (Object.keys(FTYPES) as Ftype[]).find((k) => FTYPES[k].id === id);
  assert.ok(ftype, `file type ${id}`);
  const overrides = [...e.source.recipe.matchAll(/--tensor-type (\S+)/g)].map((m) => parseTensorTypeOverride(m[1]));
  return {
    ftype,
    options: {
      arch,
      nLayers: meta(`${arch}.block_count`) as number,
      nHead: meta(`${arch}.attention.head_count`) as number,
      nHeadKv: meta(`${arch}.attention.head_count_kv`) as number,
      overrides,
    },
  };
}

/** Compare a chosen Map with a file's tensor list: the same types, and (llama-quantize's files) the same order. */
function assertTypes(
  got: Map<string, GgmlType>,
  want: { name: string; type: GgmlType }[],
  what: string,
  order = true,
): void {
  const names = want.map((t) => t.name);
  if (order) assert.deepEqual([...got.keys()], names, `${what}: tensor order`);
  else assert.deepEqual([...got.keys()].sort(), names.sort(), `${what}: tensor names`);
  for (const t of want) assert.equal(got.get(t.name), t.type, `${what}: ${t.name}`);
}

test(
  "planted-llama-256 Q8_0, Q6_K, Q4_K_M, Q4_K_M-keep-sw-F16 (with its --tensor-type overrides), Q4_0, F16: " +
    "every tensor's type and the file's tensor order, from the F32 file's tensors",
  { skip: skipWithoutFixtures },
  () => {
    const source = expected("planted-llama-256.F32").gguf.tensors.map((t) => ({
      name: t.name,
      ne: t.ne,
      type: t.type,
    }));
    for (const variant of ["Q8_0", "Q6_K", "Q4_K_M", "Q4_K_M-keep-sw-F16", "Q4_0", "F16"]) {
      const e = expected(`planted-llama-256.${variant}`);
      const { ftype, options } = optionsOf(e);
      assert.equal(options.overrides!.length, variant === "Q4_K_M-keep-sw-F16" ? 4 : 0);
      // the F16 file is convert_hf_to_gguf's --outtype f16 (its own tensor order); llama-quantize F16 types the same
      assertTypes(chooseTypes(ftype, source, options), e.gguf.tensors, variant, variant !== "F16");
    }
  },
);

test(
  "bytes-llama-6m Q8_0: ffn_down (ne0 = 688, not a multiple of 32) falls back to F16",
  { skip: skipWithoutFixtures },
  () => {
    const e = expected("bytes-llama-6m.Q8_0");
    const { ftype, options } = optionsOf(e);
    // its F32 source is not shipped; the quantized file keeps every name and shape, and 1-D tensors stay F32
    const source = e.gguf.tensors.map((t) => ({ name: t.name, ne: t.ne }));
    const types = chooseTypes(ftype, source, options);
    assertTypes(types, e.gguf.tensors, "bytes-llama-6m.Q8_0");
    assert.equal(types.get("blk.7.ffn_down.weight"), "F16");
  },
);

/** A dense llama-family model's tensors (names as llama.cpp's converter writes them). */
function model(nLayers: number, opts: { hidden?: number; ff?: number; tied?: boolean; qkv?: boolean } = {}) {
  const h = opts.hidden ?? 256;
  const ff = opts.ff ?? 512;
  const t: TensorInfo[] = [
    { name: "token_embd.weight", ne: [h, 1000] },
    { name: "output_norm.weight", ne: [h] },
  ];
  if (!opts.tied) t.push({ name: "output.weight", ne: [h, 1000] });
  for (let i = 0; i < nLayers; i++) {
    const p = `blk.${i}.`;
    t.push({ name: p + "attn_norm.weight", ne: [h] }, { name: p + "ffn_norm.weight", ne: [h] });
    if (opts.qkv) t.push({ name: p + "attn_qkv.weight", ne: [h, 3 * h] });
    else t.push(...["attn_q", "attn_k", "attn_v"].map((n) => ({ name: p + n + ".weight", ne: [h, h] })));
    t.push({ name: p + "attn_output.weight", ne: [h, h] }, { name: p + "ffn_gate.weight", ne: [h, ff] });
    t.push({ name: p + "ffn_up.weight", ne: [h, ff] }, { name: p + "ffn_down.weight", ne: [ff, h] });
  }
  return t;
}
const llama = (nLayers: number, extra: Partial<MixtureOptions> = {}): MixtureOptions => ({
  arch: "llama",
  nLayers,
  nHead: 32,
  nHeadKv: 8,
  ...extra,
});
/** Layers whose `blk.N.<tensor>.weight` got `type`. */
function layersWith(types: Map<string, GgmlType>, tensor: string, type: GgmlType): number[] {
  return [...types]
    .filter(([n, t]) => n.endsWith(`.${tensor}.weight`) && t === type)
    .map(([n]) => Number(n.split(".")[1]))
    .sort((a, b) => a - b);
}

test("Q4_K_M, 32 layers: ffn_down and attn_v get Q6_K in the first and last 4 layers and every third between", () => {
  const types = chooseTypes("Q4_K_M", model(32), llama(32));
  const moreBits = [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31];
  assert.deepEqual(layersWith(types, "ffn_down", "Q6_K"), moreBits);
  assert.deepEqual(layersWith(types, "attn_v", "Q6_K"), moreBits);
  assert.equal(layersWith(types, "ffn_down", "Q4_K").length, 16);
  for (const t of ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"]) {
    assert.equal(layersWith(types, t, "Q4_K").length, 32, t);
  }
  assert.equal(types.get("output.weight"), "Q6_K");
  assert.equal(types.get("token_embd.weight"), "Q4_K");
  assert.equal(types.get("output_norm.weight"), "F32");
  assert.equal(types.get("blk.5.ffn_norm.weight"), "F32");
  // the order is by layer number, not by name: blk.2 before blk.10
  const names = [...types.keys()];
  assert.ok(names.indexOf("blk.2.ffn_down.weight") < names.indexOf("blk.10.attn_k.weight"));
  assert.deepEqual(names.slice(0, 3), ["output.weight", "output_norm.weight", "token_embd.weight"]);
});

test("Q5_K_M follows the same layers; Q4_K_S gives Q5_K to the first 4 attn_v and the first eighth of ffn_down", () => {
  const m = chooseTypes("Q5_K_M", model(16), llama(16));
  assert.deepEqual(layersWith(m, "ffn_down", "Q6_K"), [0, 1, 4, 7, 10, 13, 14, 15]);
  assert.deepEqual(layersWith(m, "attn_v", "Q6_K"), [0, 1, 4, 7, 10, 13, 14, 15]);
  assert.equal(m.get("blk.2.ffn_down.weight"), "Q5_K");
  const s = chooseTypes("Q4_K_S", model(16), llama(16));
  assert.deepEqual(layersWith(s, "attn_v", "Q5_K"), [0, 1, 2, 3]);
  assert.deepEqual(layersWith(s, "ffn_down", "Q5_K"), [0, 1]);
  assert.equal(s.get("output.weight"), "Q6_K");
  assert.equal(chooseTypes("Q5_K_S", model(16), llama(16)).get("blk.0.attn_v.weight"), "Q5_K");
});

test("legacy and Q6_K file types: one type everywhere, output.weight at Q6_K unless the base is Q8_0", () => {
  for (const [ftype, base] of [
    ["Q4_0", "Q4_0"],
    ["Q4_1", "Q4_1"],
    ["Q5_0", "Q5_0"],
    ["Q5_1", "Q5_1"],
    ["Q6_K", "Q6_K"],
    ["Q8_0", "Q8_0"],
  ] as const) {
    const types = chooseTypes(ftype, model(8), llama(8));
    assert.equal(types.get("output.weight"), ftype === "Q8_0" ? "Q8_0" : "Q6_K", ftype);
    for (const [name, t] of types) {
      if (name !== "output.weight") assert.equal(t, name.endsWith("norm.weight") ? "F32" : base, `${ftype} ${name}`);
    }
  }
});

test("F16, BF16 and F32 file types: every matrix at that type, norms F32, --tensor-type ignored (as in llama.cpp)", () => {
  const overrides = [parseTensorTypeOverride("ffn_down=q8_0")];
  for (const ftype of ["F16", "BF16", "F32"] as const) {
    const types = chooseTypes(ftype, model(2, { ff: 688 }), llama(2, { overrides }));
    assert.equal(types.get("blk.1.ffn_down.weight"), ftype);
    assert.equal(types.get("output.weight"), ftype);
    assert.equal(types.get("blk.1.attn_norm.weight"), "F32");
  }
});

test("an 80-layer llama with grouped-query attention is llama.cpp's 70B: its Q4_K attn_v become Q5_K", () => {
  const gqa = chooseTypes("Q4_K_M", model(80, { hidden: 256 }), llama(80));
  assert.equal(layersWith(gqa, "attn_v", "Q4_K").length, 0);
  assert.equal(layersWith(gqa, "attn_v", "Q6_K").length + layersWith(gqa, "attn_v", "Q5_K").length, 80);
  assert.equal(gqa.get("blk.11.attn_v.weight"), "Q5_K");
  assert.equal(gqa.get("blk.11.ffn_down.weight"), "Q4_K");
  const mha = chooseTypes("Q4_K_M", model(80), llama(80, { nHeadKv: 32 }));
  assert.equal(mha.get("blk.11.attn_v.weight"), "Q4_K");
  assert.equal(chooseTypes("Q4_K_M", model(80), { ...llama(80), arch: "qwen2" }).get("blk.11.attn_v.weight"), "Q5_K");
});

test("block-size fallbacks: Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0, no 32-block fits → F16", () => {
  const t = chooseTypes("Q4_K_M", model(4, { hidden: 96, ff: 224 }), llama(4));
  assert.equal(t.get("blk.0.attn_q.weight"), "Q5_0"); // 96 = 3·32
  assert.equal(t.get("blk.0.ffn_down.weight"), "Q5_0"); // 224 = 7·32
  assert.equal(t.get("blk.2.ffn_down.weight"), "Q8_0"); // Q6_K by the layer rule, then its fallback
  assert.equal(t.get("output.weight"), "Q8_0"); // 96 is no multiple of 256: output takes Q8_0 outright
  assert.equal(t.get("token_embd.weight"), "Q5_0");
  assert.equal(chooseTypes("Q5_K_S", model(1, { hidden: 96 }), llama(1)).get("blk.0.attn_q.weight"), "Q5_1");
  const odd = chooseTypes("Q4_K_M", model(4, { hidden: 80, ff: 208 }), llama(4));
  for (const [name, type] of odd) assert.equal(type, name.endsWith("norm.weight") ? "F32" : "F16", name);
  const overrides = [
    parseTensorTypeOverride("attn_q=q2_k"),
    parseTensorTypeOverride("attn_k=iq4_xs"),
    parseTensorTypeOverride("attn_v=q3_k"),
  ];
  const o = chooseTypes("Q4_K_M", model(1, { hidden: 96 }), llama(1, { overrides }));
  assert.deepEqual(
    [o.get("blk.0.attn_q.weight"), o.get("blk.0.attn_k.weight"), o.get("blk.0.attn_v.weight")],
    ["Q4_0", "IQ4_NL", "Q4_0"],
  );
});

test("--tensor-type: first match wins, and an overridden ffn_down does not advance the layer counter", () => {
  // the README's warning: overriding blk.1 alone shifts the rule, blk.2 becomes Q4_K instead of Q6_K
  const overrides = [parseTensorTypeOverride("blk\\.1\\.ffn_down=f16")];
  const only1 = chooseTypes("Q4_K_M", model(4), llama(4, { overrides }));
  assert.deepEqual(
    ["blk.0", "blk.1", "blk.2", "blk.3"].map((b) => only1.get(`${b}.ffn_down.weight`)),
    ["Q4_K", "F16", "Q4_K", "Q6_K"],
  );
  const first = chooseTypes(
    "Q4_K_M",
    model(4),
    llama(4, {
      overrides: [parseTensorTypeOverride("ffn_(up|gate)=Q8_0"), parseTensorTypeOverride("FFN_UP=q5_k")],
    }),
  );
  assert.equal(first.get("blk.3.ffn_up.weight"), "Q8_0", "first match wins; patterns are lowercased");
  assert.equal(first.get("blk.3.ffn_gate.weight"), "Q8_0");
});

test("tied embeddings (qwen2, gemma): token_embd takes output.weight's rule", { skip: skipWithoutFixtures }, () => {
  const tied = chooseTypes("Q4_K_M", model(2, { tied: true }), { ...llama(2), arch: "gemma" });
  assert.equal(tied.get("token_embd.weight"), "Q6_K");
  assert.equal(chooseTypes("Q8_0", model(2, { tied: true }), llama(2)).get("token_embd.weight"), "Q8_0");
  // qwen2-bf16 (hidden 80, tied): token_embd would be Q6_K but 80 is no multiple of 256 → Q8_0, nor of 32 → F16
  const e = expected("qwen2-bf16.F32");
  const q = chooseTypes(
    "Q4_K_M",
    e.gguf.tensors.map((t) => ({ name: t.name, ne: t.ne })),
    optionsOf(e).options,
  );
  assert.equal(q.get("token_embd.weight"), "F16");
  assert.equal(q.get("blk.0.attn_q.bias"), "F32");
});

test(
  "phi3's fused attn_qkv counts and is typed as attn_v (ggml's own qkv rule is unreachable)",
  { skip: skipWithoutFixtures },
  () => {
    const e = expected("phi3-bf16.F32");
    const q = chooseTypes(
      "Q4_K_M",
      e.gguf.tensors.map((t) => ({ name: t.name, ne: t.ne })),
      optionsOf(e).options,
    );
    // 2 layers: use_more_bits holds for layer 1 only; ne0 = 96 takes the 32-block fallbacks
    assert.equal(q.get("blk.0.attn_qkv.weight"), "Q5_0");
    assert.equal(q.get("blk.1.attn_qkv.weight"), "Q8_0");
    assert.equal(q.get("blk.1.ffn_down.weight"), "Q8_0");
    assert.equal(q.get("output.weight"), "Q8_0");
    const wide = chooseTypes("Q5_K_M", model(2, { qkv: true }), { ...llama(2), arch: "phi3" });
    assert.equal(wide.get("blk.0.attn_qkv.weight"), "Q5_K");
    assert.equal(wide.get("blk.1.attn_qkv.weight"), "Q6_K");
  },
);

test("gpt2's position_embd is never quantized; --pure, --output-tensor-type, --token-embedding-type", () => {
  const gpt2 = [
    ...model(1),
    { name: "position_embd.weight", ne: [256, 1024] },
    { name: "blk.0.ffn_down.bias", ne: [256] },
  ];
  const t = chooseTypes("Q4_K_M", gpt2, { arch: "gpt2", nLayers: 1, nHead: 4, nHeadKv: 4 });
  assert.equal(t.get("position_embd.weight"), "F32");
  assert.equal(t.get("blk.0.ffn_down.bias"), "F32");
  const pure = chooseTypes("Q4_K_M", model(4, { ff: 688 }), llama(4, { pure: true }));
  assert.equal(pure.get("output.weight"), "Q4_K");
  assert.equal(pure.get("blk.3.attn_v.weight"), "Q4_K");
  assert.equal(pure.get("blk.3.ffn_down.weight"), "F16", "fallbacks still apply");
  const picked = chooseTypes("Q4_K_M", model(4), llama(4, { outputTensorType: "Q8_0", tokenEmbeddingType: "F16" }));
  assert.deepEqual([picked.get("output.weight"), picked.get("token_embd.weight")], ["Q8_0", "F16"]);
  const tiedOut = chooseTypes("Q4_K_M", model(4, { tied: true }), llama(4, { outputTensorType: "Q8_0" }));
  assert.equal(tiedOut.get("token_embd.weight"), "Q8_0", "a tied embedding follows --output-tensor-type");
  assert.equal(
    chooseTypes("Q4_K_M", [{ name: "blk.0.x.weight", ne: [256, 1, 1] }], llama(1)).get("blk.0.x.weight"),
    "F32",
    "trailing dimensions of 1 do not count: a 1-D tensor",
  );
});

test("quantizeOrder: outside tensors first by name, then by layer number, then by name", () => {
  const names = ["blk.10.a", "blk.2.b", "output_norm.weight", "blk.2.a", "token_embd.weight", "output.weight"];
  assert.deepEqual(
    quantizeOrder(names.map((name) => ({ name }))).map((t) => t.name),
    ["output.weight", "output_norm.weight", "token_embd.weight", "blk.2.a", "blk.2.b", "blk.10.a"],
  );
});

test("bad overrides, file types, architectures and tensor lists are refused with a clear message", () => {
  const refuse = (fn: () => unknown, re: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof UserError && re.test(e.message));
  refuse(() => parseTensorTypeOverride("ffn_down"), /--tensor-type ffn_down: expected REGEX=TYPE/);
  refuse(() => parseTensorTypeOverride("=q4_k"), /the tensor name pattern is empty/);
  refuse(() => parseTensorTypeOverride("ffn_down="), /unknown type ""/);
  refuse(() => parseTensorTypeOverride("ffn_down=q4_k_m"), /unknown type "q4_k_m" \(known: F32, F16/);
  refuse(() => parseTensorTypeOverride("ffn_(down=q4_k"), /invalid regular expression/);
  refuse(() => chooseTypes("Q3_K_M" as Ftype, model(1), llama(1)), /unknown file type "Q3_K_M"/);
  refuse(() => chooseTypes("toString" as Ftype, model(1), llama(1)), /unknown file type/);
  refuse(() => chooseTypes("Q4_K_M", model(1), { ...llama(1), arch: "falcon" }), /architecture "falcon"/);
  refuse(() => chooseTypes("Q4_K_M", model(1), llama(0)), /nLayers must be a positive integer, got 0/);
  refuse(() => chooseTypes("Q4_K_M", [...model(1), ...model(1)], llama(1)), /tensor output.weight is listed twice/);
  refuse(
    () => chooseTypes("Q4_K_M", [{ name: "blk.0.ffn_down_exps.weight", ne: [256, 256, 8] }], llama(1)),
    /expert \(3-D\) tensors are not supported/,
  );
});
