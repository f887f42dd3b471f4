// tokenizer.json (+ tokenizer_config.json) → GGUF tokenizer metadata that llama.cpp loads and tokenizes with as
// the tokenizer.json does, decided as llama.cpp's converter (convert_hf_to_gguf.py) decides it where that is
// faithful. Two kinds can be written (everything else is refused before anything is written):
//
// - byte-level BPE → "gpt2": tokens, types, merges, and `pre` named by the converter's check-text hash, or else
//   by the pre-tokenizer's split regexes when they are exactly those of a llama.cpp pre-tokenizer;
// - SentencePiece-style BPE with byte fallback (Llama-2, Mistral) → "llama": llama.cpp's SentencePiece merges
//   any pair whose concatenation is a token, by score. The converter writes -1000 for every score when it has no
//   tokenizer.model (which llama.cpp then tokenizes differently); here the scores come from the merge ranks, after
//   checking that llama.cpp's rule then picks exactly the merges the tokenizer.json makes.
import { createHash } from "node:crypto";
import { CheckpointError } from "../errors.js";
import { libraryTokenizer, textTokenizer, type Json } from "./tokenizer.js";
import { TokenType } from "./gguf-vocab.js";
import {
  CHECK_TEXT,
  GPT2_REGEX,
  llamaFormOfRegex,
  llamaPreTokenizer,
  preNameForHash,
  preNameForSplits,
} from "./llama-pretokenizers.js";

export type GgufValueType = "string" | "u32" | "i32" | "f32" | "bool" | "string[]" | "i32[]" | "f32[]";

/** One metadata key for a GGUF writer (f32 values are exactly representable as float32). */
export interface GgufMetadataEntry {
  key: string;
  type: GgufValueType;
  value: string | number | boolean | string[] | number[];
}

export interface GgufTokenizerMetadataOptions {
  /** Rows of the model's embedding (config.json vocab_size): ids without a token become "[PAD<id>]", unused. */
  vocabSize?: number;
  /** The model's config.json: vocab_size, and bos/eos/… token ids the tokenizer files leave unset. */
  modelConfig?: Json;
  /**
   * Also write byte-level tokenizers that llama.cpp only approximates, as convert_hf_to_gguf.py does: an NFC
   * normalizer (Qwen2) is dropped, and a pre-tokenizer named by its check-text hash whose splits llama.cpp does
   * not reproduce exactly (GPT-4o- and Tekken-style regexes: llama.cpp tells upper from lower case only in ASCII
   * and leaves combining marks out of words). Default false: those are refused.
   */
  approximate?: boolean;
}

