// GGUF tokenizer metadata (`tokenizer.ggml.*`) → a tokenizer that tokenizes as llama.cpp does, by way of a
// tokenizer.json for the project's tokenizer library. Two vocabulary kinds (anything else is refused):
//
// - "gpt2": byte-level BPE. llama.cpp splits the text with its pre-tokenizer regexes, turns each piece into
//   GPT-2's byte alphabet and merges adjacent symbols by merge rank (leftmost first on ties) — what a BPE
//   tokenizer.json does with Split pre-tokenizers and a ByteLevel step.
// - "llama": SentencePiece. llama.cpp prepends a space (at the start and after every special token), writes
//   spaces as "▁" and merges any adjacent pair whose concatenation is a token, highest score first, leftmost on
//   ties; characters no token covers become <0xNN> byte tokens. As a BPE tokenizer.json: one merge for every way
//   of splitting a token into two formable halves, ranked by the token's score, with byte fallback.
//
// Special tokens are split out of the text first (llama.cpp: control and unknown tokens only when parsing
// special tokens, user-defined ones always), with llama.cpp's rewrites of token types by token text.
import type { Tokenizer } from "@huggingface/tokenizers";
import { CheckpointError } from "../errors.js";
import { libraryTokenizer, textTokenizer, type Json, type TextTokenizer } from "./tokenizer.js";
import { llamaPreTokenizer, SUPPORTED_PRE_NAMES, type LlamaPreTokenizer } from "./llama-pretokenizers.js";

/** `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** What a GGUF tokenizer becomes here: the library's objects, and how to finish the library tokenizer. */
export interface GgufTokenizerJson {
  tokenizerJson: Json;
  tokenizerConfig: Json;
  /**
   * SentencePiece only: merge → priority (lower first) by the merged token's score, equal for equal scores, so
   * that ties go to the leftmost pair as in llama.cpp. A tokenizer.json ranks every merge apart, so the library
   * tokenizer's ranks are set from this after loading (see tokenizerFromGguf).
   */
  mergePriority?: Map<string, number>;
}

export interface GgufTokenizerOptions {
  /**
   * Split control (and unknown) tokens such as "<|im_start|>" out of the text, as llama.cpp does with
   * parse_special = true (chat prompts; also what a tokenizer.json does). False: only user-defined tokens are
   * split out and the rest is ordinary text, as llama.cpp's default llama_tokenize(…, parse_special = false).
   * Default true.
   */
  parseSpecial?: boolean;
}

// llama.cpp's token attributes (llama_token_attr), the bits used here.
const ATTR_UNKNOWN = 1 << 0;
const ATTR_CONTROL = 1 << 3;
const ATTR_USER_DEFINED = 1 << 4;
const ATTR_BY_TYPE: Record<number, number> = {
  1: 1 << 2,
  2: ATTR_UNKNOWN,
  3: ATTR_CONTROL,
  4: ATTR_USER_DEFINED,
  5: 1 << 1,
  6: 1 << 5,
};

/** Longest SentencePiece token handled: every split of every token is tried (quadratic in its length). */
const MAX_SPM_TOKEN_CHARS = 1024;

interface Vocab {
  tokens: string[];
  ids: Map<string, number>;
  attrs: number[];
  lstrip: Set<number>;
  rstrip: Set<number>;
}

/** A tokenizer from a GGUF file's metadata (key → value, arrays as arrays or typed arrays); errors name `file`. */
export function tokenizerFromGguf(
  metadata: Record<string, unknown>,
  file: string,
  options: GgufTokenizerOptions = {},
): TextTokenizer {
  const { built, attrs } = build(metadata, file, options);
  const tok = libraryTokenizer(built.tokenizerJson, built.tokenizerConfig, file);
  if (built.mergePriority) setMergePriority(tok, built.mergePriority, file);
  const text = textTokenizer(tok, built.tokenizerJson, built.tokenizerConfig, file);
  if (options.parseSpecial !== false) return text;
  // Control tokens are ordinary vocabulary entries then (not special added tokens): leave them out when decoding.
  return { ...text, decode: (ids) => text.decode(ids.filter((id) => !(attrs[id] & (ATTR_CONTROL | ATTR_UNKNOWN)))) };
}

