// --chat on a GGUF file: the template and the bos/eos tokens come from the file's own metadata
// (tokenizer.chat_template, tokenizer.ggml.tokens at tokenizer.ggml.bos_token_id / eos_token_id). The fixture files
// carry no template, so one is added here to a copy of planted-llama-256.F32.gguf, every tensor kept as it was.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFile, type GgufKv } from "../src/gguf/container.js";
import { writeGguf } from "../src/gguf/writer.js";
import { Model } from "../src/engine/model.js";
import { chatPromptIds, chatTemplateFor } from "../src/eval/tokens.js";
import { UserError } from "../src/errors.js";
import { fixturePath, skipWithoutFixtures } from "./fixtures.js";

const scratch = mkdtempSync(join(tmpdir(), "sw-chat-gguf-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

const TEMPLATE =
  "{{ bos_token }}[{{ messages[0]['content'] }}]{% if add_generation_prompt %}>{% endif %}{{ eos_token }}";

/** A copy of the file with these metadata entries changed (undefined: removed). */
function withMetadata(name: string, changes: Record<string, GgufKv | undefined>): string {
  const path = join(fixturePath("gguf"), "planted-llama-256.F32.gguf");
  const file = readGgufFile(path);
  const bytes = readFileSync(path);
  const meta = new Map(file.metadata);
  for (const [k, v] of Object.entries(changes)) v === undefined ? meta.delete(k) : meta.set(k, v);
  const out = join(scratch, name);
  const tensors = file.tensors.map((t) => ({
    name: t.name,
    type: t.type,
    ne: t.ne,
    data: bytes.subarray(t.start, t.start + t.byteLength),
  }));
  writeGguf(out, meta, tensors);
  return out;
}

test("a GGUF's chat template, with the bos and eos tokens its vocabulary names", { skip: skipWithoutFixtures }, () => {
  const path = withMetadata("chat.gguf", { "tokenizer.chat_template": { type: "STRING", value: TEMPLATE } });
  const meta = readGgufFile(path).metadata;
  const tokens = meta.get("tokenizer.ggml.tokens")!.value as string[];
  const bos = tokens[Number(meta.get("tokenizer.ggml.bos_token_id")!.value)];
  const eos = tokens[Number(meta.get("tokenizer.ggml.eos_token_id")!.value)];
  assert.ok(bos && eos && bos !== eos, `${bos} ${eos}`);
  const model = Model.open(path);
  try {
    const chat = chatTemplateFor(model);
    assert.deepEqual(chat, { template: TEMPLATE, label: path, options: { bosToken: bos, eosToken: eos } });
    // One user turn, the generation prompt on, through the given encoder.
    const seen: string[] = [];
    const ids = chatPromptIds((text) => (seen.push(text), [...text].map((c) => c.charCodeAt(0))), chat, "hi");
    assert.deepEqual(seen, [`${bos}[hi]>${eos}`]);
    assert.deepEqual(
      ids,
      [...`${bos}[hi]>${eos}`].map((c) => c.charCodeAt(0)),
    );
  } finally {
    model.close();
  }
});

test(
  "a GGUF without a template is refused naming the file; a 64-bit bos id names its token, a missing eos none",
  {
    skip: skipWithoutFixtures,
  },
  () => {
    const plainPath = join(fixturePath("gguf"), "planted-llama-256.F32.gguf");
    const plain = Model.open(plainPath);
    try {
      assert.throws(
        () => chatTemplateFor(plain),
        (e: unknown) => {
          assert.ok(e instanceof UserError);
          assert.equal(e.message, `${plainPath}: has no tokenizer.chat_template, so --chat has no template to apply`);
          return true;
        },
      );
    } finally {
      plain.close();
    }
    const original = readGgufFile(plainPath).metadata;
    const bosId = Number(original.get("tokenizer.ggml.bos_token_id")!.value);
    const path = withMetadata("odd.gguf", {
      "tokenizer.chat_template": { type: "STRING", value: TEMPLATE },
      "tokenizer.ggml.bos_token_id": { type: "UINT64", value: BigInt(bosId) },
      "tokenizer.ggml.eos_token_id": undefined,
    });
    const model = Model.open(path);
    try {
      const tokens = original.get("tokenizer.ggml.tokens")!.value as string[];
      assert.deepEqual(chatTemplateFor(model).options, { bosToken: tokens[bosId], eosToken: undefined });
    } finally {
      model.close();
    }
  },
);