const SPECIAL_KEYS: [string, string][] = [
  ["bos", "bos_token_id"],
  ["eos", "eos_token_id"],
  ["unk", "unknown_token_id"],
  ["sep", "seperator_token_id"],
  ["pad", "padding_token_id"],
  ["cls", "cls_token_id"],
  ["mask", "mask_token_id"],
];

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** GGUF tokenizer metadata for a tokenizer.json and its tokenizer_config.json; errors name `file`. */
export function ggufTokenizerMetadata(
  tokenizerJson: Json,
  tokenizerConfig: Json,
  file: string,
  options: GgufTokenizerMetadataOptions = {},
): GgufMetadataEntry[] {
  const fail = (code: string, message: string) => new CheckpointError(file, message, code);
  const model = (tokenizerJson.model ?? {}) as Json;
  if (model.type !== "BPE") {
    throw fail(
      "TOKENIZER_GGUF_UNSUPPORTED_MODEL",
      `a ${String(model.type)} tokenizer cannot be written to GGUF here (only BPE: byte-level, or with byte fallback)`,
    );
  }
  for (const key of ["dropout", "continuing_subword_prefix", "end_of_word_suffix"]) {
    if (model[key] !== undefined && model[key] !== null && model[key] !== "") {
      throw fail("TOKENIZER_GGUF_UNSUPPORTED_MODEL", `BPE ${key} ${JSON.stringify(model[key])} has no GGUF form`);
    }
  }
  const sentencePiece = model.byte_fallback === true;
  const lib = libraryTokenizer(tokenizerJson, tokenizerConfig, file);
  const text = textTokenizer(lib, tokenizerJson, tokenizerConfig, file);

  // Vocabulary: the model's entries and the added tokens, one text per id and one id per text.
  const added = ((tokenizerJson.added_tokens ?? []) as Json[]).map((t): AddedToken => ({
    id: t.id as number,
    content: t.content as string,
    special: t.special === true,
  }));
  const byId = new Map<number, string>();
  const put = (id: unknown, t: string) => {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw fail("TOKENIZER_GGUF_BAD_VOCAB", `token ${JSON.stringify(t)} has id ${id}`);
    }
    const old = byId.get(id as number);
    if (old !== undefined && old !== t) {
      throw fail("TOKENIZER_GGUF_BAD_VOCAB", `id ${id} is both ${JSON.stringify(old)} and ${JSON.stringify(t)}`);
    }
    byId.set(id as number, t);
  };
  for (const [t, id] of Object.entries((model.vocab ?? {}) as Record<string, unknown>)) put(id, t);
  for (const t of added) put(t.id, t.content);
  let maxId = -1;
  for (const id of byId.keys()) maxId = Math.max(maxId, id);
  const configSize = options.modelConfig?.vocab_size;
  const vocabSize = options.vocabSize ?? (Number.isInteger(configSize) ? (configSize as number) : maxId + 1);
  if (maxId >= vocabSize) {
    throw fail("TOKENIZER_GGUF_BAD_VOCAB", `token id ${maxId} does not fit a vocabulary of ${vocabSize}`);
  }

  const addedById = new Map(added.map((t) => [t.id, t]));
  const tokens: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const t = byId.get(id);
    const a = addedById.get(id);
    if (t === undefined) {
      (tokens.push(`[PAD${id}]`), types.push(TokenType.UNUSED));
    } else if (a && (a.special || looksSpecial(t))) {
      (tokens.push(t), types.push(TokenType.CONTROL));
    } else if (a) {
      (tokens.push(t.replaceAll("\u2581", " ")), types.push(TokenType.USER_DEFINED)); // llama.cpp matches raw text
    } else {
      (tokens.push(t), types.push(sentencePiece && /^<0x[0-9A-Fa-f]{2}>$/.test(t) ? TokenType.BYTE : TokenType.NORMAL));
    }
  }
  const seen = new Map<string, number>();
  tokens.forEach((t, id) => {
    if (seen.has(t)) {
      const message = `token ${JSON.stringify(t)} would appear twice (ids ${seen.get(t)}, ${id})`;
      throw fail("TOKENIZER_GGUF_BAD_VOCAB", message);
    }
    seen.set(t, id);
  });

  // Special token ids: from tokenizer_config.json's *_token (looked up among the added tokens), then config.json.
  const ids = new Map<string, number>();
  for (const [typ] of SPECIAL_KEYS) {
    const content = tokenContent(tokenizerConfig[`${typ}_token`]);
    const id = content === undefined ? undefined : added.find((t) => t.content === content)?.id;
    if (id !== undefined) ids.set(typ, id);
  }
  for (const [typ] of SPECIAL_KEYS) {
    const id = options.modelConfig?.[`${typ}_token_id`];
    if (!ids.has(typ) && Number.isInteger(id) && (id as number) >= 0 && (id as number) < vocabSize) {
      ids.set(typ, id as number);
    }
  }

  // add_bos / add_eos: what the tokenizer does around a text.
  const core: number[] = lib.encode("a", { add_special_tokens: false }).ids;
  const full = text.encode("a");
  const start = full.findIndex((_, i) => core.every((id, j) => full[i + j] === id));
  const prefix = full.slice(0, Math.max(0, start));
  const suffix = full.slice(start + core.length);
  const edge = (extra: number[], typ: string, where: string) => {
    if (extra.length === 0) return false;
    if (start < 0 || extra.length > 1 || extra[0] !== ids.get(typ)) {
      throw fail(
        "TOKENIZER_GGUF_SPECIAL",
        `the tokenizer adds ${JSON.stringify(extra)} at the ${where} of a text, ` +
          `which is not its ${typ}_token (${ids.get(typ) ?? "none"}): llama.cpp can add only that`,
      );
    }
    return true;
  };
  const addBos = edge(prefix, "bos", "start");
  const addEos = edge(suffix, "eos", "end");

  const entries: GgufMetadataEntry[] = [];
  const push = (key: string, type: GgufValueType, value: GgufMetadataEntry["value"]) =>
    entries.push({ key, type, value });
  const merges = mergePairs(model.merges, fail);
  if (sentencePiece) {
    const addSpacePrefix = sentencePieceNormalizer(tokenizerJson, fail);
    const scores = sentencePieceScores(tokens, types, merges, byId, fail);
    push("tokenizer.ggml.model", "string", "llama");
    push("tokenizer.ggml.pre", "string", "default");
    push("tokenizer.ggml.tokens", "string[]", tokens);
    push("tokenizer.ggml.scores", "f32[]", scores);
    push("tokenizer.ggml.token_type", "i32[]", types);
    if (!addSpacePrefix) push("tokenizer.ggml.add_space_prefix", "bool", false);
  } else {
    const pre = byteLevelPre(tokenizerJson, text.encode(CHECK_TEXT), merges.length, options.approximate === true, fail);
    push("tokenizer.ggml.model", "string", "gpt2");
    push("tokenizer.ggml.pre", "string", pre);
    push("tokenizer.ggml.tokens", "string[]", tokens);
    push("tokenizer.ggml.token_type", "i32[]", types);
    // convert_hf_to_gguf writes a space inside a merge half as U+0120, the byte alphabet's space.
    const half = (s: string) => s.replaceAll(" ", "\u0120");
    push(
      "tokenizer.ggml.merges",
      "string[]",
      merges.map(([a, b]) => `${half(a)} ${half(b)}`),
    );
  }
  for (const [typ, key] of SPECIAL_KEYS) if (ids.has(typ)) push(`tokenizer.ggml.${key}`, "u32", ids.get(typ)!);
  push("tokenizer.ggml.add_bos_token", "bool", addBos);
  push("tokenizer.ggml.add_eos_token", "bool", addEos);
  for (const e of chatTemplates(tokenizerConfig.chat_template, fail)) entries.push(e);
  return entries;
}