/** The library's ranks replaced by llama.cpp's priorities (the library keys merges by JSON of the pair). */
function setMergePriority(tok: Tokenizer, priority: Map<string, number>, file: string): void {
  const model = (tok as unknown as { model?: { bpe_ranks?: unknown } }).model;
  if (!(model?.bpe_ranks instanceof Map)) {
    const message = "the tokenizer library has no BPE rank table to set (library changed?)";
    throw new CheckpointError(file, message, "GGUF_TOKENIZER_LIBRARY");
  }
  model.bpe_ranks = priority;
}

/** The tokenizer.json (+ tokenizer_config.json) that tokenizes as llama.cpp does with this GGUF metadata. */
export function ggufTokenizerJson(
  metadata: Record<string, unknown>,
  file: string,
  options: GgufTokenizerOptions = {},
): GgufTokenizerJson {
  return build(metadata, file, options).built;
}

function build(
  metadata: Record<string, unknown>,
  file: string,
  options: GgufTokenizerOptions,
): { built: GgufTokenizerJson; attrs: number[] } {
  const meta = new MetadataReader(metadata, file);
  const model = meta.string("tokenizer.ggml.model", true)!;
  if (model !== "gpt2" && model !== "llama") {
    throw meta.fail(
      "GGUF_TOKENIZER_UNSUPPORTED_MODEL",
      `tokenizer.ggml.model "${model}" is not supported (only "gpt2", byte-level BPE, and "llama", SentencePiece)`,
    );
  }
  let pre: LlamaPreTokenizer | undefined;
  if (model === "gpt2") {
    const name = meta.string("tokenizer.ggml.pre", false);
    pre = llamaPreTokenizer(name);
    if (!pre) {
      throw meta.fail(
        "GGUF_TOKENIZER_UNSUPPORTED_PRE",
        `tokenizer.ggml.pre "${name}" is not a pre-tokenizer supported here (${SUPPORTED_PRE_NAMES.join(", ")})`,
      );
    }
  }
  const vocab = readVocabulary(meta);
  const n = vocab.tokens.length;

  // Special token ids and flags as llama.cpp decides them: defaults by kind, then the file's keys.
  const inRange = (id: number | undefined) => (id !== undefined && id < n ? id : undefined);
  const fileId = (key: string, fallback: number | undefined) =>
    inRange(meta.tokenId(`tokenizer.ggml.${key}`)) ?? fallback;
  const bos = fileId("bos_token_id", inRange(model === "llama" ? 1 : pre!.defaultBos ? 11 : undefined));
  const eos = fileId("eos_token_id", inRange(model === "llama" ? 2 : 11));
  const unk = fileId("unknown_token_id", inRange(model === "llama" ? 0 : undefined));
  const addBos = meta.bool("tokenizer.ggml.add_bos_token") ?? (model === "llama" || pre!.addBos);
  const addEos = meta.bool("tokenizer.ggml.add_eos_token") ?? false;
  const addSpacePrefix = meta.bool("tokenizer.ggml.add_space_prefix") ?? model === "llama";
  if (addBos && bos === undefined) {
    throw meta.fail("GGUF_TOKENIZER_NO_BOS", "add_bos_token is true but there is no BOS token");
  }
  if (addEos && eos === undefined) {
    throw meta.fail("GGUF_TOKENIZER_NO_EOS", "add_eos_token is true but there is no EOS token");
  }

  const parseSpecial = options.parseSpecial !== false;
  const added: Json[] = [];
  vocab.tokens.forEach((content, id) => {
    const attr = vocab.attrs[id];
    if (!(attr & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN))) return;
    const special = (attr & (ATTR_CONTROL | ATTR_UNKNOWN)) !== 0;
    if (special && !parseSpecial) return;
    const lstrip = vocab.lstrip.has(id);
    const rstrip = vocab.rstrip.has(id);
    added.push({ id, content, single_word: false, lstrip, rstrip, normalized: false, special });
  });

  const bpe: Json = {
    type: "BPE",
    dropout: null,
    unk_token: null,
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: false,
    byte_fallback: false,
    ignore_merges: false,
    vocab: Object.fromEntries(vocab.ids),
  };
  const tokenizerJson: Json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    post_processor: postProcessor(vocab.tokens, addBos ? bos : undefined, addEos ? eos : undefined),
  };
  let mergePriority: Map<string, number> | undefined;
  if (pre) {
    bpe.ignore_merges = pre.ignoreMerges;
    bpe.merges = byteLevelMerges(meta, vocab.ids);
    tokenizerJson.normalizer = null;
    tokenizerJson.pre_tokenizer = {
      type: "Sequence",
      pretokenizers: [
        ...pre.regexes.map((Regex) => ({ type: "Split", pattern: { Regex }, behavior: "Isolated", invert: false })),
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    };
    tokenizerJson.decoder = { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false };
  } else {
    checkByteTokens(meta, vocab.ids);
    const scores = meta.numbers("tokenizer.ggml.scores", n) ?? new Array<number>(n).fill(0);
    const spm = sentencePieceMerges(meta, vocab, scores);
    bpe.byte_fallback = true;
    bpe.unk_token = unk === undefined ? null : vocab.tokens[unk];
    bpe.merges = spm.merges;
    mergePriority = spm.priority;
    const replace = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
    tokenizerJson.normalizer = addSpacePrefix
      ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, replace] }
      : replace;
    tokenizerJson.pre_tokenizer = null;
    tokenizerJson.decoder = {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "\u2581" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        ...(addSpacePrefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
      ],
    };
  }
  tokenizerJson.model = bpe;

  const tokenizerConfig: Json = {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: bos === undefined ? null : vocab.tokens[bos],
    eos_token: eos === undefined ? null : vocab.tokens[eos],
    unk_token: unk === undefined ? null : vocab.tokens[unk],
    add_bos_token: addBos,
    add_eos_token: addEos,
    clean_up_tokenization_spaces: false,
  };
  const padId = inRange(meta.tokenId("tokenizer.ggml.padding_token_id"));
  if (padId !== undefined) tokenizerConfig.pad_token = vocab.tokens[padId];
  // Named templates come as tokenizer.chat_template.<name>, listed in tokenizer.chat_templates.
  const chatTemplate = meta.string("tokenizer.chat_template", false);
  const named = (meta.strings("tokenizer.chat_templates", false) ?? []).map((name) => ({
    name,
    template: meta.string(`tokenizer.chat_template.${name}`, true),
  }));
  if (named.length) {
    const main = chatTemplate === undefined ? [] : [{ name: "default", template: chatTemplate }];
    tokenizerConfig.chat_template = [...main, ...named];
  } else if (chatTemplate !== undefined) {
    tokenizerConfig.chat_template = chatTemplate;
  }
  return { built: { tokenizerJson, tokenizerConfig, mergePriority }, attrs: vocab.attrs };
}

