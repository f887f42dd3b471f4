// Text ⇄ token ids for a Hugging Face model folder, via @huggingface/tokenizers (tokenizer.json + tokenizer_config.json).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { UserError } from "../errors.js";
import { readJsonObject as readJson } from "../checkpoint/files.js";

export interface TextTokenizer {
  /** Token ids for text, with BOS (and whatever the tokenizer's post-processor adds) as the model expects. */
  encode(text: string): number[];
  /** Text for ids; special tokens (BOS, EOS, …) are left out, so decode(encode(text)) gives text back. */
  decode(ids: number[]): string;
  /** One token as text: what it decodes to for byte-level vocabularies (" " rather than "Ġ"), else its stored
   * form ("▁Apple", "<s>", "<0x0A>"). Control characters are kept: a table shows it with JSON.stringify. */
  tokenText(id: number): string;
}

export type Json = Record<string, unknown>;

const readJsonObject = (file: string): Json => readJson(file, "BAD_TOKENIZER");

/** `bos_token` in tokenizer_config.json is either a string or an AddedToken object {content: ...}. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Json).content === "string")
    return (value as Json).content as string;
  return undefined;
}

/** The sections a tokenizer model needs, by type, as the library reads them (checked so that a broken file is named). */
function checkModel(model: unknown, label: string): void {
  if (!model || typeof model !== "object" || Array.isArray(model)) throw new UserError('no "model" section', label);
  const m = model as Json;
  const isObject = (v: unknown) => !!v && typeof v === "object" && !Array.isArray(v);
  const need: Record<string, [string, (v: unknown) => boolean, string][]> = {
    BPE: [
      ["vocab", isObject, "an object of token → id"],
      ["merges", Array.isArray, "a list"],
    ],
    WordPiece: [["vocab", isObject, "an object of token → id"]],
    WordLevel: [["vocab", isObject, "an object of token → id"]],
    Unigram: [["vocab", Array.isArray, "a list of [token, score]"]],
  };
  const type = typeof m.type === "string" ? m.type : "BPE";
  const fields = need[type];
  if (!fields)
    throw new UserError(`model type ${JSON.stringify(m.type)} is not one of ${Object.keys(need).join(", ")}`, label);
  for (const [field, ok, what] of fields)
    if (!ok(m[field])) throw new UserError(`"model.${field}" of a ${type} model must be ${what}`, label);
}

/** Loads `tokenizer.json` (+ `tokenizer_config.json` when present) from a model folder; undefined without tokenizer.json. */
export function loadTokenizer(folder: string): TextTokenizer | undefined {
  const tokenizerFile = join(folder, "tokenizer.json");
  if (!existsSync(tokenizerFile)) return undefined;
  const configFile = join(folder, "tokenizer_config.json");
  const tokenizerJson = readJsonObject(tokenizerFile);
  const config = existsSync(configFile) ? readJsonObject(configFile) : {};
  return tokenizerFromJson(tokenizerJson, config, tokenizerFile, configFile);
}

/**
 * A tokenizer from in-memory tokenizer.json and tokenizer_config.json objects; errors name `label` (the
 * tokenizer.json, or whatever the objects were built from) and `configLabel` (the config's source).
 */
export function tokenizerFromJson(
  tokenizerJson: Json,
  config: Json,
  label: string,
  configLabel = label,
): TextTokenizer {
  return textTokenizer(libraryTokenizer(tokenizerJson, config, label), tokenizerJson, config, configLabel);
}

/** The library's tokenizer for the objects, with the keys it insists on filled in; UserError naming `label`. */
export function libraryTokenizer(tokenizerJson: Json, config: Json, label: string): Tokenizer {
  // The library insists that these keys exist (null is fine); older or hand-written files may leave some out.
  const json: Json = { added_tokens: [], ...tokenizerJson };
  for (const key of ["normalizer", "pre_tokenizer", "post_processor", "decoder"]) json[key] ??= null;
  checkModel(json.model, label);
  try {
    return new Tokenizer(json, config);
  } catch (e) {
    throw new UserError(`cannot load tokenizer: ${(e as Error).message}`, label);
  }
}

/** TextTokenizer over a library tokenizer built from `tokenizerJson` and `config` (named `configLabel`). */
export function textTokenizer(tok: Tokenizer, tokenizerJson: Json, config: Json, configLabel: string): TextTokenizer {
  // The JS library adds BOS only through tokenizer.json's post_processor; Python's LlamaTokenizerFast also
  // honours add_bos_token from tokenizer_config.json, so do the same here when the post-processor does not.
  // (Decided once, on the empty text, so that a text starting with a literal "<s>" still gets its own BOS.)
  let bosId: number | undefined;
  if (config.add_bos_token === true) {
    const bos = tokenContent(config.bos_token);
    bosId = bos === undefined ? undefined : tok.token_to_id(bos);
    if (bosId === undefined) {
      const bosText = JSON.stringify(config.bos_token);
      throw new UserError(`add_bos_token is true but bos_token ${bosText} is not in the vocabulary`, configLabel);
    }
    if (tok.encode("").ids[0] === bosId) bosId = undefined; // the post-processor adds it already
  }

  const byteLevel = (tokenizerJson.decoder as { type?: string } | null)?.type === "ByteLevel";
  const addedTokens = (tokenizerJson.added_tokens ?? []) as { content: string; special?: boolean }[];
  const special = new Set(addedTokens.filter((t) => t.special).map((t) => t.content));

  return {
    encode(text: string): number[] {
      const ids = tok.encode(text).ids;
      return bosId === undefined ? ids : [bosId, ...ids];
    },
    decode(ids: number[]): string {
      // The library throws on an empty array.
      return ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: true });
    },
    tokenText(id: number): string {
      const token = tok.id_to_token(id);
      if (token === undefined) return `<id ${id}>`;
      // Byte-level vocabularies store bytes as stand-in characters ("Ġ" for a space): show the text,
      // unless the token is a special one or only part of a UTF-8 character.
      if (byteLevel && !special.has(token)) {
        const text = tok.decode([id], { skip_special_tokens: false });
        if (text.length && !text.includes("\ufffd")) return text;
      }
      return token;
    },
  };
}