/** convert_hf_to_gguf.py's does_token_look_special: added tokens it makes control tokens though not special. */
function looksSpecial(t: string): boolean {
  return (
    ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].includes(t) ||
    (t.startsWith("<|") && t.endsWith("|>")) ||
    (t.startsWith("<｜") && t.endsWith("｜>")) ||
    (t.startsWith("<unused") && t.endsWith(">"))
  );
}

function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  const content = (value as Json | null)?.content;
  return typeof content === "string" ? content : undefined;
}

type Fail = (code: string, message: string) => CheckpointError;

function mergePairs(raw: unknown, fail: Fail): [string, string][] {
  if (!Array.isArray(raw)) throw fail("TOKENIZER_GGUF_UNSUPPORTED_MODEL", "BPE model without a merges list");
  return raw.map((m): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") return [m[0], m[1]];
    const space = typeof m === "string" ? m.indexOf(" ") : -1;
    if (space < 0) {
      throw fail("TOKENIZER_GGUF_UNSUPPORTED_MODEL", `merge ${JSON.stringify(m)} is not "a b" or ["a", "b"]`);
    }
    return [m.slice(0, space), m.slice(space + 1)];
  });
}

/**
 * The `pre` to write for a byte-level tokenizer: the llama.cpp pre-tokenizer that splits exactly as this one, by
 * the name convert_hf_to_gguf.py gives its check-text hash (sha256 of Python's str() of the ids, BOS included)
 * when that names the same kind. Without merges any split gives the same ids: "default" unless the hash names one.
 */