/** BOS/EOS around the text, as llama.cpp adds them with add_special (TemplateProcessing by token text). */
function postProcessor(tokens: string[], bos: number | undefined, eos: number | undefined): Json | null {
  if (bos === undefined && eos === undefined) return null;
  const special = (id: number, typeId: number) => ({ SpecialToken: { id: tokens[id], type_id: typeId } });
  const around = (seq: Json[], typeId: number) => [
    ...(bos === undefined ? [] : [special(bos, typeId)]),
    ...seq,
    ...(eos === undefined ? [] : [special(eos, typeId)]),
  ];
  const ids = [bos, eos].filter((id): id is number => id !== undefined);
  const a = around([{ Sequence: { id: "A", type_id: 0 } }], 0);
  return {
    type: "TemplateProcessing",
    single: a,
    pair: [...a, ...around([{ Sequence: { id: "B", type_id: 1 } }], 1)],
    special_tokens: Object.fromEntries(
      ids.map((id) => {
        const t = tokens[id];
        return [t, { id: t, ids: [id], tokens: [t] }];
      }),
    ),
  };
}

function readVocabulary(meta: MetadataReader): Vocab {
  const raw = meta.strings("tokenizer.ggml.tokens", true)!;
  const n = raw.length;
  const types = meta.numbers("tokenizer.ggml.token_type", n);
  // llama.cpp renames empty tokens and aborts on duplicate texts (its text → id map must be one to one).
  const tokens = raw.map((t, i) => (t === "" ? `[EMPTY_${i}]` : t));
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (ids.has(t)) {
      const message = `token ${JSON.stringify(t)} appears twice (ids ${ids.get(t)}, ${i})`;
      throw meta.fail("GGUF_TOKENIZER_DUPLICATE_TOKEN", message);
    }
    ids.set(t, i);
  });
  const attrs = tokens.map((_, i) => (types ? (ATTR_BY_TYPE[types[i]] ?? 0) : ATTR_BY_TYPE[TokenType.NORMAL]));
  const vocab: Vocab = { tokens, ids, attrs, lstrip: new Set(), rstrip: new Set() };
  applyLlamaCppTokenRules(meta, vocab);
  return vocab;
}

