// The tokenizer metadata a GGUF export carries (llama.cpp will not load a file without a vocabulary), decided
// before any byte is written:
//   - a folder with tokenizer.json: ggufTokenizerMetadata (byte-level BPE → "gpt2", SentencePiece-style BPE
//     → "llama"), which refuses what llama.cpp would tokenize differently;
//   - a GGUF source: its own tokenizer.* keys, copied;
//   - neither, and only when asked for (`standIn`): the stand-in the shared GGUF fixtures carry — a byte-level
//     vocabulary of exactly vocab_size tokens (id i < 256 is byte i, ids ≥ 256 "<tN>", the config's bos/eos ids
//     "<s>"/"</s>" as control tokens, one unreachable merge). The model's token ids keep their meaning; text put
//     through that vocabulary does not (llama.cpp needs one to load the file, so token ids can be run).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError } from "../errors.js";
import { readJsonObject } from "../checkpoint/files.js";
import { ggufTokenizerMetadata, type GgufMetadataEntry } from "../tokenizer/gguf-vocab-write.js";
import { byteLevelChar, TokenType } from "../tokenizer/gguf-vocab.js";
import { GgufCheckpoint } from "../gguf/source.js";
import type { GgufKv } from "../gguf/container.js";
import type { Model } from "../engine/model.js";

export interface VocabularyOptions {
  /** Write the stand-in byte-level vocabulary when the model has no tokenizer.json. */
  standIn?: boolean;
  /** Pass byte-level tokenizers llama.cpp only approximates (see GgufTokenizerMetadataOptions.approximate). */
  approximate?: boolean;
}

export type VocabularyKind = "tokenizer.json" | "gguf" | "stand-in";

export interface ExportVocabulary {
  kind: VocabularyKind;
  entries: [string, GgufKv][];
}

export function exportVocabulary(model: Model, o: VocabularyOptions = {}): ExportVocabulary {
  const { source, spec } = model;
  if (source instanceof GgufCheckpoint) {
    const entries = [...source.metadata].filter(([key]) => key.startsWith("tokenizer."));
    if (entries.length) return { kind: "gguf", entries };
  }
  const file = join(model.path, "tokenizer.json");
  if (!(source instanceof GgufCheckpoint) && existsSync(file)) {
    const json = readJsonObject(file, "BAD_TOKENIZER");
    const configFile = join(model.path, "tokenizer_config.json");
    const config = existsSync(configFile) ? readJsonObject(configFile, "BAD_TOKENIZER") : {};
    const entries = ggufTokenizerMetadata(json, config, file, {
      vocabSize: spec.vocab,
      modelConfig: source.config,
      approximate: o.approximate,
    });
    return { kind: "tokenizer.json", entries: entries.map(toKv) };
  }
  if (!o.standIn) {
    throw new CheckpointError(
      model.path,
      "has no tokenizer.json, and llama.cpp loads no GGUF without a vocabulary: " +
        "pass --stand-in-vocab to write a placeholder byte-level one (token ids keep their meaning, text does not)",
      "GGUF_EXPORT_NO_TOKENIZER",
    );
  }
  const id = (key: string) => {
    const v = source.config[key];
    const first = Array.isArray(v) ? v[0] : v;
    return Number.isInteger(first) && first >= 0 && first < spec.vocab ? (first as number) : undefined;
  };
  return { kind: "stand-in", entries: standInVocabulary(spec.vocab, id("bos_token_id"), id("eos_token_id")) };
}

/** The shared fixtures' stand-in vocabulary (see the header). */
export function standInVocabulary(vocab: number, bos?: number, eos?: number): [string, GgufKv][] {
  const tokens = Array.from({ length: vocab }, (_, i) => (i < 256 ? byteLevelChar(i) : `<t${i}>`));
  const types: number[] = new Array(vocab).fill(TokenType.NORMAL);
  for (const [special, text] of [
    [bos, "<s>"],
    [eos, "</s>"],
  ] as const) {
    if (special === undefined) continue;
    tokens[special] = text;
    types[special] = TokenType.CONTROL;
  }
  const entries: [string, GgufKv][] = [
    ["tokenizer.ggml.model", { type: "STRING", value: "gpt2" }],
    ["tokenizer.ggml.pre", { type: "STRING", value: "default" }],
    ["tokenizer.ggml.tokens", { type: "ARRAY", itemType: "STRING", value: tokens }],
    ["tokenizer.ggml.token_type", { type: "ARRAY", itemType: "INT32", value: types }],
    // llama.cpp's BPE vocabulary requires a merges array; this one can never apply.
    ["tokenizer.ggml.merges", { type: "ARRAY", itemType: "STRING", value: ["<t0> <t1>"] }],
  ];
  if (bos !== undefined) entries.push(["tokenizer.ggml.bos_token_id", { type: "UINT32", value: bos }]);
  if (eos !== undefined) entries.push(["tokenizer.ggml.eos_token_id", { type: "UINT32", value: eos }]);
  entries.push(["tokenizer.ggml.add_bos_token", { type: "BOOL", value: false }]);
  entries.push(["tokenizer.ggml.add_eos_token", { type: "BOOL", value: false }]);
  return entries;
}

const ITEM_TYPES = { string: "STRING", u32: "UINT32", i32: "INT32", f32: "FLOAT32", bool: "BOOL" } as const;

/** A tokenizer writer's entry as the GGUF writer takes it. */
export function toKv(e: GgufMetadataEntry): [string, GgufKv] {
  if (e.type.endsWith("[]")) {
    const itemType = ITEM_TYPES[e.type.slice(0, -2) as keyof typeof ITEM_TYPES];
    return [e.key, { type: "ARRAY", itemType, value: e.value as (string | number)[] }];
  }
  return [e.key, { type: ITEM_TYPES[e.type as keyof typeof ITEM_TYPES], value: e.value as string | number | boolean }];
}