function byteLevelPre(tokenizerJson: Json, checkIds: number[], mergeCount: number, approximate: boolean, fail: Fail) {
  const approximation = (what: string) =>
    fail(
      "TOKENIZER_GGUF_APPROXIMATE",
      `${what}; llama.cpp would tokenize differently (the approximate option ` +
        "writes it anyway, as convert_hf_to_gguf.py does)",
    );
  const normalizer = tokenizerJson.normalizer as Json | null | undefined;
  if (normalizer && normalizer.type !== "NFC") {
    throw fail("TOKENIZER_GGUF_UNSUPPORTED_PRE", `normalizer ${normalizer.type} has no llama.cpp byte-level form`);
  }
  if (normalizer && !approximate) throw approximation("llama.cpp does not NFC-normalize text");
  const splits = byteLevelSplits(tokenizerJson.pre_tokenizer as Json | null | undefined);
  if (!splits) {
    throw fail(
      "TOKENIZER_GGUF_UNSUPPORTED_PRE",
      "the pre-tokenizer is not byte-level (it has no ByteLevel step " + "without a prefix space)",
    );
  }
  const hash = createHash("sha256")
    .update(`[${checkIds.join(", ")}]`)
    .digest("hex");
  const named = preNameForHash(hash);
  const ignoreMerges = (tokenizerJson.model as Json).ignore_merges === true;
  const byRegex = splits.regexes && preNameForSplits(splits.regexes, ignoreMerges);
  if (mergeCount === 0 && !ignoreMerges) return named ?? "default"; // no merges: every split gives the same ids
  // The hash names a whole tokenizer (vocabulary too), the splits only the pre-tokenizer: where both name one,
  // the splits decide which kind llama.cpp must run, the hash the name written.
  if (byRegex) return named && llamaPreTokenizer(named) === llamaPreTokenizer(byRegex) ? named : byRegex;
  if (named && approximate) return named;
  if (named) {
    throw approximation(`the pre-tokenizer is convert_hf_to_gguf.py's "${named}", which llama.cpp approximates`);
  }
  throw fail(
    "TOKENIZER_GGUF_UNSUPPORTED_PRE",
    `no llama.cpp pre-tokenizer splits as this one (check-text hash ${hash}, ignore_merges ${ignoreMerges}, splits ` +
      `${splits.regexes ? JSON.stringify(splits.regexes) : "not regexes"})`,
  );
}

/**
 * The regexes a byte-level pre-tokenizer splits with, in llama.cpp's form (`regexes` undefined when some step is
 * not a plain regex split); undefined when it is not byte-level (no final ByteLevel step, or one with a prefix
 * space, which llama.cpp never adds).
 */
function byteLevelSplits(pre: Json | null | undefined): { regexes?: string[] } | undefined {
  const steps = !pre ? [] : pre.type === "Sequence" ? ((pre.pretokenizers ?? []) as Json[]) : [pre];
  const last = steps.at(-1);
  if (!last || last.type !== "ByteLevel" || last.add_prefix_space === true) return undefined;
  let regexes: string[] | undefined = [];
  for (const step of steps.slice(0, -1)) {
    const pattern = (step.pattern ?? {}) as Json;
    const isolated = step.behavior === "Isolated" && step.invert !== true;
    if (step.type === "Split" && typeof pattern.Regex === "string" && isolated) {
      regexes?.push(llamaFormOfRegex(pattern.Regex));
    } else if (step.type === "Digits") {
      regexes?.push(step.individual_digits === true ? "\\p{N}" : "\\p{N}+");
    } else {
      regexes = undefined;
    }
  }
  if (last.use_regex !== false) regexes?.push(GPT2_REGEX);
  return { regexes };
}

/** SentencePiece text handling as llama.cpp does it: "▁" for spaces, and one prepended (true) or not (false). */
function sentencePieceNormalizer(tokenizerJson: Json, fail: Fail): boolean {
  const n = tokenizerJson.normalizer as Json | null | undefined;
  const isReplace = (x: Json | undefined) =>
    x?.type === "Replace" && (x.pattern as Json | undefined)?.String === " " && x.content === "\u2581";
  const steps = n?.type === "Sequence" ? ((n.normalizers ?? []) as Json[]) : n ? [n] : [];
  const prepend =
    steps.length === 2 && steps[0].type === "Prepend" && steps[0].prepend === "\u2581" && isReplace(steps[1]);
  // A split on " " after all spaces became "▁" splits nothing (Gemma's tokenizer.json has one).
  const pre = tokenizerJson.pre_tokenizer as Json | null | undefined;
  const noOp = pre?.type === "Split" && (pre.pattern as Json | undefined)?.String === " " && pre.invert !== true;
  if ((pre && !noOp) || !(prepend || (steps.length === 1 && isReplace(steps[0])))) {
    throw fail(
      "TOKENIZER_GGUF_UNSUPPORTED_PRE",
      "llama.cpp's SentencePiece writes spaces as \u2581 and prepends one " +
        'at the start and after every special token: only the normalizer [Prepend \u2581, Replace " " → \u2581] ' +
        "(or the Replace alone) with no pre-tokenizer does the same (a Metaspace pre-tokenizer does not)",
    );
  }
  return prepend;
}