// Token texts llama.cpp treats as end-of-generation: each such token becomes a control token.
const EOG_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
];
// Fill-in-the-middle tokens: when the file names none for a role, llama.cpp takes the first of these it meets in
// its (unordered) text → id map and makes it a control token.
const FIM_TEXTS: Record<string, string[]> = {
  fim_pre_token_id: [
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
  ],
  fim_suf_token_id: [
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
  ],
  fim_mid_token_id: [
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
  ],
  fim_pad_token_id: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  fim_rep_token_id: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  fim_sep_token_id: ["<|file_sep|>"],
};
const LEGACY_FIM_KEYS: Record<string, string> = {
  fim_pre_token_id: "prefix_token_id",
  fim_suf_token_id: "suffix_token_id",
  fim_mid_token_id: "middle_token_id",
};

/** The token-type rewrites llama.cpp makes by token text and model name when it loads a vocabulary. */
function applyLlamaCppTokenRules(meta: MetadataReader, vocab: Vocab): void {
  const { ids, attrs } = vocab;
  const has = (t: string) => ids.has(t);
  for (const t of EOG_TEXTS) if (has(t)) attrs[ids.get(t)!] |= ATTR_CONTROL;
  for (const [key, texts] of Object.entries(FIM_TEXTS)) {
    const legacy = LEGACY_FIM_KEYS[key];
    const n = vocab.tokens.length;
    const given = [key, legacy].some((k) => k && (meta.tokenId(`tokenizer.ggml.${k}`) ?? Infinity) < n);
    const present = texts.filter(has).map((t) => ids.get(t)!);
    if (given || present.every((id) => attrs[id] & ATTR_CONTROL)) continue;
    if (present.length > 1) {
      throw meta.fail(
        "GGUF_TOKENIZER_AMBIGUOUS_TYPES",
        `llama.cpp makes one of ${present
          .map((id) => vocab.tokens[id])
          .join(", ")} a control token, which one depends on its hash-map order (set tokenizer.ggml.${key})`,
      );
    }
    attrs[present[0]] |= ATTR_CONTROL;
  }
  for (const t of ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]) {
    if (has(t)) attrs[ids.get(t)!] = ATTR_USER_DEFINED; // gpt-oss: always rendered
  }
  if (has("<|end|>") && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) {
    attrs[ids.get("<|end|>")!] = ATTR_USER_DEFINED; // o200k_harmony / solar-open: <|end|> is not end-of-generation
  }
  if (has("<|tool_response>") && has("</s>")) attrs[ids.get("</s>")!] = ATTR_BY_TYPE[TokenType.NORMAL]; // gemma4

  const name = (meta.string("general.name", false) ?? "").toLowerCase();
  const arch = meta.string("general.architecture", false) ?? "";
  const pre = meta.string("tokenizer.ggml.pre", false) ?? "";
  const need = (t: string) => {
    if (!has(t)) {
      throw meta.fail("GGUF_TOKENIZER_MISSING_SPECIAL", `llama.cpp requires a token "${t}" in a phi-3 model`);
    }
    return ids.get(t)!;
  };
  if (
    ["jina-v2-de", "jina-v2-es", "jina-v2-code"].some((s) => pre.includes(s)) ||
    ["nomic-bert-moe", "jina-bert-v3"].some((s) => arch.includes(s))
  ) {
    if (has("<mask>")) vocab.lstrip.add(ids.get("<mask>")!);
  } else if (name.includes("phi-3") || name.includes("phi3")) {
    attrs.forEach((a, id) => {
      if (a & (ATTR_CONTROL | ATTR_USER_DEFINED | ATTR_UNKNOWN)) vocab.rstrip.add(id);
    });
    vocab.rstrip.add(need("</s>"));
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) vocab.rstrip.delete(need(t));
  } else if (name.includes("modern-bert") && has("[MASK]")) {
    vocab.lstrip.add(ids.get("[MASK]")!);
  }
}

/** GPT-2's byte alphabet: byte b is written as this character in byte-level vocabularies. */
export function byteLevelChar(b: number): string {
  if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae) return String.fromCharCode(b);
  let n = 0; // the bytes outside those ranges, in order, become U+0100, U+0101, …
  for (let c = 0; c < b; c++) if (!((c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || c >= 0xae)) n++;
  return String.fromCharCode(256 + n);
}

function checkByteTokens(meta: MetadataReader, ids: Map<string, number>): void {
  // llama.cpp writes an uncovered character as <0xNN> tokens (for ASCII also the character itself will do).
  for (let b = 0; b < 256; b++) {
    if (!ids.has(`<0x${hex2(b)}>`) && !(b < 0x80 && ids.has(String.fromCharCode(b)))) {
      throw meta.fail("GGUF_TOKENIZER_MISSING_BYTES", `no byte token <0x${hex2(b)}>`);
    }
  }
}

const hex2 = (b: number) => b.toString(16).toUpperCase().padStart(2, "0");

/**
 * The merges llama.cpp can apply, in rank order: those whose halves can occur (bytes, or results of such
 * merges). The first of two equal merges counts, and a merge without a space (after the first character)
 * never matches. A merge llama.cpp can apply must give a token, or llama.cpp drops the bytes: refused.
 */
function byteLevelMerges(meta: MetadataReader, ids: Map<string, number>): [string, string][] {
  const raw = meta.strings("tokenizer.ggml.merges", true)!;
  const seen = new Set<string>();
  const pairs: [string, string][] = [];
  for (const m of raw) {
    const space = m.indexOf(" ", 1);
    if (space < 0 || seen.has(m)) continue;
    seen.add(m);
    pairs.push([m.slice(0, space), m.slice(space + 1)]);
  }
  // Formable symbols, grown from the 256 bytes by merges whose halves are both formable (any rank order).
  const formable = new Set<string>();
  const waiting = new Map<string, number[]>(); // symbol → merges that wait for it
  const missing = pairs.map(() => 2);
  const queue: string[] = [];
  const add = (s: string) => {
    if (!formable.has(s)) (formable.add(s), queue.push(s));
  };
  pairs.forEach(([a, b], i) => {
    for (const s of a === b ? [a] : [a, b]) {
      const list = waiting.get(s);
      if (list) list.push(i);
      else waiting.set(s, [i]);
    }
    if (a === b) missing[i] = 1;
  });
  for (let b = 0; b < 256; b++) add(byteLevelChar(b));
  while (queue.length) {
    for (const i of waiting.get(queue.pop()!) ?? []) {
      if (--missing[i] === 0) add(pairs[i][0] + pairs[i][1]);
    }
  }
  const usable = pairs.filter((_, i) => missing[i] === 0);
  for (const [a, b] of usable) {
    if (!ids.has(a + b)) {
      throw meta.fail("GGUF_TOKENIZER_MERGE_NOT_IN_VOCAB", `merge "${a} ${b}" gives "${a + b}", which is not a token`);
    }
  }
  return usable;
}