/**
 * Scores that make llama.cpp's SentencePiece rule (merge the adjacent pair whose concatenation is the
 * highest-scoring token) pick the tokenizer.json's merges: a token made by merges scores −(rank of its first
 * merge + 1), others 0. Refused where no scores can: a token's merges not adjacent in rank, or a pair llama.cpp
 * would merge that the tokenizer.json never does.
 */
function sentencePieceScores(
  tokens: string[],
  types: number[],
  merges: [string, string][],
  hfById: Map<number, string>,
  fail: Fail,
): number[] {
  const hfIds = new Map([...hfById].map(([id, t]) => [t, id]));
  const firstRank = new Map<number, number>();
  const lastRank = new Map<number, number>();
  const pairs = new Set<string>();
  merges.forEach(([a, b], rank) => {
    const id = hfIds.get(a + b);
    if (id === undefined) throw fail("TOKENIZER_GGUF_MERGES", `merge "${a} ${b}" gives no token`);
    if (!firstRank.has(id)) firstRank.set(id, rank);
    lastRank.set(id, rank);
    pairs.add(JSON.stringify([a, b]));
  });
  if (merges.length >= 2 ** 24) throw fail("TOKENIZER_GGUF_MERGES", `${merges.length} merges: ranks beyond float32`);
  const groups = [...firstRank].sort((x, y) => x[1] - y[1]);
  groups.forEach(([id], i) => {
    const next = groups[i + 1];
    if (next && lastRank.get(id)! > next[1]) {
      throw fail(
        "TOKENIZER_GGUF_MERGES",
        `the merges making ${JSON.stringify(hfById.get(id))} are not adjacent in ` +
          `rank (${JSON.stringify(hfById.get(next[0]))} comes between): no token scores give that order`,
      );
    }
  });
  // Every split of a token into halves llama.cpp can form (single characters, or tokens formed so) is a merge for
  // llama.cpp; it must be one of the tokenizer.json's too. Special tokens are split out before, unless their text
  // can appear only after spaces become "▁".
  const chars = [...hfById].map(([id, t]) => ({ id, c: Array.from(t) })).sort((x, y) => x.c.length - y.c.length);
  const formable = new Set<string>();
  for (const { id, c } of chars) {
    const partitioned = types[id] === TokenType.CONTROL || types[id] === TokenType.USER_DEFINED;
    for (let k = 1; k < c.length; k++) {
      const left = c.slice(0, k).join("");
      const right = c.slice(k).join("");
      if (!(k === 1 || formable.has(left)) || !(k === c.length - 1 || formable.has(right))) continue;
      formable.add(c.join(""));
      if (!pairs.has(JSON.stringify([left, right])) && !(partitioned && !c.includes("\u2581"))) {
        throw fail(
          "TOKENIZER_GGUF_MERGES",
          `llama.cpp would merge "${left}" + "${right}" into token ${id}, ` + "which the tokenizer.json never does",
        );
      }
    }
  }
  return tokens.map((_, id) => (firstRank.has(id) ? -(firstRank.get(id)! + 1) : 0));
}

/** tokenizer_config.json's chat_template: a string, or a list of {name, template} ("default" is the main one). */
function chatTemplates(value: unknown, fail: Fail): GgufMetadataEntry[] {
  if (value === undefined || value === null) return [];
  if (typeof value === "string") return [{ key: "tokenizer.chat_template", type: "string", value }];
  if (!Array.isArray(value)) throw fail("TOKENIZER_GGUF_CHAT_TEMPLATE", "chat_template is neither a string nor a list");
  const entries: GgufMetadataEntry[] = [];
  const names: string[] = [];
  for (const choice of value as Json[]) {
    // As the converter: names keep [A-Za-z0-9] and write "_" for anything else.
    const name = String(choice?.name ?? "").replace(/[^A-Za-z0-9]/g, "_");
    if (!name || typeof choice.template !== "string") continue;
    if (name === "default") entries.unshift({ key: "tokenizer.chat_template", type: "string", value: choice.template });
    else {
      names.push(name);
      entries.push({ key: `tokenizer.chat_template.${name}`, type: "string", value: choice.template });
    }
  }
  if (names.length) entries.push({ key: "tokenizer.chat_templates", type: "string[]", value: names });
  return entries;
}