/**
 * SentencePiece as BPE: every split of a token into two halves that can themselves occur (single characters,
 * or tokens formed that way) is a merge with the token's score; ordered by score (highest first), then id.
 */
function sentencePieceMerges(meta: MetadataReader, vocab: Vocab, scores: ArrayLike<number>) {
  const chars = vocab.tokens.map((t) => Array.from(t));
  const order = vocab.tokens.map((_, i) => i).sort((a, b) => chars[a].length - chars[b].length);
  const formable = new Set<string>();
  const found: { left: string; right: string; id: number }[] = [];
  for (const id of order) {
    const c = chars[id];
    if (c.length < 2) continue;
    if (c.length > MAX_SPM_TOKEN_CHARS) {
      const message = `token ${id} is ${c.length} characters long (at most ${MAX_SPM_TOKEN_CHARS})`;
      throw meta.fail("GGUF_TOKENIZER_BAD_VALUE", message);
    }
    for (let k = 1; k < c.length; k++) {
      const left = c.slice(0, k).join("");
      const right = c.slice(k).join("");
      if ((k === 1 || formable.has(left)) && (k === c.length - 1 || formable.has(right))) {
        found.push({ left, right, id });
        formable.add(vocab.tokens[id]);
      }
    }
  }
  const score = (id: number) => scores[id] + 0; // -0 and 0 are one score, as in llama.cpp's comparison
  found.sort((x, y) => score(y.id) - score(x.id) || x.id - y.id);
  const merges = found.map((m): [string, string] => [m.left, m.right]);
  const distinct = [...new Set(found.map((m) => score(m.id)))];
  const level = new Map(distinct.map((s, i) => [s, i]));
  const priority = new Map(found.map((m) => [JSON.stringify([m.left, m.right]), level.get(score(m.id))!]));
  return { merges, priority };
}

/** Typed access to the metadata, with one error code per fault, naming the file and the key. */
class MetadataReader {
  constructor(
    private readonly metadata: Record<string, unknown>,
    readonly file: string,
  ) {}

  fail(code: string, message: string): CheckpointError {
    return new CheckpointError(this.file, message, code);
  }

  private get(key: string, required: boolean): unknown {
    const value = Object.hasOwn(this.metadata, key) ? this.metadata[key] : undefined;
    if (value === undefined && required) throw this.fail("GGUF_TOKENIZER_MISSING", `no ${key} in the metadata`);
    return value;
  }

  private bad(key: string, expected: string): CheckpointError {
    return this.fail("GGUF_TOKENIZER_BAD_VALUE", `${key}: expected ${expected}`);
  }

  string(key: string, required: boolean): string | undefined {
    const v = this.get(key, required);
    if (v !== undefined && typeof v !== "string") throw this.bad(key, "a string");
    return v as string | undefined;
  }

  bool(key: string): boolean | undefined {
    const v = this.get(key, false);
    if (v !== undefined && typeof v !== "boolean") throw this.bad(key, "a boolean");
    return v as boolean | undefined;
  }

  tokenId(key: string): number | undefined {
    const v = this.get(key, false);
    if (v === undefined) return undefined;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw this.bad(key, "a u32 token id");
    return n;
  }

  strings(key: string, required: boolean): string[] | undefined {
    const v = this.get(key, required);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) throw this.bad(key, "an array of strings");
    return v;
  }

  /** A numeric array with at least `n` finite values (llama.cpp reads the first n). */
  numbers(key: string, n: number): ArrayLike<number> | undefined {
    const v = this.get(key, false);
    if (v === undefined) return undefined;
    const ok = (Array.isArray(v) && v.every((x) => typeof x === "number")) || ArrayBuffer.isView(v);
    if (!ok || v instanceof DataView || typeof (v as ArrayLike<unknown>)[0] === "bigint") {
      throw this.bad(key, "an array of numbers");
    }
    const a = v as ArrayLike<number>;
    if (a.length < n) throw this.fail("GGUF_TOKENIZER_BAD_VALUE", `${key} has ${a.length} values for ${n} tokens`);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(a[i])) throw this.bad(key, `finite numbers (value ${i} is ${a[i]})`);
    }
    return a;
  }
}
